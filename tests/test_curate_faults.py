"""One bad input never stops a curation run: odd names, bad spacing, FIFOs, link loops; bad flags, a bad
classifier folder, an output inside an input, a second run into one output and a closed stderr end in one line."""

from __future__ import annotations

import glob
import json
import os
import subprocess
import sys
import time

import h5py
import pytest

from cemjax.cli.curate import main
from cemjax.curate.guards import LOCK_NAME
from cemjax.curate.manifest import read_csv
from cemjax.synthetic import writers
from cemjax.synthetic.samples import make_em_image, make_em_volume

IN_MEMORY = ["--", "--direct_running_mode=in_memory", "--direct_num_workers=1"]
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _png(path, seed=0):
    writers.write_png(str(path), make_em_image((240, 240), seed=seed).image)


@pytest.fixture(scope="module")
def faulty(tmp_path_factory):
    """raw/: a good 2D folder and volume, plus a non-UTF-8 name, zero/NaN spacing (HDF5 attribute, sidecars),
    a FIFO, a link to an ancestor and a link to a folder outside; curated once."""
    raw = tmp_path_factory.mktemp("raw")
    _png(raw / "em2d" / "a.png", 1)
    _png(raw / "em2d" / "b.png", 2)
    vol = make_em_volume((4, 230, 230), spacing_nm=(30.0, 6.0, 6.0), seed=3).image
    writers.write_tif(str(raw / "good.tif"), vol, (30.0, 6.0, 6.0))
    bad_name = os.path.join(os.fsencode(str(raw / "em2d")), b"bad\xff.tif")
    writers.write_tif(os.fsdecode(bad_name), vol[0], (6.0, 6.0))
    with h5py.File(raw / "zero_attr.h5", "w") as f:
        f.create_dataset("raw", data=vol).attrs["resolution"] = [0.0, 0.0, 0.0]
    writers.write_tif(str(raw / "zero_side.tif"), vol, (30.0, 6.0, 6.0))
    (raw / "zero_side.tif.json").write_text(json.dumps({"spacing": [0, 6, 6]}))
    writers.write_tif(str(raw / "nan_side.tif"), vol, (30.0, 6.0, 6.0))
    (raw / "nan_side.tif.json").write_text('{"spacing": [NaN, 6, 6]}')
    os.mkfifo(raw / "pipe.tif")
    os.symlink(".", raw / "up")
    outside = tmp_path_factory.mktemp("outside")
    _png(outside / "c.png", 4)
    os.symlink(outside, raw / "linked")
    out = tmp_path_factory.mktemp("out") / "curated"
    code = main(["--input", str(raw), "--output", str(out), "--quiet", *IN_MEMORY])
    return raw, out, code


def test_bad_files_are_rejected_with_their_reason_and_the_rest_is_curated(faulty, capfd):
    raw, out, code = faulty
    assert code == 3
    got = {r["path"]: r["reason"] for r in read_csv(out / "rejected.csv")}
    assert "not valid UTF-8" in got[str(raw / "em2d" / "bad\\xff.tif")]
    assert "bad voxel spacing (0.0, 0.0, 0.0)" in got[str(raw / "zero_attr.h5")] and "metadata" in got[
        str(raw / "zero_attr.h5")]  # fmt: skip
    assert "bad voxel spacing" in got[str(raw / "zero_side.tif")] and "zero_side.tif.json" in got[
        str(raw / "zero_side.tif")]  # fmt: skip
    assert "bad voxel spacing (nan" in got[str(raw / "nan_side.tif")]
    assert "FIFO" in got[str(raw / "pipe.tif")] and "not opened" in got[str(raw / "pipe.tif")]
    assert len(got) == 5
    summary = {r["source"]: r for r in read_csv(out / "summary.csv")}
    assert sorted(summary) == ["em2d", "good", "linked"]
    assert summary["em2d"]["files"] == "2" and int(summary["good"]["filtered"]) > 0
    assert not glob.glob(str(out / "**" / "*.tmp*"), recursive=True)


def test_a_link_to_an_ancestor_is_skipped_and_no_folder_is_visited_twice(faulty, tmp_path, capfd):
    raw, out, _ = faulty
    rows = read_csv(out / "manifest.csv")
    files = {r["file"] for r in rows}
    assert not any(os.sep + "up" + os.sep in f for f in files)  # nothing reached through up -> .
    assert len({r["name"] for r in rows}) == len(rows)
    assert {r["file"] for r in rows if r["source"] == "linked"} == {str(raw / "linked" / "c.png")}
    # the link is said in a note line (printed while planning)
    code = main(["--input", str(raw), "--output", str(tmp_path / "o"), "--quiet", *IN_MEMORY])
    err = capfd.readouterr().err
    assert code == 3 and f"note: skipped {raw / 'up'}: it leads to {os.path.realpath(raw)}, already visited" in err


@pytest.mark.parametrize("spacing", ["0,0,0", "nan,8,8", "30,8", "a,b,c", "-1,8,8"])
def test_a_bad_spacing_flag_is_one_config_line(tmp_path, spacing, capfd):
    _png(tmp_path / "raw" / "a.png")
    code = main(["--input", str(tmp_path / "raw"), "--output", str(tmp_path / "o"), f"--spacing={spacing}"])
    err = capfd.readouterr().err
    assert code == 2 and err.count("\n") == 1 and err.startswith("error: --spacing")
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("kind", ["missing", "empty", "bad_json", "no_state"])
def test_a_bad_model_dir_is_one_line_before_any_patching(tmp_path, kind, capfd):
    _png(tmp_path / "raw" / "a.png")
    model = tmp_path / "model"
    if kind != "missing":
        model.mkdir()
    if kind == "bad_json":
        (model / "quality.json").write_text("{not json")
    if kind == "no_state":
        (model / "quality.json").write_text(json.dumps({"threshold": 0.5, "size": 224, "mean": 0.5, "std": 0.2}))
        (model / "spec.json").write_text("{}")
    out = tmp_path / "o"
    code = main(["--input", str(tmp_path / "raw"), "--output", str(out), "--model-dir", str(model), *IN_MEMORY])
    err = capfd.readouterr().err
    assert code == 3 and err.count("\n") == 1 and err.startswith(f"error: --model-dir {model}")
    assert not out.exists()  # checked before any patching


def test_an_output_inside_an_input_is_refused(tmp_path, capfd):
    _png(tmp_path / "raw" / "a.png")
    for out in (tmp_path / "raw" / "curated", tmp_path / "raw"):
        code = main(["--input", str(tmp_path / "raw"), "--output", str(out), *IN_MEMORY])
        err = capfd.readouterr().err
        assert code == 2 and err.count("\n") == 1 and "is inside --input" in err
    assert not (tmp_path / "raw" / "curated").exists()


def test_a_second_run_into_one_output_refuses_at_once_and_a_stale_lock_does_not_block(tmp_path, capfd):
    _png(tmp_path / "raw" / "a.png")
    out = tmp_path / "o"
    out.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from cemjax.curate.guards import lock_output; "
         f"lock_output({str(out)!r}); print('locked', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": ROOT},
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "locked"
        t0 = time.time()
        code = main(["--input", str(tmp_path / "raw"), "--output", str(out), *IN_MEMORY])
        err = capfd.readouterr().err
        assert code == 3 and time.time() - t0 < 10 and err.count("\n") == 1
        assert f"{out / LOCK_NAME} is held by another curation run (pid {holder.pid})" in err
    finally:
        holder.kill()
        holder.wait()
    assert (out / LOCK_NAME).read_text().strip() == str(holder.pid)  # the dead process's lock file is left…
    assert main(["--input", str(tmp_path / "raw"), "--output", str(out), "--quiet", *IN_MEMORY]) == 0  # …harmless


def test_a_leftover_temporary_of_a_killed_run_is_removed(tmp_path):
    _png(tmp_path / "raw" / "a.png")
    out = tmp_path / "o"
    (out / ".parts").mkdir(parents=True)
    (out / ".parts" / ".raw.abc123.tmp.csv").write_text("half")
    assert main(["--input", str(tmp_path / "raw"), "--output", str(out), "--quiet", *IN_MEMORY]) == 0
    assert not glob.glob(str(out / "**" / "*.tmp*"), recursive=True)


@pytest.mark.parametrize("case", ["bad_flag", "rejections"])
def test_a_run_whose_stderr_is_a_closed_pipe_exits(tmp_path, case):
    raw = tmp_path / "raw"
    raw.mkdir()
    os.mkfifo(raw / "pipe.tif")  # never opened: opening a FIFO without a writer would block
    (raw / "zero.tif").write_bytes(b"")
    flags = ["--spacing=0,0,0"] if case == "bad_flag" else []
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "cemjax.cli.curate", "--input", str(raw), "--output", str(tmp_path / "o"),
             "--quiet", *flags, *IN_MEMORY],
            stderr=write_end, stdout=subprocess.DEVNULL, timeout=120, env={**os.environ, "PYTHONPATH": ROOT},
        )  # fmt: skip
    finally:
        os.close(write_end)
    assert proc.returncode == (2 if case == "bad_flag" else 141)
