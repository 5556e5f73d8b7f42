"""Configs as code, one module per job: `mocov2` and `swav` (pretraining), `finetune` (a benchmark or your own
data). `_pretrain` holds the fields every pretraining config shares.

`get_config("mocov2:demo")` is `cemjax.configs.mocov2.get_config("demo")`; the CLIs take the same names
(`--config=mocov2:demo`) or a path to any config file (`--config=experiments/configs/mocov2_cem500k.py:demo`).
"""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

import ml_collections


def available() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.ispkg and not m.name.startswith("_"))


def config_path(name: str) -> Path:
    """The file of config module `name` (what `--config=NAME` resolves to)."""
    if name not in available():
        raise ValueError(f"unknown config {name!r}; available: {', '.join(available())} (or pass a file path)")
    return Path(__file__).with_name(f"{name}.py")


def get_config(spec: str) -> ml_collections.ConfigDict:
    """`"NAME[:ARG]"` → `cemjax.configs.NAME.get_config(ARG)`."""
    name, _, arg = spec.partition(":")
    config_path(name)
    return importlib.import_module(f"{__name__}.{name}").get_config(arg)
