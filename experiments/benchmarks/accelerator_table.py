"""The rows, table, goals and files of `accelerator.py` (no JAX or PyTorch here)."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field

GIB = 2.0**30
COLUMNS = ("#", "measurement", "batch", "throughput", "ms/step", "device peak GiB", "MFU", "ratio", "note")


def one_line(err: BaseException) -> str:
    """An exception as one short line: its type and the first line of its message."""
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0][:200]}" if text else type(err).__name__


@dataclass
class Row:
    """One row of the table; `status` is pending, ok, failed or skipped. Units: seconds, bytes, fractions."""

    key: str
    title: str
    status: str = "pending"
    batch: int | None = None
    throughput: str = ""
    img_per_s: float | None = None
    step_s: float | None = None
    device_bytes: int | None = None
    mfu: float | None = None
    ratio: str = ""
    note: str = ""
    extra: dict = field(default_factory=dict)

    def fill(self, *, batch: int, throughput: str = "", throughput_img: float | None = None, step_s=None,
             device_bytes=None, mfu=None, ratio: str = "", note: str = "") -> None:  # fmt: skip
        self.status, self.batch, self.step_s, self.device_bytes, self.mfu = "ok", batch, step_s, device_bytes, mfu
        self.img_per_s = throughput_img
        if throughput_img is not None:
            throughput = f"{throughput_img:,.0f} img/s" if throughput_img >= 100 else f"{throughput_img:.2f} img/s"
        self.throughput, self.ratio, self.note = throughput, ratio or self.ratio, note

    def fail(self, err: BaseException) -> None:
        self.status, self.note = "failed", f"failed: {one_line(err)}"

    def skip(self, why: str) -> None:
        self.status, self.note = "skipped", f"skipped: {why}"

    def cells(self) -> list[str]:
        if self.status != "ok":
            return [self.key, self.title, "", "", "", "", "", "", self.note or "not run yet"]
        gib = "" if self.device_bytes is None else f"{self.device_bytes / GIB:.2f}"
        return [
            self.key, self.title, str(self.batch), self.throughput,
            "" if self.step_s is None else f"{self.step_s * 1e3:.1f}", gib,
            "n/a" if self.mfu is None else f"{self.mfu:.1%}", self.ratio or "—", self.note,
        ]  # fmt: skip


def _ratio(rows: dict[str, Row], ours: str, theirs: str) -> float | None:
    a, b = rows[ours], rows[theirs]
    if a.status == b.status == "ok" and a.step_s and b.step_s:
        return b.step_s / a.step_s
    return None


def goals(rows: dict[str, Row], tiny: bool) -> list[str]:
    """One line per goal of the full run: the measured value and whether it is met."""
    verdict = lambda ok: "—" if ok is None else ("met" if ok else "NOT met")  # noqa: E731
    moco = rows["1"].img_per_s if rows["1"].status == "ok" else None
    r_moco, r_seg = _ratio(rows, "1", "2"), _ratio(rows, "3a", "3b")
    host = rows["4"].extra.get("host_factor") if rows["4"].status == "ok" else None
    lines = [
        f"MoCoV2 step ≥ 4,000 img/s on one H100/H200: {'—' if moco is None else f'{moco:,.0f}'} "
        f"({verdict(None if moco is None else moco >= 4000)})",
        f"MoCoV2 step ≥ 1.5× PyTorch: {'—' if r_moco is None else f'{r_moco:.2f}×'} "
        f"({verdict(None if r_moco is None else r_moco >= 1.5)})",
        f"fine-tuning ≥ 1.2× smp + AMP: {'—' if r_seg is None else f'{r_seg:.2f}×'} "
        f"({verdict(None if r_seg is None else r_seg >= 1.2)})",
        f"orthoplane within device memory, host ≤ 3× the volume: {'—' if host is None else f'{host:.2f}×'} "
        f"({verdict(None if host is None else host <= 3.0)})",
    ]
    prefix = "goal (tiny run: the goals are for the full run) " if tiny else "goal "
    return [prefix + line for line in lines]


def render(header: list[str], rows: list[Row], goal_lines: list[str]) -> str:
    """The Markdown table with its header lines, goals and a key to the columns."""
    out = [*header, "", "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    out += ["| " + " | ".join(row.cells()) + " |" for row in rows]
    out += ["", *goal_lines, ""]
    out.append("MFU: model FLOPs (XLA's count of the forward pass: MoCoV2 4×, fine-tuning 3×, inference 1× per "
               "image or slice) per second over the dense bf16 peak. Device peak: cemjax, the compiled step's "
               "bytes; PyTorch, max_memory_allocated; row 4, the process's peak. Ratio: img/s over the baseline's, "
               "same run.")  # fmt: skip
    return "\n".join(out) + "\n"


def write_outputs(path: str, table: str, info: dict, rows: dict[str, Row]) -> None:
    """The table to `path` and its numbers as JSON beside it (`path` with .json for .md, else + .json)."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    with open(path, "w") as f:
        f.write(table)
    json_path = path[:-3] + ".json" if path.endswith(".md") else path + ".json"
    with open(json_path, "w") as f:
        json.dump({"info": info, "rows": [asdict(r) for r in rows.values()]}, f, indent=1, default=str)


def titles(s) -> dict[str, str]:
    """The rows' titles for the sizes `s` (accelerator.Sizes)."""
    enc = f"ResNet-{s.encoder.removeprefix('resnet')}"
    dt = "bf16/fp32" if s.dtype == "bfloat16" else s.dtype
    return {
        "1": f"MoCoV2 step, cemjax: {enc}, {s.image}², queue {s.queue:,}, on-device views, {dt}",
        "2": f"the same step, PyTorch: torchvision {enc}, AMP bf16, channels_last",
        "3a": f"UNet-{enc} fine-tuning step, cemjax, {s.crop}², {dt}",
        "3b": f"the same step, smp.Unet + AMP bf16, channels_last, {s.crop}²",
        "4": f"orthoplane inference, UNet-{enc}, {s.volume}³ uint8, {dt}",
    }
