"""The curation run as an Apache Beam pipeline (docs/method.md §1).

    files ─Stats─► side input ─┐
    units ────────────────────Patch+hash─► GroupByKey(source) ─Dedup─► Reshuffle ─Score+write─►
    GroupByKey(source) ─Finalize (atomic commit per source)

Locally it runs on Beam's direct FnApiRunner with two worker processes (`direct_running_mode=multi_processing`,
`direct_num_workers=2`); any other Beam flags (`--runner=FlinkRunner`, Dataflow options, …) pass straight
through `beam_args`. Workers exchange patches through files under `out`, so remote runners need `out` on a
filesystem every worker sees. Re-running skips sources whose manifest part was committed by the same files and
flags (`guards.source_key`, saying why when they differ) and redoes the rest from scratch, which gives the
identical manifest. One run at a time per output folder (`<out>/.curate.lock`).
"""

from __future__ import annotations

import os
import sys
import threading
import time
from dataclasses import dataclass, field

from cemjax.curate import guards, manifest, stages
from cemjax.curate.sources import Rejected, discover, split_name

LOCAL_DEFAULTS = {
    # Beam's FnApiRunner, which "DirectRunner" falls back to: naming it skips DirectRunner's first try, the Prism
    # runner, whose binary Beam downloads from GitHub (fails offline, with a warning, before falling back)
    "runner": "apache_beam.runners.portability.fn_api_runner.FnApiRunner",
    "direct_num_workers": 2,
    "direct_running_mode": "multi_processing",
}


@dataclass
class CurateConfig:
    """Flags of one run. spacing: (sz, sy, sx) nm for volumes without metadata; model_dir: trained quality
    classifier (None → pre-filter only); threshold: keep when P(informative) > threshold (None: the
    classifier's own threshold from its quality.json)."""

    inputs: list[str]
    out: str
    seed: int = 0
    max_distance: int = 12
    rules: str = "paper"  # "paper" (the reference's v0.1) or "v2" (cemjax.curate.cross_sections.RULES)
    intensity: str = "auto"  # cemjax.io.convert.INTENSITY_RULES
    spacing: tuple[float, float, float] | None = None
    model_dir: str | None = None
    threshold: float | None = None
    budget: int = 64 << 20
    beam_args: list[str] = field(default_factory=list)
    progress: bool = True


@dataclass
class CurateResult:
    summary: list[dict]
    rejected: list[dict]
    skipped_sources: list[str]
    seconds: float


def _options(beam_args: list[str]):
    from apache_beam.options.pipeline_options import PipelineOptions  # the `beam` extra, needed to curate only

    given = {a.split("=")[0].lstrip("-") for a in beam_args if a.startswith("--")}
    skip = {"direct_num_workers"} if "--direct_running_mode=in_memory" in beam_args else set()  # one process
    extra = [f"--{k}={v}" for k, v in LOCAL_DEFAULTS.items() if k not in given | skip]
    return PipelineOptions([*beam_args, *extra], save_main_session=False)


def _progress(out: str, total: int, stop: threading.Event) -> None:
    """Print units done / total every 2 s (counts the unit files workers have written)."""
    t0, last, best = time.time(), -1, 0
    while not stop.wait(2.0):
        done = 0
        work = os.path.join(out, ".work")
        if os.path.isdir(work):
            for s in os.listdir(work):
                d = os.path.join(work, s, "units")
                done += sum(f.endswith(".npy") for f in os.listdir(d)) if os.path.isdir(d) else 0
        best = max(best, done)  # finished sources clean their unit files up
        if best != last:
            print(f"[curate] {best}/{total} units patched+hashed, {time.time() - t0:.0f}s", file=sys.stderr)
            last = best


def run(cfg: CurateConfig) -> CurateResult:
    """Curate `cfg.inputs` into `cfg.out`; returns the per-source summary and every rejected input."""
    import apache_beam as beam  # the `beam` extra, needed to curate only

    t0 = time.time()
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # one BLAS thread per worker process
    cfg.spacing = guards.check_spacing(cfg.spacing)
    guards.check_model_dir(cfg.model_dir)
    out = os.path.abspath(cfg.out)
    guards.check_output(out, [split_name(i)[1] for i in cfg.inputs])
    os.makedirs(out, exist_ok=True)
    lock = guards.lock_output(out)
    try:
        return _run_locked(cfg, out, beam, t0)
    finally:
        guards.unlock_output(lock)


def _run_locked(cfg: CurateConfig, out: str, beam, t0: float) -> CurateResult:
    guards.remove_temporaries(out)
    plan = discover(cfg.inputs, cfg.spacing, cfg.rules, cfg.budget, exclude=out)
    for r in plan.rejected:
        print(r.line(), file=sys.stderr)
    for note in plan.skipped:
        print(f"note: {note}", file=sys.stderr)
    for source, notes in sorted(plan.notes.items()):
        for note in notes:
            print(f"[curate] {source}: {note}", file=sys.stderr)
    n_files = {s: len(f) for s, f in plan.files.items()}
    params = guards.run_params(cfg)
    keys = {s: guards.source_key([f.path for f in plan.files[s]], params) for s in plan.files}
    done, todo = [], []
    for s in sorted(plan.files):
        if not manifest.is_finished(out, s):
            todo.append(s)
            continue
        why = guards.stale_reason(manifest.stored_key(out, s), keys[s])
        if why:
            print(f"[curate] source {s}: {why}; curating it again", file=sys.stderr)
            todo.append(s)
        else:
            done.append(s)
    for s in done:
        print(f"[curate] {s}: already finished, skipped", file=sys.stderr)
    kept_as_is = [s for s in manifest.committed_sources(out) if s not in plan.files]
    for s in kept_as_is:
        key = manifest.stored_key(out, s) or {}
        n_files[s] = sum(1 for f in key.get("files", []) if not str(f[0]).endswith(".json"))
        print(f"[curate] source {s}: not among these inputs; its results from an earlier run are kept as they "
              f"are (delete {out}/patches/{s} and {out}/.parts/{s}.* to drop them)", file=sys.stderr)  # fmt: skip
    for s in todo:
        manifest.reset_source(out, s)
    infos = [f for s in todo for f in plan.files[s]]
    units = [(info, unit, k) for s in todo for k, (info, unit) in enumerate(plan.units[s])]
    if units:
        stop = threading.Event()
        if cfg.progress:
            threading.Thread(target=_progress, args=(out, len(units), stop), daemon=True).start()
        try:
            with beam.Pipeline(options=_options(cfg.beam_args)) as p:
                stats = p | "Files" >> beam.Create(infos) | "Stats" >> beam.Map(stages.file_stats)
                _ = (
                    p
                    | "Units" >> beam.Create(units)
                    | "PatchHash"
                    >> beam.Map(
                        stages.patch_unit, stats=beam.pvalue.AsDict(stats), out=out, intensity=cfg.intensity
                    )  # fmt: skip
                    | "BySource" >> beam.GroupByKey()
                    | "Dedup" >> beam.FlatMap(stages.dedup_source, seed=cfg.seed, max_distance=cfg.max_distance)
                    | "Spread" >> beam.Reshuffle()
                    | "Score" >> beam.Map(stages.score_unit, out=out, model_dir=cfg.model_dir, threshold=cfg.threshold)
                    | "Collect" >> beam.GroupByKey()
                    | "Finalize" >> beam.Map(manifest.finalize_source, out=out, n_files=n_files, keys=keys)
                )
        finally:
            stop.set()
    for r in _new_rejections(out, todo):
        print(r.line(), file=sys.stderr)
    sources = sorted([*plan.files, *kept_as_is])
    summary, rejected = manifest.merge_outputs(out, sources, n_files, plan.rejected, plan.notes)
    for row in summary:
        if row["raw"] and not row["filtered"]:  # never let a whole source vanish without a word
            print(f"warning: source {row['source']} keeps no patch: {row['notes']} (intensity: {row['intensity']})",
                  file=sys.stderr)  # fmt: skip
    return CurateResult(summary, rejected, done, time.time() - t0)


def _new_rejections(out: str, sources: list[str]) -> list[Rejected]:
    found = []
    for s in sources:
        path = os.path.join(out, ".parts", f"{s}.rejected.csv")
        if os.path.exists(path):
            found += [Rejected(r["path"], r["reason"], s) for r in manifest.read_csv(path)]
    return found
