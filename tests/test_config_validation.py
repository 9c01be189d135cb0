# Copyright 2026 The epmvg authors. Licensed under the Apache License, Version 2.0.
"""EpmVGConfig refuses every bad value when it is built, as a ValueError naming the field, the value and a fix."""

import json
import typing

import pytest

from modeling_epmvg import EpmVGConfig

from .conftest import tiny_config


# every field of EpmVGConfig: the fields that make it invalid, and what the message must say (tiny_config: d_model 16,
# 2 fusion layers, 64x64 canvas, 8 text slots, 32 text positions)
BAD_VALUES = {
    "backbone_config": ({"backbone_config": "resnet"}, "'backbone_config'"),
    "text_config": ({"text_config": 3}, "'text_config'"),
    "d_model": ({"d_model": 0}, "`d_model` is 0: it must be at least 1"),
    "vision_encoder_layers": ({"vision_encoder_layers": -1}, "`vision_encoder_layers` is -1: it must be at least 0"),
    "vision_encoder_attention_heads": (
        {"vision_encoder_attention_heads": 3},
        "`vision_encoder_attention_heads` is 3: it must divide `d_model` \\(16\\) .* use e.g. 2 or 4",
    ),
    "vision_encoder_ffn_dim": ({"vision_encoder_ffn_dim": 0}, "`vision_encoder_ffn_dim` is 0: it must be at least 1"),
    "fusion_layers": ({"fusion_layers": 0}, "`fusion_layers` is 0: it must be at least 1"),
    "fusion_attention_heads": (
        {"fusion_attention_heads": 5},
        "`fusion_attention_heads` is 5: it must divide `d_model` \\(16\\) .* use e.g. 4 or 8",
    ),
    "fusion_ffn_dim": ({"fusion_ffn_dim": -2}, "`fusion_ffn_dim` is -2: it must be at least 1"),
    "dropout": ({"dropout": 1.0}, r"`dropout` is 1.0: it is a probability: use a value in \[0, 1\)"),
    "activation_function": ({"activation_function": "relu7"}, "`activation_function` is 'relu7': use one of .*'gelu'"),
    "layer_norm_eps": ({"layer_norm_eps": 0}, "`layer_norm_eps` is 0: it must be positive"),
    "image_size": ({"image_size": 100}, "`image_size` is 100: it must be a multiple of `backbone_stride` .* e.g. 96"),
    "backbone_stride": ({"backbone_stride": 0}, "`backbone_stride` is 0: it must be at least 1"),
    "max_text_len": ({"max_text_len": 40}, "`max_text_len` is 40: the text encoder has only 32 positions"),
    "freeze_backbone_stages": ({"freeze_backbone_stages": -1}, "`freeze_backbone_stages` is -1"),
    "position_embedding_temperature": (
        {"position_embedding_temperature": -1.0},
        "`position_embedding_temperature` is -1.0: it must be positive, e.g. 10000",
    ),
    "init_std": ({"init_std": 0.0}, "`init_std` is 0.0: it must be positive"),
    "bbox_loss": ({"bbox_loss": "mse"}, r"`bbox_loss` is 'mse': use one of \['smooth_l1', 'l1'\]"),
    "smooth_l1_beta": ({"smooth_l1_beta": -0.5}, "`smooth_l1_beta` is -0.5: use a threshold >= 0"),
    "bbox_loss_coefficient": ({"bbox_loss_coefficient": -1}, "`bbox_loss_coefficient` is -1: a loss weight"),
    "giou_loss_coefficient": ({"giou_loss_coefficient": -0.1}, "`giou_loss_coefficient` is -0.1: a loss weight"),
    "distillation_loss": ({"distillation_loss": "kl"}, r"`distillation_loss` is 'kl': use one of \['cosine', 'l1'\]"),
    "distillation_image_coefficient": (
        {"distillation_image_coefficient": -1.5},
        "`distillation_image_coefficient` is -1.5: a loss weight must be >= 0",
    ),
    "distillation_text_coefficient": (
        {"distillation_text_coefficient": -2},
        "`distillation_text_coefficient` is -2: a loss weight must be >= 0",
    ),
    "dense_attribute_classes": (
        {"dense_attribute_classes": [5, 1]},
        r"`dense_attribute_classes` is \[5, 1\]: list at least 2 classes per attribute",
    ),
    "auxiliary_dense_loss_coefficient": (
        {"auxiliary_dense_loss_coefficient": 0.5},
        "`auxiliary_dense_loss_coefficient` is 0.5: the dense term needs `dense_attribute_classes`",
    ),
    "auxiliary_target_token_loss_coefficient": (
        {"auxiliary_target_token_loss_coefficient": -1.0},
        "`auxiliary_target_token_loss_coefficient` is -1.0: a loss weight",
    ),
    "auxiliary_target_token_layer": (
        {"auxiliary_target_token_loss_coefficient": 1.0, "auxiliary_target_token_layer": 2},
        "`auxiliary_target_token_layer` is 2: it must index one of the 2 fusion layers",
    ),
    "custom_pipelines": ({"custom_pipelines": "visual-grounding"}, "'custom_pipelines'"),
}

INT_FIELDS = [name for name, kind in EpmVGConfig.__annotations__.items() if kind is int]
FLOAT_FIELDS = [name for name, kind in EpmVGConfig.__annotations__.items() if float in typing.get_args(kind)]


def test_the_table_covers_every_field_of_the_config():
    assert set(BAD_VALUES) == set(EpmVGConfig.__annotations__)


@pytest.mark.parametrize("field", sorted(BAD_VALUES))
def test_a_bad_value_of_each_field_is_refused_naming_the_field_and_the_fix(field):
    fields, message = BAD_VALUES[field]
    with pytest.raises(ValueError, match=f"^Invalid EpmVGConfig: .*{message}"):
        tiny_config(**fields)


@pytest.mark.parametrize("field", FLOAT_FIELDS)
def test_every_float_field_takes_an_integer(field):
    # JSON writes 2.0 as 2 only when a person types it so; the parsed value is an int
    value = 0 if field in ("dropout", "auxiliary_dense_loss_coefficient") else 2
    assert getattr(tiny_config(**{field: value}), field) == value


@pytest.mark.parametrize("field", INT_FIELDS)
def test_every_int_field_refuses_a_fraction_naming_the_field(field):
    with pytest.raises(ValueError, match=f"Field '{field}' expected int, got float \\(value: 2.5\\).*a whole number"):
        tiny_config(**{field: 2.5})


def test_a_config_file_is_validated_when_it_is_read(tmp_path):
    tiny_config().save_pretrained(tmp_path)
    path = tmp_path / "config.json"
    saved = json.loads(path.read_text())

    path.write_text(json.dumps(saved | {"giou_loss_coefficient": 2}))
    assert EpmVGConfig.from_pretrained(tmp_path).giou_loss_coefficient == 2

    path.write_text(json.dumps(saved | {"fusion_attention_heads": 3}))
    with pytest.raises(ValueError, match="`fusion_attention_heads` is 3: it must divide `d_model` \\(16\\)"):
        EpmVGConfig.from_pretrained(tmp_path)
