# Copyright 2026 The epmvg authors. Licensed under the Apache License, Version 2.0.
"""
Ground referring expressions in your own images with an EpmVG checkpoint: JSON boxes and PNGs with the box drawn.

    epmvg-predict path/to/checkpoint --image street.jpg --expression "the man on the left" "the red car"
    epmvg-predict user/epmvg-refcoco --image a.jpg b.jpg --expression "the dog" --output-json boxes.json

Pairing: one image with several expressions grounds each of them in that image; several images with one expression
grounds it in each image; N images with N expressions pairs them in order.
"""

import json
import os
import sys
from pathlib import Path

from processing.data.visualization import draw_grounding
from processing.pipeline_epmvg import load_grounding_image

from ..efficiency_epmvg import use_fast_cpu_allocator
from .checkpoints import load_grounding_pipeline
from .cli import EpmVGArgumentParser, EpmVGUsageError, run_command


def pair_inputs(images: list[str], expressions: list[str]) -> list[tuple[str, str]]:
    """
    (image, expression) pairs: one image x N expressions, N images x one expression, or N x N in order.

    Raises:
        ValueError: for any other combination of counts.
    """
    if not images or not expressions:
        raise ValueError("Give at least one --image and one --expression.")
    if len(images) == 1:
        return [(images[0], expression) for expression in expressions]
    if len(expressions) == 1:
        return [(image, expressions[0]) for image in images]
    if len(images) == len(expressions):
        return list(zip(images, expressions))
    raise ValueError(
        f"Got {len(images)} images and {len(expressions)} expressions: give one image with any number of expressions, "
        "any number of images with one expression, or as many images as expressions (paired in order)."
    )


def predict(
    grounder, pairs: list[tuple[str, str]], output_dir: str | Path | None = None, batch_size: int = 8
) -> list[dict]:
    """
    Run the pipeline on (image path, expression) pairs; with `output_dir`, also write one PNG per pair (the image
    with the predicted box in yellow and the expression as caption below it).

    Returns:
        `list[dict]`: per pair `image`, `expression`, `box` (`xmin`, `ymin`, `xmax`, `ymax` in original pixels),
        `score`, `image_size` (`[height, width]`) and, with `output_dir`, `visualization` (the PNG path).
    """
    images = {path: load_grounding_image(path) for path in dict.fromkeys(path for path, _ in pairs)}
    grouped: dict[str, list[str]] = {}
    for path, expression in pairs:
        grouped.setdefault(path, []).append(expression)
    inputs = [{"image": images[path], "expressions": texts} for path, texts in grouped.items()]
    outputs = grounder(inputs, batch_size=batch_size)
    per_image = {path: iter(results) for path, results in zip(grouped, outputs)}

    if output_dir is not None:
        Path(output_dir).mkdir(parents=True, exist_ok=True)
    records = []
    for index, (path, expression) in enumerate(pairs):
        result = next(per_image[path])
        image = images[path]
        record = {
            "image": str(path),
            "expression": expression,
            "box": result["box"],
            "score": result["score"],
            "image_size": [image.height, image.width],
        }
        if output_dir is not None:
            png = Path(output_dir) / f"{index:04d}_{Path(path).stem}.png"
            draw_grounding(image, prediction=result["box"], caption=expression).save(png)
            record["visualization"] = str(png)
        records.append(record)
    return records


def build_parser() -> EpmVGArgumentParser:
    parser = EpmVGArgumentParser(
        prog="epmvg-predict", description="Ground referring expressions in images with an EpmVG checkpoint."
    )
    parser.add_argument("model", help="checkpoint folder or Hub id (with its processor)")
    parser.add_argument("--image", nargs="+", action="extend", required=True, help="image file(s)")
    parser.add_argument("--expression", nargs="+", action="extend", required=True, help="referring expression(s)")
    parser.add_argument("--output_json", help="also write the results to this JSON file")
    parser.add_argument("--output_dir", default="predictions", help="folder for the PNGs (default: %(default)s)")
    parser.add_argument("--no_draw", action="store_true", help="do not write PNGs")
    parser.add_argument("--batch_size", type=int, default=8, help="pairs per forward pass (default: %(default)s)")
    parser.add_argument("--device", help="cpu, cuda, cuda:1, ... (default: the first GPU if any, else the CPU)")
    parser.add_argument("--processor", help="processor folder or Hub id, if not saved with the model")
    parser.add_argument("--revision", help="Hub revision of the model")
    parser.add_argument("--trust_remote_code", action="store_true", help="load the model code from the checkpoint")
    parser.epilog = f"Pairing: 1 image x N expressions, N images x 1 expression, or N x N in order. {parser.epilog}"
    return parser


def run(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    if args.batch_size < 1:
        raise EpmVGUsageError(f"--batch_size must be at least 1, got {args.batch_size}.")
    use_fast_cpu_allocator(args.device)  # args.device None: the device the pipeline picks
    pairs = pair_inputs(args.image, args.expression)
    for path in dict.fromkeys(path for path, _ in pairs):
        if not os.path.isfile(path):
            raise FileNotFoundError(f"Image file not found: {path!r}.")
    grounder = load_grounding_pipeline(args.model, args.processor, args.device, args.trust_remote_code, args.revision)
    records = predict(grounder, pairs, None if args.no_draw else args.output_dir, args.batch_size)
    text = json.dumps(records, indent=2)
    if args.output_json:
        Path(args.output_json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output_json).write_text(text + "\n")
    print(text)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Console entry point `epmvg-predict`. Returns the exit status."""
    return run_command("epmvg-predict", run, argv)


if __name__ == "__main__":
    sys.exit(main())
