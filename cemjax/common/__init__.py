"""Small helpers every part of cemjax shares: atomic files, normalisation constants, progress, pictures, errors."""
