"""End to end on Beam's DirectRunner (2 worker processes): good sources, ≥ 15 bad inputs, resume."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
import tifffile

from cemjax.curate.manifest import COLUMNS, read_csv
from cemjax.curate.pipeline import CurateConfig, run
from cemjax.synthetic import writers
from tests.fixtures.curation_inputs import write_bad, write_good

IN_MEMORY = ["--direct_running_mode=in_memory", "--direct_num_workers=1"]  # the first run covers 2 processes


@pytest.fixture(scope="module")
def curated(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("raw"))
    files = write_good(root)
    bad = write_bad(root)
    out = str(tmp_path_factory.mktemp("out"))
    result = run(CurateConfig([root], out, progress=False))
    return root, out, files, bad, result


def test_every_bad_input_is_rejected_with_its_reason(curated, capfd):
    _, out, _, bad, result = curated
    assert len(bad) >= 15
    got = {r["path"]: r["reason"] for r in read_csv(os.path.join(out, "rejected.csv"))}
    for path, why in bad.items():
        assert why in got.get(path, ""), (path, got.get(path))
    assert {r["path"] for r in result.rejected} == set(bad)  # and nothing good was rejected


def test_summary_and_manifest_agree_with_the_patches_on_disk(curated):
    _, out, files, _, result = curated
    summary = {r["source"]: r for r in result.summary}
    assert {s: summary[s]["files"] for s in files} == files
    rows = read_csv(os.path.join(out, "manifest.csv"))
    assert list(rows[0].keys()) == COLUMNS
    for source in files:
        mine = [r for r in rows if r["source"] == source]
        s = summary[source]
        assert s["raw"] == len(mine) > 0 and s["raw"] >= s["dedup"] >= s["filtered"] > 0
        kept = sorted(r["name"] + ".tiff" for r in mine if r["kept"] == "1")
        assert sorted(os.listdir(os.path.join(out, "patches", source))) == kept
        assert all(r["name"].startswith(f"{source}-LOC-") for r in mine)
        # a duplicate points at a kept-by-dedup exemplar of the same source
        exemplars = {r["name"] for r in mine if r["exemplar"] == r["name"]}
        assert all(r["exemplar"] in exemplars for r in mine)
        assert all((r["reason"] == "duplicate") == (r["exemplar"] != r["name"]) for r in mine)
    axes = {r["axis"] for r in rows if r["source"] == "iso"}
    assert axes == {"xy", "xz", "yz"}  # isotropic: three cross-sections
    assert {r["axis"] for r in rows if r["source"] == "aniso"} == {"xy"}
    for one in [r for r in rows if r["kept"] == "1"][::7]:  # stored at their true size
        img = tifffile.imread(os.path.join(out, "patches", one["source"], one["name"] + ".tiff"))
        box = int(one["y1"]) - int(one["y0"]), int(one["x1"]) - int(one["x0"])
        assert img.shape == box and img.dtype == np.uint8
    assert {(int(r["y1"]) - int(r["y0"])) for r in rows if r["source"] == "iso"} == {120}  # 120³: one short tile
    summary_by = {r["source"]: r for r in result.summary}
    assert "img16.tif: uint16" in summary_by["em2d"]["intensity"]  # the rule each file got is recorded
    assert "xy only: anisotropy" in summary_by["aniso"]["notes"]
    assert os.path.exists(os.path.join(out, "sheets", "em2d_kept.png"))


def test_rerun_skips_finished_sources_and_redoes_a_killed_one(curated, tmp_path):
    root, out, _, _, _ = curated
    out2 = str(tmp_path / "out")
    shutil.copytree(out, out2, symlinks=True)
    before = open(os.path.join(out, "manifest.csv")).read()
    # simulate a run killed during the "iso" source's commit: part missing, half the patches present
    os.remove(os.path.join(out2, ".parts", "iso.csv"))
    for f in sorted(os.listdir(os.path.join(out2, "patches", "iso")))[::2]:
        os.remove(os.path.join(out2, "patches", "iso", f))
    os.remove(os.path.join(out2, "manifest.csv"))
    result = run(CurateConfig([root], out2, progress=False, beam_args=IN_MEMORY))
    assert "iso" not in result.skipped_sources and "em2d" in result.skipped_sources
    assert open(os.path.join(out2, "manifest.csv")).read() == before
    assert sorted(os.listdir(os.path.join(out2, "patches", "iso"))) == sorted(
        os.listdir(os.path.join(out, "patches", "iso"))
    )
    assert not os.path.exists(os.path.join(out2, ".work", "iso"))


def test_cli_exit_status_says_whether_anything_was_rejected(curated, tmp_path):
    from cemjax.cli.curate import main

    root = curated[0]
    bad_only = [os.path.join(root, "bad", "zero.tif"), os.path.join(root, "em2d")]
    assert main(["--input", *bad_only, "--output", str(tmp_path / "a"), "--quiet", "--", *IN_MEMORY]) == 3
    out = str(tmp_path / "b")
    assert main(["--input", os.path.join(root, "em2d"), "--output", out, "--quiet", "--", *IN_MEMORY]) == 0


def test_12_bit_data_in_uint16_keeps_its_contrast_and_a_vanishing_source_is_named(tmp_path, capfd):
    """A detector's 12-bit values stored as uint16: scaled by 65535 (the reference's rule) every patch looks
    blank and the source vanishes — that is said in a warning and the summary; the default rule (effective bit
    depth) keeps the tissue."""
    from cemjax.synthetic.samples import make_em_volume

    vol = make_em_volume((6, 240, 240), spacing_nm=(40.0, 8.0, 8.0), seed=2).image  # uint8 tissue
    writers.write_tif(tmp_path / "raw" / "twelve.tif", (vol.astype(np.uint16) * 16), (40.0, 8.0, 8.0))  # 0…4080
    auto = run(CurateConfig([str(tmp_path / "raw")], str(tmp_path / "auto"), progress=False, beam_args=IN_MEMORY))
    (row,) = auto.summary
    assert row["filtered"] > 0 and "holding 12-bit values: ÷ 4095" in row["intensity"]
    assert "every one of its" not in row["notes"]
    ref = run(CurateConfig([str(tmp_path / "raw")], str(tmp_path / "ref"), progress=False, beam_args=IN_MEMORY,
                           intensity="reference"))  # fmt: skip
    (row,) = ref.summary
    assert row["raw"] > 0 and row["filtered"] == 0
    assert "every one of its" in row["notes"] and "try --intensity percentile" in row["notes"]
    assert "warning: source twelve keeps no patch" in capfd.readouterr().err
