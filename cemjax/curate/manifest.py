"""Per-source finalisation (manifest part, contact sheets, atomic commit) and the run-level outputs.

Manifest columns: name, source, file, axis, slice, y0, y1, x0, x1, hash (16 hex digits, imagehash's
order), exemplar (name of the patch that represents this one's near-duplicate set; itself if kept by dedup),
score (classifier P(informative), empty if not scored), kept (0/1), reason (kept, duplicate, blank,
saturated, low_quality).
"""

from __future__ import annotations

import csv
import json
import os
import shutil

import numpy as np

from cemjax.common.files import atomic_write, write_json
from cemjax.common.pictures import write_contact_sheet

COLUMNS = ["name", "source", "file", "axis", "slice", "y0", "y1", "x0", "x1", "hash", "exemplar", "score"]
COLUMNS += ["kept", "reason"]
SUMMARY = ["source", "files", "raw", "dedup", "filtered", "rejected_files", "intensity", "notes"]
SHEET_SAMPLES = 24


def _write_csv(path: str, columns: list[str], rows: list[dict]) -> None:
    def write(tmp: str) -> None:
        with open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
            w.writeheader()
            w.writerows(rows)

    atomic_write(path, write)


def read_csv(path: str) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _sheet(path: str, rows: list[dict], work: str, title: str) -> None:
    picks = rows[:: max(1, len(rows) // SHEET_SAMPLES)][:SHEET_SAMPLES]
    cache: dict[int, np.ndarray] = {}
    images = []
    for r in picks:
        k = int(r["unit"])
        if k not in cache:
            cache[k] = np.load(os.path.join(work, "units", f"{k:06d}.npy"), mmap_mode="r")
        images.append(np.asarray(cache[k][int(r["row"])]))
    if images:
        write_contact_sheet(path, images, titles=[f"{title}: {r['reason']}" for r in picks], ncols=8, tile_size=112)


def finalize_source(keyed: tuple[str, list], out: str, n_files: dict, keys: dict | None = None) -> dict:
    """Write the source's manifest part, sheets and rejections, then commit by renaming (part last)."""
    source, parts = keyed
    rows = sorted((r for p in parts for r in p.get("rows", [])), key=lambda r: r["name"])
    rejected = sorted({tuple(x) for p in parts for x in p.get("rejected", [])})
    intensity = sorted({p["intensity"] for p in parts if p.get("intensity")})
    work = os.path.join(out, ".work", source)
    staging = os.path.join(work, "staging")
    os.makedirs(os.path.join(staging, "patches"), exist_ok=True)
    sheets = os.path.join(out, "sheets")
    os.makedirs(sheets, exist_ok=True)
    _sheet(os.path.join(sheets, f"{source}_kept.png"), [r for r in rows if r["kept"] == 1], work, "kept")
    _sheet(os.path.join(sheets, f"{source}_removed.png"), [r for r in rows if r["kept"] != 1], work, "removed")
    _write_csv(os.path.join(staging, "manifest.csv"), COLUMNS, rows)
    parts_dir = os.path.join(out, ".parts")
    os.makedirs(parts_dir, exist_ok=True)
    write_json(os.path.join(parts_dir, f"{source}.json"), {"intensity": intensity, "key": (keys or {}).get(source)})
    _write_csv(
        os.path.join(parts_dir, f"{source}.rejected.csv"),
        ["path", "reason", "source"],
        [{"path": p, "reason": why, "source": source} for p, why in rejected],
    )
    final = os.path.join(out, "patches", source)
    os.makedirs(os.path.dirname(final), exist_ok=True)
    if os.path.exists(final):
        shutil.rmtree(final)
    os.replace(os.path.join(staging, "patches"), final)
    os.replace(os.path.join(staging, "manifest.csv"), os.path.join(parts_dir, f"{source}.csv"))  # the commit
    shutil.rmtree(work, ignore_errors=True)
    return summary_row(source, rows, n_files.get(source, 0), len(rejected), intensity)


def vanished_note(rows: list[dict]) -> str:
    """ "" unless a source lost every patch: then why, and what to try (a mis-scaled source looks blank)."""
    if not rows or any(int(r["kept"]) == 1 for r in rows):
        return ""
    reasons: dict[str, int] = {}
    for r in rows:
        reasons[r["reason"]] = reasons.get(r["reason"], 0) + 1
    why = ", ".join(f"{k} {v}" for k, v in sorted(reasons.items()))
    return (f"every one of its {len(rows)} patches was removed ({why}); if the images are not blank, their "
            f"intensities may be mis-scaled: try --intensity percentile")  # fmt: skip


def summary_row(source: str, rows: list[dict], files: int, rejected: int, intensity=(), notes=()) -> dict:
    """raw → dedup → filtered counts of one source, the intensity rule(s) its files got, and notes."""
    dedup = sum(1 for r in rows if r["reason"] != "duplicate")
    kept = sum(1 for r in rows if int(r["kept"]) == 1)
    notes = [*notes, *filter(None, [vanished_note(rows)])]
    return {"source": source, "files": files, "raw": len(rows), "dedup": dedup, "filtered": kept,
            "rejected_files": rejected, "intensity": "; ".join(intensity), "notes": "; ".join(notes)}  # fmt: skip


def is_finished(out: str, source: str) -> bool:
    return os.path.exists(os.path.join(out, ".parts", f"{source}.csv"))


def stored_key(out: str, source: str) -> dict | None:
    """The key (`guards.source_key`) a committed source was made with; None if it has none or it is unreadable."""
    try:
        with open(os.path.join(out, ".parts", f"{source}.json")) as f:
            return json.load(f).get("key")
    except (OSError, ValueError, AttributeError):
        return None


def committed_sources(out: str) -> list[str]:
    parts = os.path.join(out, ".parts")
    names = os.listdir(parts) if os.path.isdir(parts) else []
    parts_csv = (n for n in names if n.endswith(".csv") and not n.endswith(".rejected.csv"))
    return sorted(n[: -len(".csv")] for n in parts_csv if not n.startswith("."))  # ".…tmp.csv": a write cut short


def reset_source(out: str, source: str) -> None:
    """Remove what an interrupted run left for an unfinished source (temp work and a half-committed folder)."""
    shutil.rmtree(os.path.join(out, ".work", source), ignore_errors=True)
    shutil.rmtree(os.path.join(out, "patches", source), ignore_errors=True)


def merge_outputs(
    out: str, sources: list[str], n_files: dict, plan_rejected: list, notes: dict | None = None
) -> tuple[list[dict], list]:
    """manifest.csv, summary.csv and rejected.csv from the committed parts → (summary rows, rejected rows).
    `notes`: per source, the planner's notes (cross-sections left out, renames)."""
    rows, summary, rejected = (
        [],
        [],
        [{"path": r.path, "reason": r.reason, "source": r.source} for r in plan_rejected],
    )
    for s in sorted(sources):
        part = read_csv(os.path.join(out, ".parts", f"{s}.csv"))
        rej = read_csv(os.path.join(out, ".parts", f"{s}.rejected.csv"))
        info_path = os.path.join(out, ".parts", f"{s}.json")
        intensity = json.load(open(info_path))["intensity"] if os.path.exists(info_path) else []
        rows += part
        rejected += rej
        summary.append(summary_row(s, part, n_files.get(s, 0), len(rej), intensity, (notes or {}).get(s, ())))
    rejected.sort(key=lambda r: (r["path"], r["reason"]))
    _write_csv(os.path.join(out, "manifest.csv"), COLUMNS, rows)
    _write_csv(os.path.join(out, "summary.csv"), SUMMARY, summary)
    _write_csv(os.path.join(out, "rejected.csv"), ["path", "reason", "source"], rejected)
    return summary, rejected


def format_summary(summary: list[dict]) -> str:
    """Plain-text table: source | files | raw | dedup | filtered | rejected files, with a total row; then one
    line per source note (cross-sections left out, a source that lost every patch, …)."""
    total = {k: sum(int(r[k]) for r in summary) for k in ("files", "raw", "dedup", "filtered", "rejected_files")}
    lines = [f"{'source':<32} {'files':>6} {'raw':>9} {'dedup':>9} {'filtered':>9} {'rejected':>9}"]
    for r in [*summary, {"source": "TOTAL", **total}]:
        lines.append(
            f"{r['source'][:32]:<32} {r['files']:>6} {r['raw']:>9} {r['dedup']:>9} {r['filtered']:>9} "
            f"{r['rejected_files']:>9}"
        )
    lines += [f"note: {r['source']}: {note}" for r in summary for note in filter(None, r["notes"].split("; "))]
    return "\n".join(lines)
