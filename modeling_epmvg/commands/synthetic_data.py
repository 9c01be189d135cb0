# Copyright 2026 The epmvg authors. Licensed under the Apache License, Version 2.0.
"""Generate the synthetic benchmark (and the teacher's captions) and save them with save_to_disk
(`epmvg-synthetic-data`).

    epmvg-synthetic-data --output data/synthetic --num_train 4000 --captions_output data/captions
"""

import argparse
import json
import os
import sys
import time

from processing.data.synthetic import (
    SyntheticGroundingConfig,
    baseline_accuracies,
    generate_caption_dataset,
    generate_synthetic_dataset,
    save_synthetic_dataset,
)

from .cli import EpmVGArgumentParser, run_command


BASELINES_NAME = "baselines.json"


def parse_args(argv=None) -> argparse.Namespace:
    parser = EpmVGArgumentParser(prog="epmvg-synthetic-data", description=__doc__.splitlines()[0])
    parser.add_argument("--output", required=True, help="folder for the grounding DatasetDict (train/val/test)")
    parser.add_argument("--num_train", type=int, default=4000, help="training expressions")
    parser.add_argument("--num_val", type=int, default=500, help="validation expressions")
    parser.add_argument("--num_test", type=int, default=500, help="test expressions (held-out colour-shape pairs)")
    parser.add_argument("--seed", type=int, default=0)
    defaults = SyntheticGroundingConfig()
    parser.add_argument("--image_size", type=int, default=defaults.image_size, help="image side in pixels")
    parser.add_argument("--min_objects", type=int, default=defaults.min_objects)
    parser.add_argument("--max_objects", type=int, default=defaults.max_objects)
    parser.add_argument("--expressions_per_image", type=int, default=defaults.expressions_per_image)
    parser.add_argument("--captions_output", help="also save the teacher's image-caption pairs here")
    parser.add_argument("--num_caption_train", type=int, default=60000)
    parser.add_argument("--num_caption_val", type=int, default=512)
    return parser.parse_args(argv)


def generate(args: argparse.Namespace) -> dict:
    """Generates and saves the datasets; prints, saves (`baselines.json`) and returns the text-free baselines."""
    config = SyntheticGroundingConfig(
        image_size=args.image_size,
        min_objects=args.min_objects,
        max_objects=args.max_objects,
        expressions_per_image=args.expressions_per_image,
    )
    start = time.perf_counter()
    dataset = generate_synthetic_dataset(args.num_train, args.num_val, args.num_test, config=config, seed=args.seed)
    save_synthetic_dataset(dataset, args.output, config)
    print(f"Saved {dataset} to {args.output} in {time.perf_counter() - start:.1f}s")
    baselines = {split: baseline_accuracies(dataset[split]) for split in dataset}
    with open(os.path.join(args.output, BASELINES_NAME), "w") as f:
        json.dump(baselines, f, indent=2)
    for split, values in baselines.items():
        print(
            f"{split}: Acc@0.5 random object {values['random_object']:.3f}, "
            f"text-blind (largest object) {values['text_blind_largest']:.3f} ({values['num_examples']} expressions)"
        )
    if args.captions_output:
        captions = generate_caption_dataset(args.num_caption_train, args.num_caption_val, config, seed=args.seed)
        save_synthetic_dataset(captions, args.captions_output, config)
        print(f"Saved {captions} to {args.captions_output}")
    return baselines


def run(argv: list[str]) -> int:
    generate(parse_args(argv))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Console entry point `epmvg-synthetic-data`. Returns the exit status."""
    return run_command("epmvg-synthetic-data", run, argv)


__all__ = ["generate", "main", "parse_args"]


if __name__ == "__main__":
    sys.exit(main())
