"""cemjax as a user installs it: the wheel in a fresh virtual environment (its dependencies taken from this
one), used from a folder outside the repository — the Python API and a console script, pretrain → fine-tune →
export, with no access to `experiments/`."""

import json
import os
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ONE_DEVICE = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=1"}


def _run(cmd, **kwargs):
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=ONE_DEVICE, **kwargs)
    assert done.returncode == 0, (done.stdout[-1500:], done.stderr[-3000:])
    return done.stdout


def test_installed_wheel_pretrains_finetunes_and_exports(built, tmp_path):
    _, data_dir = built
    dist, venv = tmp_path / "dist", tmp_path / "venv"
    _run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w", str(dist),
          str(ROOT)])  # fmt: skip
    (wheel,) = dist.glob("cemjax-*.whl")
    _run([sys.executable, "-m", "venv", str(venv)])
    python = venv / "bin" / "python"
    _run([str(python), "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", str(wheel)])
    site = Path(_run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).strip())
    (site / "zz_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")  # jax, tfds, … from here

    work = tmp_path / "elsewhere"
    work.mkdir()
    script = textwrap.dedent(f"""
        import json
        import cemjax
        assert {str(ROOT)!r} not in cemjax.__file__, cemjax.__file__
        config = cemjax.get_config("mocov2:test")
        config.max_steps = 2
        run = cemjax.pretrain(config, "pretrain")
        ft = cemjax.get_config("finetune:benchmark=lucchi_pp,init=pretrain,variant=test")
        ft.data.data_dir, ft.iterations = {data_dir!r}, 2
        out = cemjax.finetune(ft, "finetune")
        files = cemjax.export("pretrain", "exported")
        print("RESULT", json.dumps({{"file": cemjax.__file__, "iou": out["results"]["iou"], "files": sorted(files)}}))
        """)  # fmt: skip
    result = json.loads(_run([str(python), "-c", script], cwd=work).split("RESULT ", 1)[1])
    assert str(site) in result["file"] and 0 <= result["iou"] <= 1
    assert {"safetensors", "torchvision", "unet_encoder", "moco"} <= set(result["files"])
    assert (work / "finetune" / "model" / "spec.json").is_file()

    out = _run([str(venv / "bin" / "cemjax-pretrain"), "--config=mocov2:test", "--workdir=cli",
                "--config.max_steps=1", "--config.export_at_end=False"], cwd=work)  # fmt: skip
    assert "finished at step 1" in out
