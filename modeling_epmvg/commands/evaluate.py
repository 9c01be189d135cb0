# Copyright 2026 The epmvg authors. Licensed under the Apache License, Version 2.0.
"""Evaluate an EpmVG checkpoint on grounding splits: Acc@0.5 (IoU >= 0.5), Acc@t and mean IoU per split.

    epmvg-evaluate --model path/or/hub-id --dataset lmms-lab/RefCOCO --splits testA testB --output results.json
    accelerate launch --num_processes 4 -m modeling_epmvg.commands.evaluate --model ... --dataset ... --splits val

Under `accelerate launch` each process runs its share of every split's batches (`accelerator.prepare` on the data
loader) and `gather_for_metrics` collects the predicted boxes without the padding of the last batch, so the main
process scores every expression exactly once, prints a markdown table and writes a JSON file with the per-split
metrics and the per-example predictions.
"""

import argparse
import json
import logging
import math
import os
import sys

import torch
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from modeling_epmvg.efficiency_epmvg import compile_for_inference, use_fast_cpu_allocator

from .checkpoints import load_grounding_checkpoint
from .cli import EpmVGArgumentParser, EpmVGUsageError, run_command


logger = logging.getLogger("epmvg.evaluate")


def parse_args(argv=None) -> argparse.Namespace:
    from processing.data.sources import GroundingSourceArguments

    # the data flags (--image_root, --skip_invalid, --verify_images, --allow_pickle, ...) are epmvg-train's
    parser = EpmVGArgumentParser(GroundingSourceArguments, prog="epmvg-evaluate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="Saved model folder or Hub id (loaded with AutoModel).")
    parser.add_argument("--processor", help="Processor folder or Hub id (default: --model).")
    parser.add_argument(
        "--dataset",
        required=True,
        help="Hub id, local folder (parquet / saved / REFER / Flickr30k) or TransVG .pth file.",
    )
    parser.add_argument("--splits", nargs="+", help="Splits to evaluate (default: all).")
    parser.add_argument("--batch_size", type=int, default=16, help="Expressions per forward pass and process.")
    parser.add_argument("--num_workers", type=int, default=0, help="DataLoader workers per process.")
    parser.add_argument(
        "--compile",
        action="store_true",
        help="torch.compile the model for inference (about a minute once; then faster on CPU: for whole splits).",
    )
    parser.add_argument("--max_examples", type=int, help="Evaluate only the first N expressions of each split.")
    parser.add_argument(
        "--shuffle_expressions",
        type=int,
        metavar="SEED",
        help="Language check: permute the expressions across images with this seed (a model that reads them drops).",
    )
    parser.add_argument(
        "--iou_thresholds", type=iou_threshold, nargs="+", default=[0.25, 0.5, 0.75], help="Each in (0, 1]."
    )
    parser.add_argument("--output", default="eval_results.json", help="JSON file for metrics and predictions.")
    parser.add_argument("--revision", help="Model revision on the Hub.")
    parser.add_argument("--trust_remote_code", action="store_true", help="Allow the Hub model's own code.")
    args = parser.parse_args(argv)
    if args.batch_size < 1 or args.num_workers < 0:
        raise EpmVGUsageError(
            f"--batch_size must be at least 1 and --num_workers at least 0, "
            f"got {args.batch_size} and {args.num_workers}."
        )
    return args


def iou_threshold(text: str) -> float:
    """An IoU threshold of `--iou-thresholds`: a number in (0, 1]."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not an IoU threshold: give numbers in (0, 1], e.g. 0.5.")
    return value


def load_splits(args) -> dict:
    """{split: unified dataset}."""
    from processing.data.sources import GroundingSourceArguments, encode_images, load_grounding_dataset

    splits = load_grounding_dataset(args.dataset, split=args.splits, **GroundingSourceArguments.load_kwargs(args))
    if args.shuffle_expressions is not None:
        from processing.data.language_check import permute_expressions

        splits = {name: permute_expressions(split, args.shuffle_expressions) for name, split in splits.items()}
    # the collator decodes each image, so an undecodable file names its row
    return {name: encode_images(split) for name, split in splits.items()}


def predict(model, processor, dataset, args, accelerator, desc: str) -> list[list[float]]:
    """
    The predicted box (`(x1, y1, x2, y2)` in original pixels) of every row of `dataset`, in order, on every process:
    each process runs its share of the batches and `gather_for_metrics` drops the padding of the last one.
    """
    from processing.data.collator import EpmVGDataCollator

    collate = EpmVGDataCollator(processor, return_target_sizes=True)
    loader = DataLoader(dataset, batch_size=args.batch_size, collate_fn=collate, num_workers=args.num_workers)
    boxes = []
    with torch.inference_mode():
        for batch in tqdm(accelerator.prepare(loader), desc=desc, disable=not accelerator.is_local_main_process):
            target_sizes = batch.pop("target_sizes")
            batch.pop("labels", None)  # scored in original pixels below, no loss needed
            results = processor.post_process_visual_grounding(model(**batch), target_sizes=target_sizes)
            predicted = torch.stack([result["boxes"][0] for result in results]).float()
            boxes.append(accelerator.gather_for_metrics(predicted))
    return torch.cat(boxes).cpu().tolist()


def prediction_records(dataset, predictions: list[list[float]]) -> list[dict]:
    """Per-example records: index, metadata (without the image) and `pred_bbox`, one per row of `dataset`."""
    if len(predictions) != len(dataset):
        raise RuntimeError(
            f"Gathered {len(predictions)} predictions for {len(dataset)} expressions: each must be counted once."
        )
    rows = dataset.select_columns(["image_id", "ref_id", "expression", "bbox"])
    return [
        {**row, "index": index, "bbox": [float(v) for v in row["bbox"]], "pred_bbox": box}
        for index, (row, box) in enumerate(zip(rows, predictions))
    ]


def score(records: list[dict], thresholds: list[float], metric) -> tuple[dict, list[dict]]:
    """(metrics, the records with their IoU)."""
    from processing.data.metrics import box_iou

    predictions, references = [r["pred_bbox"] for r in records], [r["bbox"] for r in records]
    for record, iou in zip(records, box_iou(predictions, references).tolist()):
        record["iou"] = iou
    metrics = metric.compute(predictions=predictions, references=references, iou_thresholds=thresholds)
    return metrics, records


def markdown_table(results: dict[str, dict], thresholds: list[float]) -> str:
    """One row per split: examples, Acc@t for each threshold (in %), mean IoU (in %)."""
    names = [f"accuracy@{t:g}" for t in sorted({*thresholds, 0.5})]
    header = "| split | examples | " + " | ".join(f"Acc@{n.split('@')[1]}" for n in names) + " | mIoU |"
    lines = [header, "|" + "---|" * (len(names) + 3)]
    for split, metrics in results.items():
        cells = [f"{100 * metrics[n]:.2f}" for n in names] + [f"{100 * metrics['mean_iou']:.2f}"]
        lines.append(f"| {split} | {metrics['num_examples']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def evaluate(args: argparse.Namespace) -> dict:
    """Run the evaluation; returns the per-split metrics on the main process (an empty dict elsewhere)."""
    from accelerate import Accelerator

    # with no accelerator, cpu=True is what lets `accelerate launch --multi_gpu --num_processes N` join N CPU
    # processes (gloo); without it each process would run alone and evaluate everything
    has_accelerator = torch.accelerator.is_available() if hasattr(torch, "accelerator") else torch.cuda.is_available()
    accelerator = Accelerator(cpu=not has_accelerator)
    use_fast_cpu_allocator(accelerator.device)
    logging.basicConfig(level=logging.INFO if accelerator.is_main_process else logging.ERROR)
    model, processor = load_grounding_checkpoint(args.model, args.processor, args.revision, args.trust_remote_code)
    model = model.to(accelerator.device)
    if args.compile:
        model = compile_for_inference(model)
    with accelerator.main_process_first():
        splits = load_splits(args)
    metric = None
    if accelerator.is_main_process:
        from processing.data.metrics import load_grounding_accuracy

        metric = load_grounding_accuracy()
    results, predictions = {}, {}
    for name, dataset in splits.items():
        total = len(dataset) if args.max_examples is None else min(len(dataset), args.max_examples)
        if total == 0:
            logger.warning("Split %r has no examples: skipped.", name)
            continue
        dataset = dataset.select(range(total))
        boxes = predict(model, processor, dataset, args, accelerator, name)
        if accelerator.is_main_process:
            records = prediction_records(dataset, boxes)
            results[name], predictions[name] = score(records, args.iou_thresholds, metric)
    if accelerator.is_main_process:
        print(markdown_table(results, args.iou_thresholds))
        report = {
            "model": args.model,
            "dataset": args.dataset,
            "num_processes": accelerator.num_processes,
            "metrics": results,
            "predictions": predictions,
        }
        os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
        with open(args.output, "w", encoding="utf-8") as f:
            json.dump(report, f, indent=1)
        logger.info("Wrote %s", args.output)
    accelerator.wait_for_everyone()
    accelerator.end_training()
    return results


def run(argv: list[str]) -> int:
    evaluate(parse_args(argv))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Console entry point `epmvg-evaluate`. Returns the exit status."""
    return run_command("epmvg-evaluate", run, argv)


if __name__ == "__main__":
    sys.exit(main())
