# Copyright 2026 The epmvg authors. Licensed under the Apache License, Version 2.0.
"""
The one key mapping from DETR checkpoints onto EpmVG's visual branch (ResNet backbone, transformer encoder, input
projection), used by [`EpmVGForVisualGrounding.from_backbone_text_pretrained`] and by the TransVG / DETR converter.

DETR weights come in three layouts, each told apart by its keys:

- the original DETR `.pth` (and TransVG's visual branch, under `visumodel.`): a torchvision ResNet under
  `backbone.0.body.`, `transformer.encoder.layers.N.*` with nn.MultiheadAttention's fused `in_proj`, `input_proj.*`;
- transformers' DETR with a timm backbone (the Hub's `facebook/detr-resnet-50` main revision): the same torchvision
  ResNet names under `model.backbone.conv_encoder.model.`, `model.encoder.layers.N.*`, `model.input_projection.*`;
- transformers' DETR with a transformers backbone (the `no_timm` revision, and what transformers 5 still writes:
  its conversion mapping renames `backbone.conv_encoder`, `out_proj` and `fc1`/`fc2` on load and back on save):
  [`ResNetBackbone`] names under `model.backbone.conv_encoder.model.`.

Checkpoint files are read as they are (config.json, then model.safetensors or pytorch_model.bin with
`torch.load(weights_only=True)`): no DETR model is built, so the timm layout needs no timm.
"""

import json
import re
from dataclasses import dataclass, field

import torch
from safetensors.torch import load_file
from transformers import AutoConfig, PreTrainedConfig, ResNetConfig
from transformers.utils import CONFIG_NAME, SAFE_WEIGHTS_NAME, WEIGHTS_NAME, cached_file


# where EpmVGForVisualGrounding (and EpmVGForVisualPretraining) keep the visual branch
EPMVG_BACKBONE = "model.backbone.model."
EPMVG_VISION_ENCODER = "model.vision_encoder.layers."
EPMVG_INPUT_PROJECTION = "model.input_projection."
NUM_BATCHES_TRACKED = "BatchNorm num_batches_tracked counter (frozen BatchNorm has none)"


@dataclass
class ConversionResult:
    """
    Outcome of a state-dict conversion.

    Args:
        state_dict (`dict[str, torch.Tensor]`):
            The converted tensors under EpmVGForVisualGrounding's names.
        skipped (`dict[str, str]`):
            Source keys intentionally left out, with the reason.
        missing (`list[str]`):
            Model keys the checkpoint did not provide (filled after loading into a model).
    """

    state_dict: dict[str, torch.Tensor] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)

    def skipped_by_reason(self) -> dict[str, int]:
        """How many source tensors were left out for each reason."""
        reasons = {}
        for reason in self.skipped.values():
            reasons[reason] = reasons.get(reason, 0) + 1
        return reasons

    def summary(self) -> dict:
        return {
            "converted_tensors": len(self.state_dict),
            "skipped_tensors": self.skipped_by_reason(),
            "missing_keys": self.missing,
            "unexpected_keys": [],
        }


@dataclass(frozen=True)
class DetrLayout:
    """
    Where a DETR-style checkpoint keeps the parts of EpmVG's visual branch, and what else it holds.

    Args:
        backbone (`str`): prefix of the ResNet.
        encoder (`str`): prefix of the encoder layers (followed by the layer index).
        input_projection (`str`): prefix of the 1x1 convolution from the ResNet's channels to `d_model`.
        unused (`tuple`): `(prefix, reason)` of the parts EpmVG leaves out (decoder, queries, detection heads).
    """

    backbone: str
    encoder: str
    input_projection: str
    unused: tuple[tuple[str, str], ...] = ()

    def unused_reason(self, key: str) -> str | None:
        return next((reason for prefix, reason in self.unused if key.startswith(prefix)), None)


_DECODER = "DETR decoder (TransVG keeps the encoder only)"
_QUERIES = "DETR object queries (unused)"
_CLASS_HEAD = "DETR class head (unused)"
_BOX_HEAD = "DETR box head (unused; EpmVG's box head starts from scratch, as in TransVG)"
ORIGINAL_DETR = DetrLayout(
    "backbone.0.body.",
    "transformer.encoder.layers.",
    "input_proj.",
    (("transformer.decoder.", _DECODER), ("query_embed.", _QUERIES), ("class_embed.", _CLASS_HEAD),
     ("bbox_embed.", _BOX_HEAD)),
)  # fmt: skip
TRANSVG_VISUAL_BRANCH = DetrLayout(
    "visumodel.backbone.0.body.", "visumodel.transformer.encoder.layers.", "visumodel.input_proj."
)


def transformers_detr_layout(prefix: str) -> DetrLayout:
    """The layout of a saved transformers `DetrForObjectDetection` (`prefix="model."`) or `DetrModel` (`""`)."""
    return DetrLayout(
        f"{prefix}backbone.conv_encoder.model.",
        f"{prefix}encoder.layers.",
        f"{prefix}input_projection.",
        (
            (f"{prefix}decoder.", _DECODER),
            (f"{prefix}query_position_embeddings.", _QUERIES),
            ("class_labels_classifier.", _CLASS_HEAD),
            ("bbox_predictor.", _BOX_HEAD),
        ),
    )


def detect_detr_layout(state_dict: dict[str, torch.Tensor]) -> DetrLayout:
    """The [`DetrLayout`] of a DETR state dict, told apart by where its backbone is."""
    for layout in (ORIGINAL_DETR, transformers_detr_layout("model."), transformers_detr_layout("")):
        if any(key.startswith(layout.backbone) for key in state_dict):
            return layout
    raise ValueError(
        "Not a DETR checkpoint: it has neither original DETR tensors (backbone.0.body.*) nor transformers DETR "
        "tensors (model.backbone.conv_encoder.model.*). Pass a DETR checkpoint, or an AutoBackbone one (ResNet, "
        "Swin, ConvNeXt) for the backbone alone."
    )


def unmapped_key_error(key: str, source: str) -> ValueError:
    return ValueError(
        f"Unmapped tensor {key!r} in the {source} checkpoint: EpmVG has no place for it. The converter handles the "
        "official TransVG (R-50/101, BERT) and DETR-R50/101 layouts (original and transformers'); a checkpoint of "
        "another variant needs its own mapping."
    )


_RESNET_CONV = re.compile(r"layer(\d)\.(\d+)\.(conv|bn)(\d)\.(.+)")
_RESNET_DOWNSAMPLE = re.compile(r"layer(\d)\.(\d+)\.downsample\.([01])\.(.+)")
# DETR encoder-layer names -> EpmVGEncoderLayer names: the original DETR's nn.TransformerEncoderLayer, then
# transformers' DetrEncoderLayer as saved (q/k/v and the two layer norms keep their names)
_ENCODER_LAYER_RENAMES = {
    "self_attn.out_proj.": "self_attn.o_proj.",
    "linear1.": "mlp.fc1.",
    "linear2.": "mlp.fc2.",
    "norm1.": "self_attn_layer_norm.",
    "norm2.": "final_layer_norm.",
    "fc1.": "mlp.fc1.",
    "fc2.": "mlp.fc2.",
    "self_attn.q_proj.": "self_attn.q_proj.",
    "self_attn.k_proj.": "self_attn.k_proj.",
    "self_attn.v_proj.": "self_attn.v_proj.",
    "self_attn_layer_norm.": "self_attn_layer_norm.",
    "final_layer_norm.": "final_layer_norm.",
}


def map_resnet_key(key: str) -> str | None:
    """
    A torchvision (or timm) ResNet key (`conv1.weight`, `layer2.0.bn3.running_var`, `layer3.0.downsample.0.weight`,
    ...) under transformers' `ResNetBackbone` names, or `None` if it is not a ResNet key.
    """
    if key.startswith(("conv1.", "bn1.")):
        kind = "convolution" if key.startswith("conv1.") else "normalization"
        return f"embedder.embedder.{kind}.{key.split('.', 1)[1]}"
    if match := _RESNET_CONV.fullmatch(key):
        stage, block, kind, index, name = match.groups()
        kind = "convolution" if kind == "conv" else "normalization"
        return f"encoder.stages.{int(stage) - 1}.layers.{block}.layer.{int(index) - 1}.{kind}.{name}"
    if match := _RESNET_DOWNSAMPLE.fullmatch(key):
        stage, block, index, name = match.groups()
        kind = "convolution" if index == "0" else "normalization"
        return f"encoder.stages.{int(stage) - 1}.layers.{block}.shortcut.{kind}.{name}"
    return None


def map_encoder_layer(key: str, tensor: torch.Tensor) -> dict[str, torch.Tensor] | None:
    """
    One DETR/TransVG encoder-layer tensor (`self_attn.in_proj_weight`, `linear1.bias`, `fc2.weight`, ...) under
    [`EpmVGEncoderLayer`] names. nn.MultiheadAttention's fused `in_proj` is split into query, key and value rows.
    Returns `None` if the key is not an encoder-layer key.
    """
    if key in ("self_attn.in_proj_weight", "self_attn.in_proj_bias"):
        kind = key.rsplit("_", 1)[1]
        if tensor.shape[0] % 3:
            raise ValueError(f"{key} has {tensor.shape[0]} rows, not a multiple of 3 (query, key, value).")
        query, key_, value = tensor.chunk(3, dim=0)
        return {f"self_attn.q_proj.{kind}": query, f"self_attn.k_proj.{kind}": key_, f"self_attn.v_proj.{kind}": value}
    for old, new in _ENCODER_LAYER_RENAMES.items():
        if key.startswith(old) and key[len(old) :] in ("weight", "bias"):
            return {new + key[len(old) :]: tensor}
    return None


def has_torchvision_backbone(state_dict: dict[str, torch.Tensor], layout: DetrLayout) -> bool:
    """Whether the ResNet of a DETR checkpoint has torchvision / timm names (else transformers' backbone names)."""
    return layout.backbone + "conv1.weight" in state_dict


def convert_visual_branch_key(
    key: str, tensor: torch.Tensor, layout: DetrLayout, result: ConversionResult, torchvision_backbone: bool = True
) -> bool:
    """
    Maps one key of a DETR-style visual branch into `result`; False if it is not part of the visual branch.
    A transformers backbone (`torchvision_backbone=False`) keeps its names.
    """
    if key.startswith(layout.backbone):
        name = key[len(layout.backbone) :]
        if name.endswith("num_batches_tracked"):
            result.skipped[key] = NUM_BATCHES_TRACKED
            return True
        new_key = map_resnet_key(name) if torchvision_backbone else name
        if new_key is None:
            return False
        result.state_dict[EPMVG_BACKBONE + new_key] = tensor
        return True
    if key.startswith(layout.input_projection) and key[len(layout.input_projection) :] in ("weight", "bias"):
        result.state_dict[EPMVG_INPUT_PROJECTION + key[len(layout.input_projection) :]] = tensor
        return True
    if match := re.fullmatch(re.escape(layout.encoder) + r"(\d+)\.(.+)", key):
        mapped = map_encoder_layer(match.group(2), tensor)
        if mapped is None:
            return False
        for name, value in mapped.items():
            result.state_dict[f"{EPMVG_VISION_ENCODER}{match.group(1)}.{name}"] = value
        return True
    return False


def convert_detr_state_dict(state_dict: dict[str, torch.Tensor]) -> ConversionResult:
    """
    Map a DETR checkpoint in any of its layouts (original, transformers' timm or no_timm) onto EpmVG's visual branch,
    as TransVG initializes it. The decoder, the object queries and the detection heads are left out.

    Raises:
        ValueError: naming the first tensor that is neither part of the visual branch nor a known DETR part.
    """
    layout = detect_detr_layout(state_dict)
    torchvision_backbone = has_torchvision_backbone(state_dict, layout)
    result = ConversionResult()
    for key, tensor in state_dict.items():
        if convert_visual_branch_key(key, tensor, layout, result, torchvision_backbone):
            continue
        reason = layout.unused_reason(key)
        if reason is None:
            raise unmapped_key_error(key, "DETR")
        result.skipped[key] = reason
    return result


def layer_indices(state_dict: dict, pattern: str) -> list[int]:
    """The sorted distinct integers that `pattern`'s first group matches at the start of the keys."""
    return sorted({int(match.group(1)) for key in state_dict if (match := re.match(pattern, key))})


def resnet_config_from_state_dict(state_dict: dict[str, torch.Tensor], prefix: str) -> ResNetConfig:
    """
    The transformers [`ResNetConfig`] of a torchvision ResNet stored under `prefix` (stem width, stage widths and
    depths, basic or bottleneck blocks). torchvision puts the stride in the 3x3 convolution (ResNet v1.5), which is
    transformers' `downsample_in_bottleneck=False`.
    """
    if prefix + "conv1.weight" not in state_dict:
        raise ValueError(f"No ResNet found under {prefix!r}: the checkpoint lacks {prefix}conv1.weight.")
    stem = state_dict[prefix + "conv1.weight"]
    if tuple(stem.shape[1:]) != (3, 7, 7):
        raise ValueError(f"{prefix}conv1.weight has shape {tuple(stem.shape)}; a torchvision ResNet stem is 7x7x3.")
    bottleneck = prefix + "layer1.0.conv3.weight" in state_dict
    last_conv = "conv3" if bottleneck else "conv2"
    depths, hidden_sizes = [], []
    for stage in range(1, 5):
        blocks = layer_indices(state_dict, re.escape(f"{prefix}layer{stage}.") + r"(\d+)\.")
        if not blocks:
            raise ValueError(
                f"The ResNet under {prefix!r} has no layer{stage}: EpmVG needs the four stride-32 stages."
            )
        depths.append(len(blocks))
        hidden_sizes.append(state_dict[f"{prefix}layer{stage}.0.{last_conv}.weight"].shape[0])
        if bottleneck and state_dict[f"{prefix}layer{stage}.0.conv1.weight"].shape[0] * 4 != hidden_sizes[-1]:
            raise ValueError(
                f"layer{stage} is a bottleneck of width {state_dict[f'{prefix}layer{stage}.0.conv1.weight'].shape[0]} "
                f"for {hidden_sizes[-1]} channels: transformers' ResNet needs the standard 4x reduction."
            )
    return ResNetConfig(
        embedding_size=stem.shape[0],
        hidden_sizes=hidden_sizes,
        depths=depths,
        layer_type="bottleneck" if bottleneck else "basic",
        downsample_in_bottleneck=False,
        out_features=["stage4"],
    )


def _transformers_backbone_config(detr_config: dict) -> PreTrainedConfig:
    """The `backbone_config` of a transformers DETR config.json, with its last stage as the one output."""
    backbone = detr_config.get("backbone_config")
    if not isinstance(backbone, dict) or "model_type" not in backbone:
        raise ValueError(
            "This DETR checkpoint has transformers backbone weights but its config.json has no `backbone_config`: "
            "save it again with transformers, or pass a checkpoint whose config describes its backbone."
        )
    backbone = {key: value for key, value in backbone.items() if key not in ("out_features", "out_indices")}
    config = AutoConfig.for_model(**backbone)
    config.out_features = [config.stage_names[-1]]
    return config


def detr_visual_branch(
    state_dict: dict[str, torch.Tensor], detr_config: dict | None = None, vision_attention_heads: int = 8
) -> tuple[ConversionResult, dict]:
    """
    A DETR checkpoint's visual branch: its tensors under EpmVG's names, and the visual-branch [`EpmVGConfig`]
    fields (the backbone from its torchvision weights or from the config's `backbone_config`; `d_model` and the
    encoder's depth and width from the weights; the encoder's attention heads, which the weights do not store, from
    the config's `encoder_attention_heads` or `vision_attention_heads`).

    Args:
        state_dict (`dict[str, torch.Tensor]`): the checkpoint's tensors, in any [`DetrLayout`].
        detr_config (`dict`, *optional*): its config.json (transformers' DETR), `None` for an original `.pth`.
        vision_attention_heads (`int`, *optional*, defaults to 8): the heads when `detr_config` does not say.
    """
    detr_config = detr_config or {}
    if detr_config.get("dilation"):
        raise ValueError(
            "This DETR checkpoint uses a dilated C5 (DETR-DC5, stride 16), which EpmVG does not support: use a "
            "stride-32 DETR such as facebook/detr-resnet-50."
        )
    result = convert_detr_state_dict(state_dict)
    layout = detect_detr_layout(state_dict)
    if has_torchvision_backbone(state_dict, layout):
        backbone_config = resnet_config_from_state_dict(state_dict, layout.backbone)
    else:
        backbone_config = _transformers_backbone_config(detr_config)
    layers = layer_indices(result.state_dict, re.escape(EPMVG_VISION_ENCODER) + r"(\d+)\.")
    if not layers or layers != list(range(len(layers))):
        raise ValueError(f"The encoder layers under {layout.encoder!r} are not numbered 0..N-1: {layers}.")
    config_kwargs = {
        "backbone_config": backbone_config,
        "d_model": result.state_dict[EPMVG_INPUT_PROJECTION + "weight"].shape[0],
        "vision_encoder_layers": len(layers),
        "vision_encoder_attention_heads": detr_config.get("encoder_attention_heads", vision_attention_heads),
        "vision_encoder_ffn_dim": result.state_dict[f"{EPMVG_VISION_ENCODER}0.mlp.fc1.weight"].shape[0],
    }
    return result, config_kwargs


def load_weights_file(name_or_path: str, **hub_kwargs) -> dict[str, torch.Tensor]:
    """
    The tensors of a checkpoint folder or Hub repo: `model.safetensors`, else `pytorch_model.bin` read with
    `torch.load(weights_only=True)` (tensors only, no code). `hub_kwargs` go to `cached_file` (`revision`, ...).
    """
    for name in (SAFE_WEIGHTS_NAME, WEIGHTS_NAME):
        path = cached_file(name_or_path, name, _raise_exceptions_for_missing_entries=False, **hub_kwargs)
        if path is not None:
            if name == SAFE_WEIGHTS_NAME:
                return load_file(path)
            return torch.load(path, map_location="cpu", weights_only=True)
    raise FileNotFoundError(
        f"{name_or_path} has neither {SAFE_WEIGHTS_NAME} nor {WEIGHTS_NAME}: pass a folder or Hub id holding a "
        "single-file checkpoint."
    )


def load_detr_visual_branch(name_or_path: str, **hub_kwargs) -> tuple[ConversionResult, dict]:
    """
    A transformers DETR checkpoint (folder or Hub id, timm or no_timm layout) as EpmVG visual-branch weights and
    config fields, read from its files without building a DETR model.
    """
    with open(cached_file(name_or_path, CONFIG_NAME, **hub_kwargs), encoding="utf-8") as handle:
        detr_config = json.load(handle)
    return detr_visual_branch(load_weights_file(name_or_path, **hub_kwargs), detr_config)


__all__ = [
    "ConversionResult",
    "DetrLayout",
    "convert_detr_state_dict",
    "convert_visual_branch_key",
    "detr_visual_branch",
    "load_detr_visual_branch",
    "map_encoder_layer",
    "map_resnet_key",
    "resnet_config_from_state_dict",
]
