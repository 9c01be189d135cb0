# Copyright 2026 The epmvg authors. Licensed under the Apache License, Version 2.0.
"""
Local folders in the layouts of the Hub checkpoints the README names, for tests that cannot reach the Hub:
`facebook/detr-resnet-50` (its main revision, timm layout, and its `no_timm` revision) and
`microsoft/swin-small-patch4-window7-224`. Every tensor is random (seeded), so a loaded value can be traced back to
the one tensor it came from.
"""

import json
from pathlib import Path

import torch
from safetensors.torch import save_file
from transformers import ResNetBackbone, ResNetConfig, SwinConfig, SwinForImageClassification


# ResNet-50: blocks and bottleneck widths per stage (the output width is 4x)
RESNET50_DEPTHS = (3, 4, 6, 3)
RESNET50_WIDTHS = (64, 128, 256, 512)
DETR_D_MODEL, DETR_FFN, DETR_LAYERS, DETR_QUERIES, DETR_CLASSES = 256, 2048, 6, 100, 91

# the fields of the Hub's facebook/detr-resnet-50 config.json (written by transformers 4), labels left out
DETR_HUB_CONFIG = {
    "activation_dropout": 0.0,
    "activation_function": "relu",
    "architectures": ["DetrForObjectDetection"],
    "attention_dropout": 0.0,
    "auxiliary_loss": False,
    "backbone": "resnet50",
    "bbox_cost": 5,
    "bbox_loss_coefficient": 5,
    "class_cost": 1,
    "classifier_dropout": 0.0,
    "d_model": DETR_D_MODEL,
    "decoder_attention_heads": 8,
    "decoder_ffn_dim": DETR_FFN,
    "decoder_layerdrop": 0.0,
    "decoder_layers": DETR_LAYERS,
    "dice_loss_coefficient": 1,
    "dilation": False,
    "dropout": 0.1,
    "encoder_attention_heads": 8,
    "encoder_ffn_dim": DETR_FFN,
    "encoder_layerdrop": 0.0,
    "encoder_layers": DETR_LAYERS,
    "eos_coefficient": 0.1,
    "giou_cost": 2,
    "giou_loss_coefficient": 2,
    "init_std": 0.02,
    "init_xavier_std": 1.0,
    "is_encoder_decoder": True,
    "mask_loss_coefficient": 1,
    "max_position_embeddings": 1024,
    "model_type": "detr",
    "num_channels": 3,
    "num_hidden_layers": DETR_LAYERS,
    "num_queries": DETR_QUERIES,
    "position_embedding_type": "sine",
    "scale_embedding": False,
    "torch_dtype": "float32",
    "transformers_version": "4.26.0.dev0",
    "use_pretrained_backbone": True,
    "use_timm_backbone": True,
}


def resnet50_config() -> ResNetConfig:
    """ResNet-50 as transformers describes it (the `backbone_config` of the `no_timm` revision)."""
    return ResNetConfig(
        embedding_size=64,
        hidden_sizes=[4 * width for width in RESNET50_WIDTHS],
        depths=list(RESNET50_DEPTHS),
        layer_type="bottleneck",
        out_features=["stage4"],
    )


def _batch_norm(name: str, channels: int) -> dict[str, tuple]:
    return {f"{name}.{stat}": (channels,) for stat in ("weight", "bias", "running_mean", "running_var")}


def torchvision_resnet50_shapes() -> dict[str, tuple]:
    """The tensors of a torchvision / timm ResNet-50 feature extractor (no fc), by name."""
    shapes = {"conv1.weight": (64, 3, 7, 7), **_batch_norm("bn1", 64)}
    in_channels = 64
    for stage, (depth, width) in enumerate(zip(RESNET50_DEPTHS, RESNET50_WIDTHS), start=1):
        for block in range(depth):
            prefix = f"layer{stage}.{block}"
            shapes[f"{prefix}.conv1.weight"] = (width, in_channels, 1, 1)
            shapes[f"{prefix}.conv2.weight"] = (width, width, 3, 3)
            shapes[f"{prefix}.conv3.weight"] = (4 * width, width, 1, 1)
            for index, channels in ((1, width), (2, width), (3, 4 * width)):
                shapes |= _batch_norm(f"{prefix}.bn{index}", channels)
            if block == 0:
                shapes[f"{prefix}.downsample.0.weight"] = (4 * width, in_channels, 1, 1)
                shapes |= _batch_norm(f"{prefix}.downsample.1", 4 * width)
            in_channels = 4 * width
    return shapes


def transformers_resnet50_shapes() -> dict[str, tuple]:
    """The tensors of transformers' ResNet-50 backbone, by name (frozen BatchNorm: no num_batches_tracked)."""
    with torch.device("meta"):
        backbone = ResNetBackbone(resnet50_config())
    return {
        name: tuple(tensor.shape)
        for name, tensor in backbone.state_dict().items()
        if not name.endswith("num_batches_tracked")
    }


def _linear(name: str, out_features: int, in_features: int) -> dict[str, tuple]:
    return {f"{name}.weight": (out_features, in_features), f"{name}.bias": (out_features,)}


def _layer_norm(name: str) -> dict[str, tuple]:
    return {f"{name}.weight": (DETR_D_MODEL,), f"{name}.bias": (DETR_D_MODEL,)}


def _attention(name: str) -> dict[str, tuple]:
    shapes = {}
    for projection in ("k_proj", "v_proj", "q_proj", "out_proj"):
        shapes |= _linear(f"{name}.{projection}", DETR_D_MODEL, DETR_D_MODEL)
    return shapes


def detr_transformer_shapes() -> dict[str, tuple]:
    """DETR's input projection, encoder, decoder, queries and heads under transformers' saved names."""
    shapes = {
        "model.input_projection.weight": (DETR_D_MODEL, 2048, 1, 1),
        "model.input_projection.bias": (DETR_D_MODEL,),
        "model.query_position_embeddings.weight": (DETR_QUERIES, DETR_D_MODEL),
        **_layer_norm("model.decoder.layernorm"),
        **_linear("class_labels_classifier", DETR_CLASSES + 1, DETR_D_MODEL),
        **_linear("bbox_predictor.layers.0", DETR_D_MODEL, DETR_D_MODEL),
        **_linear("bbox_predictor.layers.1", DETR_D_MODEL, DETR_D_MODEL),
        **_linear("bbox_predictor.layers.2", 4, DETR_D_MODEL),
    }
    for stack in ("encoder", "decoder"):
        for index in range(DETR_LAYERS):
            prefix = f"model.{stack}.layers.{index}"
            shapes |= _attention(f"{prefix}.self_attn") | _layer_norm(f"{prefix}.self_attn_layer_norm")
            if stack == "decoder":
                shapes |= _attention(f"{prefix}.encoder_attn") | _layer_norm(f"{prefix}.encoder_attn_layer_norm")
            shapes |= _linear(f"{prefix}.fc1", DETR_FFN, DETR_D_MODEL)
            shapes |= _linear(f"{prefix}.fc2", DETR_D_MODEL, DETR_FFN) | _layer_norm(f"{prefix}.final_layer_norm")
    return shapes


def random_tensors(shapes: dict[str, tuple], seed: int = 0) -> dict[str, torch.Tensor]:
    """Seeded random tensors (running variances positive), one distinct set of values per name."""
    generator = torch.Generator().manual_seed(seed)
    tensors = {}
    for name, shape in shapes.items():
        tensor = torch.randn(shape, generator=generator)
        tensors[name] = tensor.abs() + 0.5 if name.endswith("running_var") else tensor
    return tensors


def save_weights(folder: Path, tensors: dict[str, torch.Tensor], format: str) -> Path:
    """`model.safetensors` (`format="safetensors"`) or `pytorch_model.bin` (`"bin"`) in `folder`."""
    if format == "safetensors":
        path = folder / "model.safetensors"
        save_file(tensors, path, metadata={"format": "pt"})
    elif format == "bin":
        path = folder / "pytorch_model.bin"
        torch.save(tensors, path)
    else:
        raise ValueError(f"format must be 'safetensors' or 'bin', got {format!r}")
    return path


def write_detr_checkpoint(
    folder: str | Path, layout: str = "timm", format: str = "safetensors", seed: int = 0
) -> dict[str, torch.Tensor]:
    """
    A folder laid out as the Hub's `facebook/detr-resnet-50`: config.json plus every tensor of
    `DetrForObjectDetection` with ResNet-50's and DETR's real shapes (random values).

    Args:
        folder: where to write (created).
        layout: `"timm"` (the main revision: `"use_timm_backbone": true`, torchvision/timm ResNet names under
            `model.backbone.conv_encoder.model.`) or `"no_timm"` (the `no_timm` revision: a `backbone_config` and
            transformers' ResNet names there).
        format: `"safetensors"` (`model.safetensors`) or `"bin"` (`pytorch_model.bin`, a pickled state dict).

    Returns:
        The tensors written, by name.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    config = dict(DETR_HUB_CONFIG)
    if layout == "timm":
        backbone = torchvision_resnet50_shapes()
    elif layout == "no_timm":
        backbone = transformers_resnet50_shapes()
        config |= {"use_timm_backbone": False, "backbone_config": resnet50_config().to_dict()}
    else:
        raise ValueError(f"layout must be 'timm' or 'no_timm', got {layout!r}")
    shapes = {f"model.backbone.conv_encoder.model.{name}": shape for name, shape in backbone.items()}
    tensors = random_tensors(shapes | detr_transformer_shapes(), seed)
    save_weights(folder, tensors, format)
    (folder / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True))
    return tensors


def tiny_swin_config(**overrides) -> SwinConfig:
    """A Swin of the swin-small family's shape (4 stages, patch 4, stride 32) with tiny widths and depths."""
    kwargs = dict(
        image_size=64,
        patch_size=4,
        embed_dim=8,
        depths=[1, 1, 2, 1],
        num_heads=[1, 2, 2, 4],
        window_size=2,
        drop_path_rate=0.0,
        num_labels=3,
    )
    return SwinConfig(**(kwargs | overrides))


def write_swin_checkpoint(folder: str | Path, format: str = "safetensors", seed: int = 0) -> dict[str, torch.Tensor]:
    """
    A folder laid out as the Hub's `microsoft/swin-small-patch4-window7-224`: a `SwinForImageClassification`
    (`swin.*` weights with the final `swin.layernorm`, and the `classifier`) and its config.json, tiny and random.

    Returns:
        The tensors written, by name.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model = SwinForImageClassification(tiny_swin_config())
    state_dict = model.state_dict()
    tensors = random_tensors({name: tuple(tensor.shape) for name, tensor in state_dict.items()}, seed)
    # integer tables (the relative position index) are fixed by the architecture, not weights
    tensors |= {name: tensor for name, tensor in state_dict.items() if not tensor.is_floating_point()}
    save_weights(folder, tensors, format)
    model.config.architectures = [type(model).__name__]
    model.config.save_pretrained(folder)
    return tensors
