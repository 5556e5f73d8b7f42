"""Config validation before any work: every numeric field of every shipped config has a range rule, bad values
are named in one line, and the CLIs turn bad flags (unknown keys, wrong types, missing files) into `error: …`
with exit code 2 instead of a traceback."""

import subprocess
import sys

import pytest

from cemjax.benchmarks import BENCHMARKS
from cemjax.common.config_checks import check_config, numeric_leaves, problems, rule_for
from cemjax.common.errors import ConfigError
from cemjax.configs import available, get_config


def shipped_configs():
    for method in ("mocov2", "swav"):
        yield from (get_config(f"{method}:{v}") for v in ("paper", "pod", "demo", "test"))
    yield from (get_config(f"finetune:benchmark={b},variant={v}") for b in BENCHMARKS for v in ("paper", "test"))
    yield get_config("finetune:folder=/data/mine,variant=demo")
    for name in set(available()) - {"mocov2", "swav", "finetune"}:
        yield get_config(name)


def test_every_numeric_field_has_a_rule_and_the_shipped_configs_pass():
    for config in shipped_configs():
        unruled = [path for path, _ in numeric_leaves(config) if rule_for(path) is None]
        assert not unruled, f"numeric fields without a range rule: {unruled}"
        assert problems(config) == []


@pytest.mark.parametrize(
    ("field", "value", "named"),
    [
        ("batch_size", 0, "batch_size=0"),
        ("log_every", 0, "log_every=0"),
        ("checkpoint_every", -1, "checkpoint_every=-1"),
        ("max_steps", -5, "max_steps=-5"),
        ("epochs", 0, "epochs=0"),
        ("moco.temperature", -1.0, "moco.temperature=-1.0"),
        ("moco.momentum", 1.5, "moco.momentum=1.5"),
        ("optim.base_lr", float("nan"), "optim.base_lr=nan"),
        ("data.norms", (0.5, 0.0), "data.norms=(0.5, 0.0)"),
        ("mesh.num_devices", 0, "mesh.num_devices=0"),
    ],
)
def test_a_bad_value_is_named(field, value, named):
    config = get_config("mocov2:test")
    *parents, leaf = field.split(".")
    node = config
    for p in parents:
        node = node[p]
    node[leaf] = value
    with pytest.raises(ConfigError, match="invalid config") as err:
        check_config(config)
    assert named in str(err.value) and "\n" not in str(err.value)


def test_finetune_ranges():
    config = get_config("finetune:benchmark=lucchi_pp,variant=test")
    config.data.norms = ((0.5,), (0.2,))  # per channel, as a fine-tuning run resolves them
    assert problems(config) == []
    config.data.norms = ((0.5, 0.4, 0.3), (0.2, 0.0, 0.1))
    assert "data.norms" in " ".join(problems(config))
    config.optim.pct_start, config.data.noise_blur, config.eval.batch_size = 1.0, 2, 0
    found = " ".join(problems(config))
    assert "optim.pct_start=1.0" in found and "data.noise_blur=2" in found and "eval.batch_size=0" in found


@pytest.mark.parametrize(
    ("flags", "says"),
    [
        (["--config.foo=1"], "error: unknown config field 'foo' in --config.foo=1"),
        (["--config.batch_size=abc"], "error: flag --config.batch_size=abc: invalid literal for int()"),
        (["--config.batch_size=0"], "error: invalid config: batch_size=0: wants an integer ≥ 1"),
        (["--config=nothing_here.py"], "error: --config: [Errno 2] No such file or directory: 'nothing_here.py'"),
        (["--config=mocov2:nope"], "error: flag --config="),
    ],
)
def test_pretrain_cli_bad_flags_get_one_line_and_exit_2(tmp_path, flags, says):
    args = [
        sys.executable,
        "-m",
        "cemjax.cli.pretrain",
        "--config=mocov2:test",
        f"--workdir={tmp_path / 'run'}",
        *flags,
    ]
    result = subprocess.run(args, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 2, result.stderr[-3000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(says), lines
    assert not (tmp_path / "run").exists()  # nothing was started
