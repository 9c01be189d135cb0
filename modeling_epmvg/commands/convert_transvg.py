# Copyright 2026 The epmvg authors. Licensed under the Apache License, Version 2.0.
"""
Convert official TransVG checkpoints (and original DETR checkpoints) into EpmVG Hugging Face checkpoints.

    # a trained TransVG model (e.g. TransVG_R50_unc.pth) -> a ready-to-use EpmVG folder with its processor
    python scripts/convert_transvg.py TransVG_R50_unc.pth converted/transvg-r50-unc --tokenizer bert-base-uncased

    # an original DETR-R50 checkpoint -> EpmVG with DETR's visual branch (TransVG's initialization) and BERT
    python scripts/convert_transvg.py detr-r50-e632da11.pth converted/epmvg-detr-init --detr \
        --text-model bert-base-uncased --max-text-len 20

Every tensor of the checkpoint is either mapped into the model or dropped for a stated reason (BERT's unused
pooler, DETR's decoder and detection heads, BatchNorm counters); any other key stops the conversion with its name.
Checkpoints are read with `torch.load(weights_only=True)` (TransVG's `args` Namespace is allowed as plain data);
`--allow-pickle` lifts that restriction for checkpoints that hold other objects. Only use it for files you trust.
"""

import argparse
import json
import re
import sys
from pathlib import Path

import torch
from transformers import AutoModel, AutoTokenizer, BertConfig

from modeling_epmvg import EpmVGConfig, EpmVGForVisualGrounding
from modeling_epmvg.detr_weights_epmvg import (
    ORIGINAL_DETR,
    TRANSVG_VISUAL_BRANCH,
    ConversionResult,
    convert_visual_branch_key,
    detr_visual_branch,
    layer_indices,
    map_encoder_layer,
    resnet_config_from_state_dict,
    unmapped_key_error,
)
from processing import EpmVGProcessor

from .cli import EpmVGArgumentParser, run_command


TRANSVG_IMAGE_SIZE = 640
# TransVG reads the stride-32 output of ResNet's last stage (its dilated C5 variant is not supported)
BACKBONE_STRIDE = 32


# ------------------------------------------------------------------------------------------------------------ loading


def load_checkpoint(path: str | Path, allow_pickle: bool = False) -> tuple[dict[str, torch.Tensor], dict]:
    """
    Read a TransVG / DETR checkpoint file: `{'model': state_dict, 'args': Namespace, ...}` or a bare state dict.

    Args:
        path (`str` or `Path`):
            The `.pth` file.
        allow_pickle (`bool`, *optional*, defaults to `False`):
            Load with `weights_only=False` (arbitrary pickled objects: only for trusted files).

    Returns:
        `tuple[dict, dict]`: the state dict (a `module.` prefix from DistributedDataParallel removed) and the
        training arguments as a dict (empty if the file has none).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Checkpoint not found: {str(path)!r}.")
    try:
        # TransVG stores its argparse.Namespace next to the weights: plain data, safe to allow
        with torch.serialization.safe_globals([argparse.Namespace]):
            checkpoint = torch.load(path, map_location="cpu", weights_only=not allow_pickle)
    except Exception as error:  # torch raises UnpicklingError or RuntimeError depending on the object
        if allow_pickle:
            raise ValueError(f"Could not read {str(path)!r} as a torch checkpoint: {error}") from error
        raise ValueError(
            f"{str(path)!r} holds Python objects that torch.load(weights_only=True) refuses ({error}). If you trust "
            "the file, rerun with --allow-pickle (allow_pickle=True) to load it with weights_only=False."
        ) from error
    state_dict = checkpoint.get("model", checkpoint) if isinstance(checkpoint, dict) else None
    if not isinstance(state_dict, dict) or not all(isinstance(value, torch.Tensor) for value in state_dict.values()):
        raise ValueError(
            f"{str(path)!r} is not a TransVG/DETR checkpoint: expected {{'model': state_dict, ...}} or a state dict "
            "of tensors."
        )
    if state_dict and all(key.startswith("module.") for key in state_dict):
        state_dict = {key[len("module.") :]: value for key, value in state_dict.items()}
    args = checkpoint.get("args") if "model" in checkpoint else None
    args = vars(args) if isinstance(args, argparse.Namespace) else dict(args) if isinstance(args, dict) else {}
    return state_dict, args


# -------------------------------------------------------------------------------------------------------- key mapping

def _map_bert_key(key: str, num_text_layers: int | None) -> tuple[str | None, str | None]:
    """(new key, None) for a BERT key to keep, (None, reason) for one to drop, (None, None) if unknown."""
    if key.startswith("pooler."):
        return None, "BERT pooler (unused: TransVG reads every token of the last layer)"
    if key == "embeddings.position_ids":
        return None, "BERT position_ids buffer (rebuilt by the model)"
    layer = re.match(r"encoder\.layer\.(\d+)\.", key)
    if layer and num_text_layers is not None and int(layer.group(1)) >= num_text_layers:
        return None, f"BERT layer after bert_enc_num={num_text_layers} (unused by TransVG)"
    if not key.startswith(("embeddings.", "encoder.layer.")):
        return None, None
    # pytorch-pretrained-bert < 0.6 named the LayerNorm parameters gamma / beta
    return re.sub(r"LayerNorm\.gamma$", "LayerNorm.weight", re.sub(r"LayerNorm\.beta$", "LayerNorm.bias", key)), None


_TRANSVG_DIRECT = {
    "vl_pos_embed.weight": "model.fusion_position_embeddings.weight",
    "reg_token.weight": "model.reg_token",
    "visu_proj.weight": "model.vision_projection.weight",
    "visu_proj.bias": "model.vision_projection.bias",
    "text_proj.weight": "model.text_projection.weight",
    "text_proj.bias": "model.text_projection.bias",
}


def convert_transvg_state_dict(
    state_dict: dict[str, torch.Tensor], num_text_layers: int | None = None
) -> ConversionResult:
    """
    Map every tensor of a TransVG state dict to [`EpmVGForVisualGrounding`] names.

    TransVG's fusion sequence is `[REG, text, visual]`, which is also EpmVG's, so the rows of `vl_pos_embed` map 1:1
    onto `fusion_position_embeddings`.

    Args:
        state_dict (`dict[str, torch.Tensor]`):
            The `'model'` entry of a TransVG checkpoint.
        num_text_layers (`int`, *optional*):
            TransVG's `bert_enc_num`: BERT layers after it are unused by TransVG and dropped.

    Returns:
        [`ConversionResult`]

    Raises:
        ValueError: naming the first tensor that has no place in EpmVG.
    """
    result = ConversionResult()
    for key, tensor in state_dict.items():
        if convert_visual_branch_key(key, tensor, TRANSVG_VISUAL_BRANCH, result):
            continue
        if key in _TRANSVG_DIRECT:
            result.state_dict[_TRANSVG_DIRECT[key]] = tensor
        elif match := re.fullmatch(r"bbox_embed\.layers\.(\d+)\.(weight|bias)", key):
            result.state_dict[f"bbox_predictor.layers.{match.group(1)}.{match.group(2)}"] = tensor
        elif match := re.fullmatch(r"vl_transformer\.encoder\.layers\.(\d+)\.(.+)", key):
            mapped = map_encoder_layer(match.group(2), tensor)
            if mapped is None:
                raise unmapped_key_error(key, "TransVG")
            for name, value in mapped.items():
                result.state_dict[f"model.fusion_encoder.layers.{match.group(1)}.{name}"] = value
        elif key.startswith("textmodel.bert."):
            new_key, reason = _map_bert_key(key[len("textmodel.bert.") :], num_text_layers)
            if new_key is None and reason is None:
                raise unmapped_key_error(key, "TransVG")
            if new_key is None:
                result.skipped[key] = reason
            else:
                result.state_dict[f"model.text_backbone.{new_key}"] = tensor
        else:
            raise unmapped_key_error(key, "TransVG")
    return result


# ------------------------------------------------------------------------------------------------------------ configs


def _encoder_dims(state_dict: dict, prefix: str) -> tuple[int, int]:
    """(number of layers, feed-forward width) of a DETR-style encoder under `prefix`."""
    layers = layer_indices(state_dict, re.escape(prefix) + r"(\d+)\.")
    if not layers:
        raise ValueError(f"No encoder layers found under {prefix!r}.")
    if layers != list(range(len(layers))):
        raise ValueError(f"The encoder layers under {prefix!r} are not numbered 0..N-1: {layers}.")
    return len(layers), state_dict[f"{prefix}0.linear1.weight"].shape[0]


def bert_config_from_state_dict(
    state_dict: dict[str, torch.Tensor],
    prefix: str,
    num_layers: int | None = None,
    num_attention_heads: int | None = None,
) -> BertConfig:
    """
    A [`BertConfig`] matching the BERT tensors under `prefix`. The number of attention heads is not stored in the
    weights: it defaults to BERT's `hidden_size / 64` (12 for BERT-base, 16 for BERT-large).
    """
    embeddings = state_dict[prefix + "embeddings.word_embeddings.weight"]
    hidden_size = embeddings.shape[1]
    layers = layer_indices(state_dict, re.escape(prefix) + r"encoder\.layer\.(\d+)\.")
    return BertConfig(
        vocab_size=embeddings.shape[0],
        hidden_size=hidden_size,
        num_hidden_layers=num_layers if num_layers is not None else len(layers),
        num_attention_heads=num_attention_heads or max(1, hidden_size // 64),
        intermediate_size=state_dict[prefix + "encoder.layer.0.intermediate.dense.weight"].shape[0],
        max_position_embeddings=state_dict[prefix + "embeddings.position_embeddings.weight"].shape[0],
        type_vocab_size=state_dict[prefix + "embeddings.token_type_embeddings.weight"].shape[0],
    )


def infer_canvas(num_fusion_tokens: int, image_size: int | None, max_text_len: int | None) -> tuple[int, int]:
    """
    `(image_size, max_text_len)` consistent with a fusion position table of `1 + max_text_len + (image_size / 32)^2`
    rows. Given one of the two, the other follows; given neither, TransVG's 640x640 canvas is assumed.
    """
    if image_size is None and max_text_len is None:
        image_size = TRANSVG_IMAGE_SIZE
    if image_size is not None:
        if image_size % BACKBONE_STRIDE:
            raise ValueError(f"image_size {image_size} is not a multiple of {BACKBONE_STRIDE}.")
        inferred = num_fusion_tokens - 1 - (image_size // BACKBONE_STRIDE) ** 2
        if (max_text_len is not None and max_text_len != inferred) or inferred < 2:
            raise ValueError(
                f"The fusion position table has {num_fusion_tokens} rows, which does not fit image_size={image_size}"
                + (f" and max_text_len={max_text_len}" if max_text_len is not None else "")
                + f" (1 + max_text_len + ({image_size}/{BACKBONE_STRIDE})^2 rows): pass the --image-size and "
                "--max-text-len the model was trained with."
            )
        return image_size, inferred
    side = round((num_fusion_tokens - 1 - max_text_len) ** 0.5) if num_fusion_tokens - 1 - max_text_len > 0 else 0
    if side < 1 or 1 + max_text_len + side**2 != num_fusion_tokens:
        raise ValueError(
            f"The fusion position table has {num_fusion_tokens} rows, which does not fit max_text_len={max_text_len} "
            "with a square canvas: pass the --image-size and --max-text-len the model was trained with."
        )
    return side * BACKBONE_STRIDE, max_text_len


def transvg_config_from_state_dict(
    state_dict: dict[str, torch.Tensor],
    args: dict | None = None,
    image_size: int | None = None,
    max_text_len: int | None = None,
    vision_attention_heads: int | None = None,
    fusion_attention_heads: int | None = None,
    text_config: BertConfig | None = None,
    **config_kwargs,
) -> EpmVGConfig:
    """
    The [`EpmVGConfig`] of a TransVG state dict: widths, depths and the ResNet layout from the tensor shapes; image
    size and query length from the fusion position table (and the checkpoint's `args` when present); the numbers of
    attention heads from `args` or the arguments (TransVG: 8 and 8). Explicit arguments win over `args`.
    """
    args = args or {}
    if args.get("dilation"):
        raise ValueError("This TransVG model uses a dilated C5 (--dilation, stride 16), which EpmVG does not support.")
    if args.get("bert_enc_num", 1) == 0:
        raise ValueError("This TransVG model uses BERT's word embeddings only (bert_enc_num=0), unsupported by EpmVG.")
    if "vl_pos_embed.weight" not in state_dict:
        raise ValueError("Not a TransVG checkpoint: 'vl_pos_embed.weight' is missing.")
    image_size, max_text_len = infer_canvas(
        state_dict["vl_pos_embed.weight"].shape[0],
        image_size if image_size is not None else args.get("imsize"),
        max_text_len if max_text_len is not None else args.get("max_query_len"),
    )
    vision_layers, vision_ffn = _encoder_dims(state_dict, "visumodel.transformer.encoder.layers.")
    fusion_layers, fusion_ffn = _encoder_dims(state_dict, "vl_transformer.encoder.layers.")
    if text_config is None:
        text_config = bert_config_from_state_dict(state_dict, "textmodel.bert.", args.get("bert_enc_num"))
    return EpmVGConfig(
        backbone_config=resnet_config_from_state_dict(state_dict, TRANSVG_VISUAL_BRANCH.backbone),
        text_config=text_config,
        d_model=state_dict["vl_pos_embed.weight"].shape[1],
        vision_encoder_layers=vision_layers,
        vision_encoder_attention_heads=vision_attention_heads or args.get("nheads", 8),
        vision_encoder_ffn_dim=vision_ffn,
        fusion_layers=fusion_layers,
        fusion_attention_heads=fusion_attention_heads or args.get("vl_nheads", 8),
        fusion_ffn_dim=fusion_ffn,
        dropout=args.get("vl_dropout", 0.1),
        image_size=image_size,
        max_text_len=max_text_len,
        **config_kwargs,
    )


# ----------------------------------------------------------------------------------------------- loading into a model


def load_converted(model: EpmVGForVisualGrounding, result: ConversionResult, strict: bool) -> ConversionResult:
    """
    Load converted tensors into `model` after checking every name and shape. With `strict`, any model key the
    checkpoint leaves out is an error; otherwise those keys are listed in `result.missing` (newly initialized).
    """
    expected = model.state_dict()
    unexpected = sorted(set(result.state_dict) - set(expected))
    if unexpected:
        raise ValueError(f"Converted tensors that EpmVG does not have (config mismatch?): {unexpected[:20]}")
    for key, tensor in result.state_dict.items():
        if tuple(tensor.shape) != tuple(expected[key].shape):
            raise ValueError(
                f"{key}: the checkpoint has shape {tuple(tensor.shape)} but the inferred config gives "
                f"{tuple(expected[key].shape)}; pass the config values the model was trained with."
            )
    result.missing = sorted(set(expected) - set(result.state_dict))
    if strict and result.missing:
        raise ValueError(f"The checkpoint lacks {len(result.missing)} EpmVG tensors, e.g. {result.missing[:20]}.")
    model.load_state_dict(result.state_dict, strict=strict)
    return result


def convert_transvg_checkpoint(
    state_dict: dict[str, torch.Tensor], args: dict | None = None, config: EpmVGConfig | None = None, **config_kwargs
) -> tuple[EpmVGForVisualGrounding, ConversionResult]:
    """
    Build an [`EpmVGForVisualGrounding`] holding exactly the weights of a TransVG state dict.

    Args:
        state_dict (`dict[str, torch.Tensor]`):
            The `'model'` entry of a TransVG checkpoint.
        args (`dict`, *optional*):
            The checkpoint's training arguments (`vars(checkpoint['args'])`), used for the config.
        config ([`EpmVGConfig`], *optional*):
            The config to use instead of inferring one.
        config_kwargs:
            Passed to [`transvg_config_from_state_dict`] (`image_size`, `max_text_len`, heads, ...).

    Returns:
        `tuple`: the model (in eval mode) and the [`ConversionResult`].
    """
    config = config or transvg_config_from_state_dict(state_dict, args, **config_kwargs)
    result = convert_transvg_state_dict(state_dict, num_text_layers=config.text_config.num_hidden_layers)
    model = EpmVGForVisualGrounding(config)
    load_converted(model, result, strict=True)
    return model.eval(), result


def convert_detr_checkpoint(
    state_dict: dict[str, torch.Tensor],
    text_model: str | None = None,
    vision_attention_heads: int = 8,
    **config_kwargs,
) -> tuple[EpmVGForVisualGrounding, ConversionResult]:
    """
    Build an [`EpmVGForVisualGrounding`] whose visual branch (ResNet, encoder, input projection) comes from an
    DETR state dict (original or transformers' layout, see [`~detr_weights_epmvg.DetrLayout`]) and whose text encoder
    comes from `text_model` (a BERT-family folder or Hub id; random BERT-base if `None`). The rest starts from
    TransVG's random init: this is TransVG's starting point for training.
    """
    result, visual_config = detr_visual_branch(state_dict, vision_attention_heads=vision_attention_heads)
    text_weights = {}
    if text_model is not None:
        bert = AutoModel.from_pretrained(text_model, add_pooling_layer=False)
        config_kwargs.setdefault("text_config", bert.config)
        text_weights = {f"model.text_backbone.{key}": value for key, value in bert.state_dict().items()}
    config = EpmVGConfig(**(visual_config | config_kwargs))
    model = EpmVGForVisualGrounding(config)
    result.state_dict |= text_weights
    load_converted(model, result, strict=False)
    return model.eval(), result


# ---------------------------------------------------------------------------------------------------------------- CLI


def build_parser() -> EpmVGArgumentParser:
    parser = EpmVGArgumentParser(
        prog="epmvg-convert-transvg",
        description="Convert a TransVG (or, with --detr, an original DETR) checkpoint into an EpmVG HF checkpoint."
    )
    parser.add_argument("checkpoint", help="the .pth file ({'model': state_dict, ...})")
    parser.add_argument("output_dir", help="folder to save the converted model (and processor) in")
    parser.add_argument("--detr", action="store_true", help="the checkpoint is DETR: convert its visual branch")
    parser.add_argument("--text_model", help="(--detr) BERT-family folder or Hub id for the text encoder")
    parser.add_argument("--tokenizer", help="tokenizer folder or Hub id; saves an EpmVGProcessor with the model")
    parser.add_argument("--text_config", help="BERT config folder or Hub id (else inferred, heads = hidden / 64)")
    parser.add_argument("--image_size", type=int, help="canvas side (default: from the checkpoint, else 640)")
    parser.add_argument("--max_text_len", type=int, help="text slots (default: from the position table)")
    parser.add_argument("--vision_attention_heads", type=int, help="visual encoder heads (default: args or 8)")
    parser.add_argument("--fusion_attention_heads", type=int, help="fusion encoder heads (default: args or 8)")
    parser.add_argument(
        "--allow_pickle", action="store_true", help="torch.load(weights_only=False): trusted files only"
    )
    parser.add_argument("--push_to_hub", metavar="REPO_ID", help="also upload the result to this Hub repository")
    parser.add_argument("--private", action="store_true", help="with --push-to-hub: create a private repository")
    return parser


def _convert(args: argparse.Namespace) -> tuple[EpmVGForVisualGrounding, ConversionResult]:
    state_dict, train_args = load_checkpoint(args.checkpoint, args.allow_pickle)
    text_config = BertConfig.from_pretrained(args.text_config) if args.text_config else None
    if args.detr:
        if "vl_pos_embed.weight" in state_dict:
            raise ValueError("This is a TransVG checkpoint, not a DETR one: drop --detr.")
        config_kwargs = {"image_size": args.image_size, "max_text_len": args.max_text_len, "text_config": text_config}
        config_kwargs = {key: value for key, value in config_kwargs.items() if value is not None}
        return convert_detr_checkpoint(
            state_dict, args.text_model, args.vision_attention_heads or train_args.get("nheads", 8), **config_kwargs
        )
    if "vl_pos_embed.weight" not in state_dict and ORIGINAL_DETR.backbone + "conv1.weight" in state_dict:
        raise ValueError("This looks like a DETR checkpoint (backbone.0.body.*): add --detr to convert it.")
    return convert_transvg_checkpoint(
        state_dict,
        train_args,
        image_size=args.image_size,
        max_text_len=args.max_text_len,
        vision_attention_heads=args.vision_attention_heads,
        fusion_attention_heads=args.fusion_attention_heads,
        text_config=text_config,
    )


def run(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    try:
        model, result = _convert(args)
        processor = None
        tokenizer_source = args.tokenizer or (args.text_model if args.detr else None)
        if tokenizer_source:
            processor = EpmVGProcessor.from_model_config(model.config, AutoTokenizer.from_pretrained(tokenizer_source))
    except OSError as error:  # a text model or tokenizer that is not there
        raise ValueError(str(error)) from error
    model.save_pretrained(args.output_dir)
    if processor is not None:
        processor.save_pretrained(args.output_dir)
    summary = result.summary()
    if args.detr:
        summary["newly_initialized"] = sorted({".".join(key.split(".")[:2]) for key in summary.pop("missing_keys")})
    print(json.dumps(summary, indent=2))
    if processor is None:
        print("No --tokenizer given: the folder has no processor; add one before using the pipeline.", file=sys.stderr)
    if args.push_to_hub:
        model.push_to_hub(args.push_to_hub, private=args.private)
        if processor is not None:
            processor.push_to_hub(args.push_to_hub, private=args.private)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Console entry point `epmvg-convert-transvg`. Returns the exit status."""
    return run_command("epmvg-convert-transvg", run, argv)


if __name__ == "__main__":
    sys.exit(main())
