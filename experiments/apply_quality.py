"""`cemjax-apply-quality` (`cemjax.cli.apply_quality`); `--help` lists its flags."""

from cemjax.cli.apply_quality import run

if __name__ == "__main__":
    run()
