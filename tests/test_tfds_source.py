"""A data_dir holding cem500k built from one folder refuses a build from another (or changed) folder in one line,
and rebuilds with --overwrite; the source's fingerprint is recorded beside the build."""

import json
import os
import subprocess
import sys

import pytest

from cemjax.common.errors import InputError
from cemjax.data.build import build_cem500k, build_many
from cemjax.data.build_source import RECORD
from cemjax.data.sources import ImageSource
from cemjax.data.testing import write_fake_cem500k

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_another_folder_or_changed_content_is_refused_then_overwritten(tmp_path):
    write_fake_cem500k(tmp_path / "a", n=6)
    write_fake_cem500k(tmp_path / "b", n=4, seed=1)
    data = tmp_path / "tfds"
    build_cem500k(tmp_path / "a", data)
    record = json.loads((data / "cem500k" / RECORD).read_text())
    assert record["folder"] == str(tmp_path / "a") and record["files"] == 6
    (tmp_path / "a" / ".curate.lock").write_text("123\n")  # hidden bookkeeping does not count as content
    assert build_cem500k(tmp_path / "a", data)  # the same folder, unchanged: reused
    with pytest.raises(InputError) as info:
        build_cem500k(tmp_path / "b", data)
    text = str(info.value)
    assert f"{data} already holds cem500k built from {tmp_path / 'a'}, not {tmp_path / 'b'}" in text
    assert "--overwrite" in text and "another --data_dir" in text and "\n" not in text
    write_fake_cem500k(tmp_path / "a" / "more", n=2, seed=2)  # the same folder, other content
    with pytest.raises(InputError, match=r"as it was then \(6 files; 8 now"):
        build_cem500k(tmp_path / "a", data)
    cli = subprocess.run(
        [sys.executable, "-m", "cemjax.data.build", "cem500k", f"--manual_dir={tmp_path / 'b'}", f"--data_dir={data}"],
        capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONPATH": ROOT},
    )  # fmt: skip
    assert cli.returncode == 3 and cli.stderr.strip().count("\n") == 0, cli.stderr[-2000:]
    assert cli.stderr.startswith(f"error: {data} already holds cem500k built from {tmp_path / 'a'}")
    build_many(["cem500k"], tmp_path / "b", data, overwrite=True)
    assert len(ImageSource("cem500k", "train", str(data))) == 4
    assert json.loads((data / "cem500k" / RECORD).read_text())["folder"] == str(tmp_path / "b")
