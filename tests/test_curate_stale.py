"""Committed per-source results are reused only while the files and flags that made them are unchanged."""

from __future__ import annotations

import os

import pytest

from cemjax.curate.manifest import read_csv
from cemjax.curate.pipeline import CurateConfig, run
from cemjax.synthetic import writers
from cemjax.synthetic.samples import make_em_image, make_em_volume

IN_MEMORY = ["--direct_running_mode=in_memory", "--direct_num_workers=1"]


def _png(path, seed):
    writers.write_png(str(path), make_em_image((240, 240), seed=seed).image)


def _run(raw, out, capfd, **kw):
    result = run(CurateConfig([str(raw)], str(out), progress=False, beam_args=IN_MEMORY, **kw))
    return result, capfd.readouterr().err


@pytest.fixture
def raw(tmp_path):
    _png(tmp_path / "raw" / "em2d" / "a.png", 1)
    _png(tmp_path / "raw" / "em2d" / "b.png", 2)
    writers.write_tif(str(tmp_path / "raw" / "vol.tif"), make_em_volume((3, 230, 230), seed=3).image, (30, 6, 6))
    return tmp_path / "raw"


def _summary(out):
    return {r["source"]: r for r in read_csv(out / "summary.csv")}


def test_an_added_changed_or_removed_file_redoes_its_source_only(raw, tmp_path, capfd):
    out = tmp_path / "out"
    _run(raw, out, capfd)
    result, err = _run(raw, out, capfd)
    assert sorted(result.skipped_sources) == ["em2d", "vol"] and "curating it again" not in err
    _png(raw / "em2d" / "c.png", 4)
    result, err = _run(raw, out, capfd)
    assert "[curate] source em2d: 1 file added since the last run; curating it again" in err
    assert result.skipped_sources == ["vol"] and _summary(out)["em2d"]["files"] == "3"
    assert any(r["file"].endswith("c.png") for r in read_csv(out / "manifest.csv"))
    _png(raw / "em2d" / "a.png", 9)  # rewritten in place: another size or mtime
    os.utime(raw / "em2d" / "a.png", ns=(1, 1))
    result, err = _run(raw, out, capfd)
    assert "[curate] source em2d: 1 file changed since the last run; curating it again" in err
    os.remove(raw / "em2d" / "b.png")
    os.remove(raw / "vol.tif")
    result, err = _run(raw, out, capfd)
    assert "[curate] source em2d: 1 file removed since the last run; curating it again" in err
    assert "[curate] source vol: not among these inputs; its results from an earlier run are kept" in err
    assert sorted(_summary(out)) == ["em2d", "vol"] and _summary(out)["em2d"]["files"] == "2"  # nothing is lost
    assert {r["source"] for r in read_csv(out / "manifest.csv")} == {"em2d", "vol"}
    assert (out / "patches" / "vol").is_dir()


@pytest.mark.parametrize(
    "change, flag",
    [({"max_distance": 3}, "--max-distance"), ({"seed": 1}, "--seed"), ({"rules": "v2"}, "--rules"),
     ({"intensity": "percentile"}, "--intensity"), ({"spacing": (8.0, 8.0, 8.0)}, "--spacing")],
)  # fmt: skip
def test_a_changed_flag_redoes_every_source_and_says_which(raw, tmp_path, capfd, change, flag):
    out = tmp_path / "out"
    _run(raw, out, capfd)
    result, err = _run(raw, out, capfd, **change)
    assert result.skipped_sources == []
    for source in ("em2d", "vol"):
        assert f"[curate] source {source}: {flag} changed since the last run; curating it again" in err


def test_a_file_rejected_before_and_fixed_since_is_curated_and_leaves_rejected_csv(raw, tmp_path, capfd):
    out = tmp_path / "out"
    (raw / "em2d" / "late.png").write_bytes(b"\x89PNG broken")  # rejected while planning
    writers.write_png(str(raw / "em2d" / "flat.png"), make_em_image((240, 240), seed=5).image * 0 + 7)  # by a worker
    result, _ = _run(raw, out, capfd)
    assert {os.path.basename(r["path"]) for r in result.rejected} == {"late.png", "flat.png"}
    _png(raw / "em2d" / "late.png", 6)
    _png(raw / "em2d" / "flat.png", 7)
    result, err = _run(raw, out, capfd)
    assert "[curate] source em2d: 1 file added; 1 file changed since the last run; curating it again" in err
    assert result.rejected == [] and read_csv(out / "rejected.csv") == []
    assert _summary(out)["em2d"]["files"] == "4" and _summary(out)["em2d"]["rejected_files"] == "0"
    names = {os.path.basename(r["file"]) for r in read_csv(out / "manifest.csv")}
    assert {"late.png", "flat.png"} <= names


def test_results_without_a_record_of_their_origin_are_redone(raw, tmp_path, capfd):
    out = tmp_path / "out"
    _run(raw, out, capfd)
    (out / ".parts" / "vol.json").write_text('{"intensity": []}')  # as an older cemjax wrote it
    result, err = _run(raw, out, capfd)
    assert result.skipped_sources == ["em2d"]
    assert "[curate] source vol: its results carry no record of what produced them; curating it again" in err
