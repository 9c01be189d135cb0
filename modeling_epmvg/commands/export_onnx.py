# Copyright 2026 The epmvg authors. Licensed under the Apache License, Version 2.0.
"""
Export EpmVG's inference graph to ONNX and check it against PyTorch with ONNX Runtime.

    python scripts/export_onnx.py path/to/checkpoint exported/ --opset 18

The graph maps `pixel_values (B, 3, S, S)`, `pixel_mask (B, S, S)`, `input_ids (B, L)` and `attention_mask (B, L)`
to `pred_boxes (B, 4)` (normalized canvas cx, cy, w, h); the batch size is dynamic, `S` is the model's image size and
`L` its `max_text_len` (EpmVGProcessor pads every expression to it). No teacher, no loss. The output folder gets
`model.onnx`, the model config and the processor (the checkpoint's, or `--processor`; without one the export fails),
so that a deployment needs only onnxruntime + the processor (tokenizer and image processor) for pre- and
post-processing.

Requires `onnx`, `onnxscript` (torch's default, dynamo-based exporter) and `onnxruntime` (the check).
"""

import json
import logging
import sys
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .checkpoints import load_grounding_checkpoint
from .cli import EpmVGArgumentParser, run_command


INPUT_NAMES = ("pixel_values", "pixel_mask", "input_ids", "attention_mask")
OUTPUT_NAMES = ("pred_boxes",)
EXPORTERS = ("auto", "dynamo", "legacy")


class EpmVGOnnxWrapper(nn.Module):
    """The inference graph of an [`EpmVGForVisualGrounding`]: four input tensors in, `pred_boxes` out."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, pixel_values, pixel_mask, input_ids, attention_mask) -> torch.Tensor:
        return self.model(
            pixel_values=pixel_values, pixel_mask=pixel_mask, input_ids=input_ids, attention_mask=attention_mask
        ).pred_boxes


def example_inputs(config, batch_size: int = 2, seed: int = 0) -> dict[str, torch.Tensor]:
    """
    Random inputs of the exported shapes with realistic masks: each image covers part of the canvas (the rest is
    padding) and each expression fills part of the text slots.
    """
    generator = torch.Generator().manual_seed(seed)
    size, length = config.image_size, config.max_text_len
    pixel_mask = torch.zeros(batch_size, size, size, dtype=torch.long)
    attention_mask = torch.zeros(batch_size, length, dtype=torch.long)
    for index in range(batch_size):
        rows = int(torch.randint(size // 2, size + 1, (1,), generator=generator))
        top = (size - rows) // 2
        pixel_mask[index, top : top + rows] = 1
        attention_mask[index, : int(torch.randint(2, length + 1, (1,), generator=generator))] = 1
    vocab_size = config.text_config.vocab_size
    input_ids = torch.randint(1, vocab_size, (batch_size, length), generator=generator) * attention_mask
    pixel_values = torch.randn(batch_size, 3, size, size, generator=generator) * pixel_mask[:, None]
    return {
        "pixel_values": pixel_values,
        "pixel_mask": pixel_mask,
        "input_ids": input_ids,
        "attention_mask": attention_mask,
    }


def _export_dynamo(wrapper: nn.Module, inputs: tuple, path: Path, opset: int) -> None:
    batch = torch.export.Dim("batch", min=1)
    # onnxscript's constant folding tries reshapes over the dynamic batch and logs each one it cannot fold as
    # "Evaluation failed: cannot reshape ...": those nodes just stay unfolded, the graph is right
    folding_logger = logging.getLogger("onnxscript.optimizer._constant_folding")
    level = folding_logger.level
    folding_logger.setLevel(logging.ERROR)
    try:
        program = torch.onnx.export(
            wrapper,
            inputs,
            dynamo=True,
            input_names=list(INPUT_NAMES),
            output_names=list(OUTPUT_NAMES),
            dynamic_shapes={name: {0: batch} for name in INPUT_NAMES},
            opset_version=opset,
            verbose=False,
        )
    finally:
        folding_logger.setLevel(level)
    program.save(str(path))


def _export_legacy(wrapper: nn.Module, inputs: tuple, path: Path, opset: int) -> None:
    with warnings.catch_warnings():
        # the TorchScript exporter is deprecated; it stays as the fallback for graphs the dynamo exporter rejects
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            wrapper,
            inputs,
            str(path),
            dynamo=False,
            input_names=list(INPUT_NAMES),
            output_names=list(OUTPUT_NAMES),
            dynamic_axes={name: {0: "batch"} for name in INPUT_NAMES + OUTPUT_NAMES},
            opset_version=opset,
        )


def export_onnx(model: nn.Module, path: str | Path, opset: int = 18, exporter: str = "auto") -> str:
    """
    Export `model`'s inference graph to an ONNX file.

    Args:
        model ([`EpmVGForVisualGrounding`]):
            The model (exported in eval mode, on the CPU).
        path (`str` or `Path`):
            The `.onnx` file to write.
        opset (`int`, *optional*, defaults to 18):
            ONNX opset version.
        exporter (`str`, *optional*, defaults to `"auto"`):
            `"dynamo"` (torch.export-based, needs onnxscript), `"legacy"` (TorchScript-based) or `"auto"` (dynamo,
            falling back to legacy if it fails).

    Returns:
        `str`: the exporter that produced the file.
    """
    if exporter not in EXPORTERS:
        raise ValueError(f"exporter must be one of {EXPORTERS}, got {exporter!r}.")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = model.eval().to("cpu")
    wrapper = EpmVGOnnxWrapper(model).eval()
    inputs = tuple(example_inputs(model.config, batch_size=2).values())
    with torch.no_grad():
        if exporter in ("auto", "dynamo"):
            try:
                _export_dynamo(wrapper, inputs, path, opset)
                return "dynamo"
            except Exception as error:  # any failure of torch.export / onnxscript: try the other exporter
                if exporter == "dynamo":
                    raise
                warnings.warn(
                    f"The dynamo ONNX exporter failed ({type(error).__name__}: {error}); using the legacy one.",
                    stacklevel=2,
                )
        _export_legacy(wrapper, inputs, path, opset)
    return "legacy"


def check_onnx(model: nn.Module, path: str | Path, batch_sizes: tuple[int, ...] = (1, 3), atol: float = 1e-4) -> float:
    """
    Run the ONNX file with ONNX Runtime (CPU) on random inputs of several batch sizes and compare with PyTorch.

    Returns:
        `float`: the largest absolute difference of `pred_boxes`.

    Raises:
        ValueError: if a difference exceeds `atol`.
    """
    try:
        import onnxruntime
    except ImportError as error:
        raise ImportError(
            "The check needs onnxruntime: pip install onnxruntime (or skip it with --no-check)."
        ) from error
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    wrapper = EpmVGOnnxWrapper(model.eval().to("cpu")).eval()
    largest = 0.0
    for batch_size in batch_sizes:
        inputs = example_inputs(model.config, batch_size=batch_size, seed=batch_size + 1)
        (onnx_boxes,) = session.run(list(OUTPUT_NAMES), {name: tensor.numpy() for name, tensor in inputs.items()})
        with torch.no_grad():
            torch_boxes = wrapper(*inputs.values()).numpy()
        if onnx_boxes.shape != torch_boxes.shape:
            raise ValueError(f"ONNX Runtime returned shape {onnx_boxes.shape}, PyTorch {torch_boxes.shape}.")
        difference = float(np.abs(onnx_boxes - torch_boxes).max())
        if difference > atol:
            raise ValueError(
                f"ONNX Runtime and PyTorch differ by {difference:.3g} (> atol {atol}) at batch size {batch_size}."
            )
        largest = max(largest, difference)
    return largest


def build_parser() -> EpmVGArgumentParser:
    parser = EpmVGArgumentParser(
        prog="epmvg-export-onnx", description="Export EpmVG's inference graph to ONNX and check it."
    )
    parser.add_argument("model", help="checkpoint folder or Hub id")
    parser.add_argument("output_dir", help="folder for model.onnx, the config and the processor")
    parser.add_argument("--opset", type=int, default=18, help="ONNX opset (default: %(default)s)")
    parser.add_argument("--exporter", choices=EXPORTERS, default="auto", help="(default: %(default)s)")
    parser.add_argument("--atol", type=float, default=1e-4, help="check tolerance on pred_boxes (default: 1e-4)")
    parser.add_argument("--no_check", action="store_true", help="skip the ONNX Runtime comparison")
    parser.add_argument("--processor", help="processor folder or Hub id, if not saved with the model")
    parser.add_argument("--trust_remote_code", action="store_true", help="load the model code from the checkpoint")
    return parser


def run(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    # the export needs the processor too: a deployment tokenizes and letterboxes with it
    model, processor = load_grounding_checkpoint(args.model, args.processor, trust_remote_code=args.trust_remote_code)
    output_dir = Path(args.output_dir)
    onnx_path = output_dir / "model.onnx"
    exporter = export_onnx(model, onnx_path, args.opset, args.exporter)
    model.config.save_pretrained(output_dir)
    processor.save_pretrained(output_dir)
    summary = {
        "onnx": str(onnx_path),
        "exporter": exporter,
        "opset": args.opset,
        "inputs": {
            "pixel_values": ["batch", 3, model.config.image_size, model.config.image_size],
            "pixel_mask": ["batch", model.config.image_size, model.config.image_size],
            "input_ids": ["batch", model.config.max_text_len],
            "attention_mask": ["batch", model.config.max_text_len],
        },
        "outputs": {"pred_boxes": ["batch", 4]},
    }
    if not args.no_check:
        summary["max_abs_diff"] = check_onnx(model, onnx_path, atol=args.atol)
        summary["checked_batch_sizes"] = [1, 3]
    print(json.dumps(summary, indent=2))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Console entry point `epmvg-export-onnx`. Returns the exit status."""
    return run_command("epmvg-export-onnx", run, argv, expected=(ImportError,))


if __name__ == "__main__":
    sys.exit(main())
