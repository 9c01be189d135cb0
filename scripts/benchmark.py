#!/usr/bin/env python
# Copyright 2026 The epmvg authors. Licensed under the Apache License, Version 2.0.
r"""
Speed and memory benchmark of EpmVG (default TransVG R-50 config, random weights, no download), side by side with
references measured in the same run: a standalone tool (`python scripts/benchmark.py`), not part of the packages.

Every case, and every reference, runs in a fresh subprocess (scripts/benchmark_cases.py), so its peak RSS (VmHWM) is
its own, and reports the median time over `--repeats` runs after `--warmup` runs. With `--rounds R` the whole list
runs R times, a case and its reference next to each other, in alternating order, so that they share the machine's
state; the median is taken over all rounds. Each case runs with the CPU allocator the commands choose
(`efficiency_epmvg.use_fast_cpu_allocator`), unless its options say otherwise.

Cases (`--cases`, comma-separated):

- `forward-b{B}-{S}`: inference latency, batch B at canvas side S, under `torch.inference_mode()`.
- `train-b{B}-{S}`: one training step (forward + backward + AdamW) through `EpmVGDistillationTrainer.compute_loss`
  with distillation off (both distillation coefficients 0).
- `trainer_step`: seconds per step of the demo's student (scripts/demo.py: 3 fusion layers, 2 frozen MiniLM layers
  whose states are cached, 64 px canvas, batch 32, its data and collator) through `epmvg-train`'s main,
  distillation off.
- `roofline`: a 2048^3 fp32 matmul, the machine's achievable GFLOP/s (bf16 too on CUDA).
- `flops-{S}`: FLOP count per sample at side S (forward, train step, teacher) with `torch.utils.flop_counter`; added
  automatically for the sizes of the timed cases. GFLOP/s of a case = counted FLOPs / measured time.
- `data-{S}`: data pipeline throughput of one worker (one thread), images/s: JPEG decode and `EpmVGDataCollator`
  with `EpmVGAugmentation` (training); `eval` is decode and the collator without augmentation.

References (`"reference"` in the JSON, with `"reference_median_s"` and `"ratio"` = case time / reference time):

- `plain_loop`, of `trainer_step`: a plain PyTorch loop over what `epmvg-train` builds from the same arguments (the
  model, the data through a DataLoader with the same collator, text-state cache and workers, the Trainer's
  optimizer over the same parameter groups): the Trainer's own per-step cost.
- `transvg`, of the `forward-*` and `train-*` cases without teacher options: TransVG's own code at its defaults, when
  `--transvg-source DIR` points at a checkout of djiajunustc/TransVG (imported from there at run time; see
  scripts/benchmark_transvg.py). Without it these cases say that their TransVG reference was skipped.

Options appended with `+` (e.g. `train-b8-640+ckpt`, `forward-b8-640+malloc+cl`):

- `live`: distillation with a live ViT-B/16-sized CLIP teacher (random weights); `cached`: with cached teacher
  embeddings in the batch (no teacher forward).
- `ckpt`: gradient checkpointing (`model.activation_checkpointing_enable()`); as with `epmvg-train
  --gradient_checkpointing`, glibc's allocator keeps its defaults (memory first).
- `cl`: channels_last memory format for the convolutional backbone and the pixel values.
- `compile`: `torch.compile(model)`, for inference with inductor's `freezing` (weights become constants:
  the BatchNorm-scaled convolution weights are computed once, ReLUs fuse); compilation happens in the warm-up run
  and is reported.
- `nograd`: forward under `torch.no_grad()` instead of `torch.inference_mode()`.
- `glibc`: glibc's own allocator settings (`EPMVG_CPU_ALLOCATOR=default`, the commands' opt-out).
- `malloc`, `release`, `thp`: the case's process starts with the environment variables of glibc's allocator settings
  `keep` (freed memory is kept for reuse: what the commands' default does through mallopt), `release` (memory first:
  freed blocks of 16 MB or more go back to the OS at once) or `huge_pages` (transparent huge pages: 512x fewer page
  faults), as `modeling_epmvg.efficiency_epmvg.ALLOCATOR_SETTINGS` names them; `thp` combines with either of the
  others and with the default.
- `bf16`: bf16 autocast (CUDA only: this CPU has no native bf16 and runs it ~250x slower than fp32).

Examples:

```bash
python scripts/benchmark.py --quick --output-json b.json        # < 5 minutes on 2 CPU cores
python scripts/benchmark.py --transvg-source ~/TransVG --output-json bench.json --markdown bench.md
python scripts/benchmark.py --cases forward-b1-640,forward-b1-640+glibc --rounds 3 --transvg-source ~/TransVG
```
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from benchmark_cases import ALLOCATOR_OPTIONS, RESULT_PREFIX, BenchmarkCase, parse_case
from benchmark_transvg import check_source


CASES_SCRIPT = Path(__file__).with_name("benchmark_cases.py")
QUICK_CASES = (
    "roofline",
    "forward-b1-640",
    "forward-b1-320",
    "forward-b8-320",
    "train-b8-320",
    "train-b8-320+cached",
    "trainer_step",
    "data-640",
)
FULL_CASES = (
    "roofline",
    "forward-b1-640",
    "forward-b1-640+glibc",
    "forward-b1-640+malloc+thp",
    "forward-b1-640+thp",
    "forward-b1-640+cl",
    "forward-b1-640+compile",
    "forward-b8-640",
    "forward-b1-320",
    "forward-b8-320",
    "train-b8-640",
    "train-b8-640+glibc",
    "train-b8-640+malloc+thp",
    "train-b8-640+thp",
    "train-b8-640+ckpt",
    "train-b8-640+ckpt+release",
    "train-b8-640+ckpt+release+thp",
    "train-b8-640+cached",
    "train-b8-640+live",
    "train-b8-320",
    "train-b8-320+cached",
    "train-b8-320+live",
    "train-b8-320+ckpt",
    "trainer_step",
    "data-640",
)
CUDA_EXTRA_CASES = ("forward-b8-640+bf16", "train-b8-640+bf16", "train-b8-640+live+bf16", "train-b32-640+bf16")
# timed steps of the trainer cases (after --trainer-warmup untimed ones): the demo logs every 50 steps
TRAINER_STEPS = {"quick": 60, "full": 200}


def reference_of(case: BenchmarkCase, transvg_source: str | None) -> tuple[str | None, str | None]:
    """(the name of the case's reference process, or None; why it has none although it could have one, or None)."""
    if case.kind == "trainer_step":
        return "plain_loop", None
    if case.kind not in ("forward", "train") or set(case.options) & {"live", "cached", "bf16"}:
        return None, None
    if transvg_source is None:
        return None, "TransVG's code: skipped (no --transvg-source DIR, a checkout of djiajunustc/TransVG)"
    return f"transvg:{case.kind}-b{case.batch_size}-{case.image_size}", None


@dataclass
class CaseResult:
    """Aggregated measurements of one case (or reference) over all rounds."""

    name: str
    times: list[float] = field(default_factory=list)
    peak_rss_gb: float = 0.0
    peak_gpu_gb: float | None = None
    extra: dict = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    @property
    def median(self) -> float | None:
        return statistics.median(self.times) if self.times else None


def process_environment(case: BenchmarkCase) -> dict[str, str]:
    """The environment of the case's process: the allocator variables its options name."""
    from modeling_epmvg.efficiency_epmvg import ALLOCATOR_VARIABLE, allocator_environment

    settings = [setting for option, setting in ALLOCATOR_OPTIONS.items() if option in case.options]
    environment = allocator_environment(os.environ, settings)
    if "glibc" in case.options:
        environment[ALLOCATOR_VARIABLE] = "default"
    return environment


def run_process(case: BenchmarkCase, args: argparse.Namespace) -> dict:
    """Runs one case in a fresh Python process and returns its result, or `{"error": ...}`."""
    command = [sys.executable, str(CASES_SCRIPT), case.name, "--device", args.device]
    command += ["--warmup", str(args.warmup), "--repeats", str(args.repeats)]
    if args.threads:
        command += ["--threads", str(args.threads)]
    if case.code == "transvg":
        command += ["--transvg-source", args.transvg_source]
    if case.kind in ("trainer_step", "plain_loop"):
        command += ["--trainer-data", args.trainer_data, "--trainer-steps", str(args.trainer_steps)]
        command += ["--trainer-warmup", str(args.trainer_warmup)]
    try:
        completed = subprocess.run(
            command, env=process_environment(case), capture_output=True, text=True, timeout=args.case_timeout
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {args.case_timeout} s"}
    for line in reversed(completed.stdout.splitlines()):
        if line.startswith(RESULT_PREFIX):
            return json.loads(line[len(RESULT_PREFIX) :])
    tail = (completed.stderr or completed.stdout).strip().splitlines()[-5:]
    return {"error": f"exit code {completed.returncode}: " + " | ".join(tail)}


def _merge(aggregate: CaseResult, result: dict) -> None:
    if "error" in result:
        aggregate.errors.append(result["error"])
        return
    aggregate.times += result.pop("times", [])
    aggregate.peak_rss_gb = max(aggregate.peak_rss_gb, result.pop("peak_rss_gb"))
    if "peak_gpu_gb" in result:
        aggregate.peak_gpu_gb = max(aggregate.peak_gpu_gb or 0.0, result.pop("peak_gpu_gb"))
    for key, value in result.items():
        aggregate.extra.setdefault(key, []).append(value)


def load_average() -> list[float]:
    """The 1, 5 and 15 minute load averages (other processes compete for the same cores)."""
    try:
        return [round(value, 2) for value in os.getloadavg()]
    except OSError:
        return []


def machine_info(device: str) -> dict:
    """CPU model, cores, memory and library versions, for the report."""
    import torch
    import transformers

    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            cpu = next(line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    memory_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1e9
    info = {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": round(memory_gb, 1),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "python": platform.python_version(),
        "device": device,
    }
    if device == "cuda":
        info["gpu"] = torch.cuda.get_device_name()
    return info


def case_list(args: argparse.Namespace) -> list[BenchmarkCase]:
    """The cases to run, with a roofline and the FLOP counts that the GFLOP/s column needs."""
    if args.cases:
        names = [name for name in args.cases.split(",") if name.strip()]
    else:
        names = list(QUICK_CASES if args.quick else FULL_CASES)
        if args.device == "cuda":
            names += [] if args.quick else list(CUDA_EXTRA_CASES)
    cases = [parse_case(name) for name in names]
    references = [case.name for case in cases if case.code == "transvg" or case.kind == "plain_loop"]
    if references:
        raise ValueError(f"{references} are references, run beside their cases: list the cases themselves.")
    if args.device != "cuda" and any("bf16" in case.options for case in cases):
        raise ValueError("+bf16 cases need --device cuda: this CPU has no native bf16 (never use bf16 on it).")
    if not args.no_flops:
        sizes = sorted({case.image_size for case in cases if case.kind in ("forward", "train")})
        known = {case.name for case in cases}
        cases = [parse_case(f"flops-{size}") for size in sizes if f"flops-{size}" not in known] + cases
        if sizes and "roofline" not in known:
            cases.insert(0, parse_case("roofline"))
    return cases


def schedule(cases: list[BenchmarkCase], round_index: int, transvg_source: str | None) -> list[BenchmarkCase]:
    """The processes of one round: each case next to its reference (once per round), the order flipped every round."""
    order, seen = [], set()
    for case in cases:
        reference, _ = reference_of(case, transvg_source)
        pair = [case] + ([parse_case(reference)] if reference and reference not in seen else [])
        seen.add(reference)
        order += pair if round_index % 2 == 0 else pair[::-1]
    return order


def gflops(case: BenchmarkCase, median: float, flops: dict) -> float | None:
    """Useful GFLOP/s of a timed case (recomputation under checkpointing not counted)."""
    counts = flops.get(case.image_size)
    if counts is None or median is None or case.kind not in ("forward", "train"):
        return None
    per_sample = counts["forward_flops"] if case.kind == "forward" else counts["train_flops"]
    if "live" in case.options:
        per_sample += counts["teacher_flops"]
    return per_sample * case.batch_size / median / 1e9


def summarize(cases: list[BenchmarkCase], results: dict[str, CaseResult], transvg_source: str | None) -> list[dict]:
    """One row per case: median / min time, throughput, GFLOP/s, share of the roofline, peak memory, its reference."""
    flops = {
        case.image_size: {key: values[0] for key, values in results[case.name].extra.items() if key.endswith("_flops")}
        for case in cases
        if case.kind == "flops" and results[case.name].extra
    }
    roofline = results.get("roofline")
    peak = roofline.extra["gflops"][0] if roofline and roofline.extra.get("gflops") else None
    rows = []
    for case in cases:
        result = results[case.name]
        row = {"case": case.name, "median_s": result.median, "min_s": min(result.times) if result.times else None}
        row["runs"] = len(result.times)
        row["peak_rss_gb"] = result.peak_rss_gb or None
        row["peak_gpu_gb"] = result.peak_gpu_gb
        if case.kind in ("forward", "train") and result.median:
            row["images_per_s"] = case.batch_size / result.median
        if case.kind == "trainer_step" and result.median:
            row["steps_per_s"] = 1 / result.median
        if case.kind == "data" and result.extra:
            row["images_per_s"] = statistics.median(result.extra["images_per_s"])
            row["eval_images_per_s"] = statistics.median(result.extra["eval_images_per_s"])
        if case.kind == "roofline" and peak:
            row["gflops"] = peak
            row["gflops_bf16"] = (result.extra.get("gflops_bf16") or [None])[0]
        if case.kind == "flops" and case.image_size in flops:
            row |= {key: value / 1e9 for key, value in flops[case.image_size].items()}  # GFLOP per sample
        achieved = gflops(case, result.median, flops)
        if achieved is not None:
            row["gflops"] = achieved
            row["roofline_fraction"] = achieved / peak if peak else None
        row |= _reference_fields(case, result, results, transvg_source)
        if result.extra.get("first_run_s") and "compile" in case.options:
            row["first_run_s"] = max(result.extra["first_run_s"])  # compilation included
        if result.errors:
            row["errors"] = result.errors
        rows.append(row)
    return rows


def _reference_fields(case, result: CaseResult, results: dict, transvg_source: str | None) -> dict:
    """`reference`, `reference_median_s`, `reference_peak_rss_gb`, `ratio` (or `reference_skipped`) of a row."""
    name, skipped = reference_of(case, transvg_source)
    if skipped:
        return {"reference_skipped": skipped}
    if name is None:
        return {}
    reference = results[name]
    fields = {
        "reference": "plain_loop" if name == "plain_loop" else "transvg",
        "reference_case": name,
        "reference_median_s": reference.median,
        "reference_peak_rss_gb": reference.peak_rss_gb or None,
        "ratio": result.median / reference.median if result.median and reference.median else None,
    }
    if reference.errors:
        fields["reference_errors"] = reference.errors
    return fields


def check_targets(rows: list[dict]) -> list[dict]:
    """The performance targets, each a ratio of two measurements of this run, where both were measured."""
    by_name = {row["case"]: row for row in rows}

    def value(name: str, key: str = "median_s"):
        return by_name.get(name, {}).get(key)

    targets = []

    def add(name: str, case: str, measured, limit: float | None, text: str):
        """One target row (lower is better); `limit` None only reports."""
        if measured is None:
            return
        met = None if limit is None else measured <= limit
        targets.append({"target": name, "case": case, "measured": measured, "limit": limit, "met": met, "text": text})

    add("forward b1@640 / TransVG's code", "forward-b1-640", value("forward-b1-640", "ratio"), 0.85, "<= 0.85x")
    add("train step b8@640 / TransVG's code", "train-b8-640", value("train-b8-640", "ratio"), 0.8, "<= 0.8x")
    # steps/s through the Trainer >= 0.9x the plain loop's: its seconds per step <= 1 / 0.9 of the loop's
    add("epmvg-train step / plain loop step", "trainer_step", value("trainer_step", "ratio"), 1 / 0.9, "<= 1.11x")
    for base in ("forward-b1-640", "train-b8-640"):
        # the commands' default (mallopt) against the fully opt-in environment (keep + huge pages)
        if value(base) and value(f"{base}+malloc+thp"):
            ratio = value(base) / value(f"{base}+malloc+thp")
            add(f"{base} default / +malloc+thp", base, ratio, 1.1, "<= 1.1x")
        if value(base) and value(f"{base}+glibc"):
            add(f"{base} default / +glibc", base, value(base) / value(f"{base}+glibc"), None, "report")
    ckpt = next((name for name in ("train-b8-640+ckpt+release+thp", "train-b8-640+ckpt+release") if value(name)), None)
    if ckpt and value(ckpt, "reference_peak_rss_gb"):
        ratio = value(ckpt, "peak_rss_gb") / value(ckpt, "reference_peak_rss_gb")
        add("peak RSS train b8@640 + ckpt / TransVG's train step", ckpt, ratio, 0.6, "<= 0.6x")
    plain = "train-b8-640+thp" if ckpt and ckpt.endswith("+thp") else "train-b8-640+glibc"
    if ckpt and value(plain):
        # against the step with glibc's own settings (what gradient checkpointing keeps) and the same page size
        add(f"ckpt step time / {plain} step time", ckpt, value(ckpt) / value(plain), 1.3, "< 1.3x")
    for size in (640, 320):
        off = f"train-b8-{size}"
        if value(off) and value(f"{off}+cached"):
            ratio = value(f"{off}+cached") / value(off)
            add(f"cached teacher / distillation off @{size}", f"{off}+cached", ratio, 1.05, "<= 1.05x")
        if value(off) and value(f"{off}+live"):
            ratio = value(f"{off}+live") / value(off)
            add(f"live ViT-B/16 teacher / distillation off @{size}", f"{off}+live", ratio, None, "report")
    data = next((row for row in rows if row["case"].startswith("data-")), None)
    if data and data.get("images_per_s"):
        # seconds per image against 1/60 s: at least 60 images/s per worker
        add(f"data pipeline {data['case']}: 60 images/s / measured", data["case"], 60 / data["images_per_s"], 1.0,
            "<= 1 (>= 60 images/s per worker)")  # fmt: skip
    return targets


def _format(value, digits: int = 2) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.{digits}f}" if abs(value) < 1000 else f"{value:.0f}"
    return str(value)


def markdown_report(report: dict) -> str:
    """The results as markdown: machine, a table of cases with their references, the targets."""
    machine = report["machine"]
    lines = [
        f"Machine: {machine['cpu']}, {machine['cores']} cores, {machine['memory_gb']} GB RAM, torch "
        f"{machine['torch']}, {report['threads']} threads, device {machine['device']}"
        + (f" ({machine['gpu']})" if machine.get("gpu") else "")
        + f"; load average before / after: {report['load_before']} / {report['load_after']}; "
        f"wall time {report['wall_time_s'] / 60:.1f} min.",
        "",
        "| case | median (s) | min (s) | runs | images/s | GFLOP/s | % of matmul roofline | peak RSS (GB) | "
        "reference | reference median (s) | ratio | reference peak RSS (GB) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|",
    ]
    for row in report["rows"]:
        case = row["case"]
        if case.startswith("flops-"):
            continue
        fraction = row.get("roofline_fraction")
        images = row.get("images_per_s")
        if row.get("eval_images_per_s"):
            images = f"{images:.1f} (eval {row['eval_images_per_s']:.1f})"
        if row.get("steps_per_s"):
            images = f"{row['steps_per_s']:.1f} steps/s"
        name = (
            case
            + (" (failed)" if row.get("errors") and not row.get("median_s") else "")
            + (f" (first run {row['first_run_s']:.0f} s)" if row.get("first_run_s") else "")
        )
        cells = [
            name,
            _format(row.get("median_s"), 3),
            _format(row.get("min_s"), 3),
            _format(row.get("runs")),
            _format(images, 1),
            _format(row.get("gflops"), 1),
            _format(100 * fraction if fraction else None, 0),
            _format(row.get("peak_rss_gb")),
            row.get("reference", "(skipped)" if row.get("reference_skipped") else ""),
            _format(row.get("reference_median_s"), 3),
            _format(row.get("ratio")) and f"{row['ratio']:.2f}x",
            _format(row.get("reference_peak_rss_gb")),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    skipped = sorted({row["reference_skipped"] for row in report["rows"] if row.get("reference_skipped")})
    lines += ["", *skipped] if skipped else []
    flops_rows = [row for row in report["rows"] if row["case"].startswith("flops-") and "forward_flops" in row]
    if flops_rows:
        lines += ["", "| FLOPs per sample (GFLOP) | forward | forward + backward | ViT-B/16 teacher forward |"]
        lines += ["|---|---:|---:|---:|"]
        for row in flops_rows:
            counts = [f"{row[key]:.1f}" for key in ("forward_flops", "train_flops", "teacher_flops")]
            lines.append(f"| {row['case']} | " + " | ".join(counts) + " |")
    if report["targets"]:
        lines += ["", "| target | case | measured | limit | met |", "|---|---|---:|---:|---|"]
        for target in report["targets"]:
            met = {True: "yes", False: "no", None: "(reported)"}[target["met"]]
            cells = [target["target"], target["case"], f"{target['measured']:.2f}", target["text"], met]
            lines.append("| " + " | ".join(cells) + " |")
    errors = [
        f"- {row['case']}{' (reference)' if key == 'reference_errors' else ''}: {error}"
        for row in report["rows"]
        for key in ("errors", "reference_errors")
        for error in row.get(key, [])
    ]
    if errors:
        lines += ["", "Errors:", *errors]
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="A small set (320, b1@640, trainer_step): < 5 min.")
    parser.add_argument("--cases", help="Comma-separated case names (see the module docstring).")
    parser.add_argument("--transvg-source", default=None, help="A checkout of djiajunustc/TransVG: the reference.")
    parser.add_argument("--repeats", type=int, default=2, help="Timed runs per case and round (default 2).")
    parser.add_argument("--warmup", type=int, default=1, help="Untimed runs before timing (default 1).")
    parser.add_argument("--rounds", type=int, default=None, help="Passes over the case list (default 2; 1 quick).")
    parser.add_argument("--trainer-steps", type=int, default=None, help="Timed steps of trainer_step (60 quick).")
    parser.add_argument("--trainer-warmup", type=int, default=10, help="Untimed steps before (default 10).")
    parser.add_argument("--threads", type=int, default=None, help="torch threads per case (default: torch's own).")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available).")
    parser.add_argument("--output-json", default=None, help="Write the full results to this JSON file.")
    parser.add_argument("--markdown", default=None, help="Also write the markdown table to this file.")
    parser.add_argument("--no-flops", action="store_true", help="Skip the FLOP counts and the roofline.")
    parser.add_argument("--case-timeout", type=int, default=1800, help="Seconds before a case is abandoned.")
    args = parser.parse_args(argv)
    if args.rounds is None:
        args.rounds = 1 if args.quick else 2
    if args.trainer_steps is None:
        args.trainer_steps = TRAINER_STEPS["quick" if args.quick else "full"]
    if min(args.repeats, args.rounds, args.trainer_steps, args.trainer_warmup) < 1 or args.warmup < 0:
        parser.error("--repeats, --rounds, --trainer-steps and --trainer-warmup must be at least 1, --warmup >= 0.")
    if args.transvg_source is not None:
        problem = check_source(args.transvg_source)
        if problem:
            parser.error(problem)
        args.transvg_source = str(Path(args.transvg_source).resolve())
    if args.device is None:
        import torch

        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        args.case_list = case_list(args)
    except ValueError as error:
        parser.error(str(error))
    return args


def run(args: argparse.Namespace) -> dict:
    """Runs every case and reference, `args.rounds` times, and returns the report."""
    import torch

    from modeling_epmvg.efficiency_epmvg import use_fast_cpu_allocator

    use_fast_cpu_allocator(args.device)  # as the commands do: the parent prepares the trainer cases' data
    cases = args.case_list
    start, load_before = time.perf_counter(), load_average()
    processes = {case.name: case for index in range(2) for case in schedule(cases, index, args.transvg_source)}
    results = {name: CaseResult(name) for name in processes}
    with tempfile.TemporaryDirectory() as trainer_data:
        if any(case.kind == "trainer_step" for case in cases):
            from benchmark_cases import prepare_trainer_data

            prepare_trainer_data(trainer_data)
        args.trainer_data = trainer_data
        for round_index in range(args.rounds):
            for case in schedule(cases, round_index, args.transvg_source):
                if case.kind in ("flops", "roofline") and round_index > 0 and not results[case.name].errors:
                    continue  # deterministic counts / one roofline suffice
                print(f"[round {round_index + 1}/{args.rounds}] {case.name} (load {load_average()})", file=sys.stderr)
                _merge(results[case.name], run_process(case, args))
    rows = summarize(cases, results, args.transvg_source)
    return {
        "machine": machine_info(args.device),
        "threads": args.threads or torch.get_num_threads(),
        "arguments": {key: value for key, value in vars(args).items() if key not in ("case_list", "trainer_data")},
        "load_before": load_before,
        "load_after": load_average(),
        "wall_time_s": time.perf_counter() - start,
        "processes": {name: asdict(result) for name, result in results.items()},
        "rows": rows,
        "targets": check_targets(rows) if args.device == "cpu" else [],
    }


def main(argv: list[str] | None = None) -> int:
    """Runs the benchmark, prints the markdown report and writes the files asked for."""
    report = run(parse_args(argv))
    text = markdown_report(report)
    print(text)
    if args_markdown := report["arguments"]["markdown"]:
        Path(args_markdown).write_text(text + "\n")
    if args_json := report["arguments"]["output_json"]:
        Path(args_json).write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
