"""Pretraining methods, one package each (`cemjax/methods/<name>/`), chosen by a config's `method` field.

A method package exposes
  - `train(config, workdir) -> dict`: run or resume pretraining into `workdir`;
  - `restore_encoder(workdir, step=None) -> (encoder, (mean, std), description)`: the trained encoder without
    its pretraining head, the normalisation it was trained with and one line saying what it is;
  - `export(workdir, out_dir=None, step=None) -> {name: path}`: its weight files (safetensors, PyTorch).
Fine-tuning and the export CLI reach a pretraining workdir only through the functions here, whatever the method.
A new method is a new package plus a config in `cemjax/configs/`; nothing else changes. A method outside cemjax
is named by its module path (`method="mylab.simclr"`).
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType

from cemjax.train.loop import read_config

DEFAULT_METHOD = "mocov2"  # workdirs written before configs named their method


def available() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules(__path__) if m.ispkg)


def get(name: str) -> ModuleType:
    """The method package `cemjax.methods.<name>` (or the module at a dotted path), imported by name so that
    adding one needs no registry edit."""
    if "." in name:
        try:
            return importlib.import_module(name)
        except ImportError as err:
            raise ValueError(f"method module {name!r} cannot be imported ({err})") from None
    if name not in available():
        raise ValueError(f"unknown pretraining method {name!r}; available: {', '.join(available())}")
    return importlib.import_module(f"{__name__}.{name}")


def method_of(workdir: str) -> str:
    """The method that wrote `workdir` (its config.json's `method`)."""
    return read_config(workdir).get("method", DEFAULT_METHOD)


def restore_encoder(workdir: str, step: int | None = None):
    """The encoder a pretraining workdir trained, whatever the method (see the module docstring)."""
    return get(method_of(workdir)).restore_encoder(workdir, step)


def export(workdir: str, out_dir: str | None = None, step: int | None = None) -> dict[str, str]:
    return get(method_of(workdir)).export(workdir, out_dir, step)
