# Copyright 2026 The epmvg authors. Licensed under the Apache License, Version 2.0.
"""DETR checkpoints as users name them: the Hub's facebook/detr-resnet-50 in its timm (main) and no_timm layouts."""

import logging

import pytest
import torch
from transformers import BertConfig, BertModel
from transformers.models.detr import modeling_detr

from modeling_epmvg import EpmVGForVisualGrounding
from modeling_epmvg import modeling_epmvg as modeling
from modeling_epmvg.commands.train import ModelArguments, build_model

from .conftest import TINY_VOCAB, random_inputs
from .hub_layouts import write_detr_checkpoint


VISUAL_BRANCH = ("model.backbone.", "model.vision_encoder.", "model.input_projection.")
LEFT_OUT = ("model.decoder.", "model.query_position_embeddings.", "class_labels_classifier.", "bbox_predictor.")
SMALL = dict(image_size=64, max_text_len=8, fusion_layers=1, fusion_ffn_dim=64)
HUB_BACKBONE = "model.backbone.conv_encoder.model."
EPMVG_BACKBONE = "model.backbone.model."
SHORTCUT = "encoder.stages.0.layers.0.shortcut"
# the keys the issue names, under the main revision's torchvision/timm names -> EpmVG's names
TIMM_KEYS = {
    f"{HUB_BACKBONE}conv1.weight": f"{EPMVG_BACKBONE}embedder.embedder.convolution.weight",
    f"{HUB_BACKBONE}bn1.running_var": f"{EPMVG_BACKBONE}embedder.embedder.normalization.running_var",
    f"{HUB_BACKBONE}layer3.5.conv3.weight": f"{EPMVG_BACKBONE}encoder.stages.2.layers.5.layer.2.convolution.weight",
    f"{HUB_BACKBONE}layer1.0.downsample.0.weight": f"{EPMVG_BACKBONE}{SHORTCUT}.convolution.weight",
    f"{HUB_BACKBONE}layer1.0.downsample.1.bias": f"{EPMVG_BACKBONE}{SHORTCUT}.normalization.bias",
}
ENCODER_KEYS = {
    "model.encoder.layers.3.self_attn.q_proj.weight": "model.vision_encoder.layers.3.self_attn.q_proj.weight",
    "model.encoder.layers.3.self_attn.out_proj.weight": "model.vision_encoder.layers.3.self_attn.o_proj.weight",
    "model.encoder.layers.5.fc1.bias": "model.vision_encoder.layers.5.mlp.fc1.bias",
    "model.encoder.layers.5.fc2.weight": "model.vision_encoder.layers.5.mlp.fc2.weight",
    "model.encoder.layers.0.self_attn_layer_norm.weight": "model.vision_encoder.layers.0.self_attn_layer_norm.weight",
    "model.encoder.layers.0.final_layer_norm.bias": "model.vision_encoder.layers.0.final_layer_norm.bias",
    "model.input_projection.weight": "model.input_projection.weight",
}


@pytest.fixture(scope="module")
def bert_folder(tmp_path_factory) -> str:
    folder = tmp_path_factory.mktemp("bert")
    config = BertConfig(vocab_size=len(TINY_VOCAB), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=32)  # fmt: skip
    BertModel(config, add_pooling_layer=False).save_pretrained(folder)
    return str(folder)


@pytest.fixture
def no_detr_model(monkeypatch):
    """Building transformers' DETR fails: a timm-layout config would make it build a timm backbone."""

    def refuse(*args, **kwargs):
        raise AssertionError("a DETR model was built")

    monkeypatch.setattr(modeling_detr.DetrPreTrainedModel, "from_pretrained", classmethod(refuse))
    monkeypatch.setattr(modeling_detr.DetrModel, "__init__", refuse)


@pytest.mark.parametrize("format", ["safetensors", "bin"])
@pytest.mark.parametrize("layout", ["timm", "no_timm"])
def test_hub_detr_initializes_backbone_encoder_and_input_projection_value_for_value(
    layout, format, tmp_path, bert_folder, no_detr_model, caplog
):
    source = write_detr_checkpoint(tmp_path / "detr", layout, format)
    with caplog.at_level(logging.WARNING, logger=modeling.__name__):
        model = EpmVGForVisualGrounding.from_backbone_text_pretrained(
            str(tmp_path / "detr"), bert_folder, fusion_attention_heads=2, **SMALL
        )
    loaded = model.state_dict()
    backbone_keys = dict(TIMM_KEYS) if layout == "timm" else {
        name: EPMVG_BACKBONE + name[len(HUB_BACKBONE):] for name in source if name.startswith(HUB_BACKBONE)
    }  # fmt: skip
    for source_name, name in (backbone_keys | ENCODER_KEYS).items():
        assert torch.equal(loaded[name], source[source_name]), name

    # every visual-branch tensor is exactly one checkpoint tensor, and every checkpoint tensor but the left-out
    # parts is used once: the random values tell them apart
    by_value = {tensor.numpy().tobytes(): name for name, tensor in source.items()}
    origins = {name: by_value.get(tensor.numpy().tobytes()) for name, tensor in loaded.items()}
    visual = {name: origin for name, origin in origins.items() if name.startswith(VISUAL_BRANCH)}
    assert None not in visual.values(), [name for name, origin in visual.items() if origin is None][:5]
    used = set(visual.values())
    assert used == {name for name in source if not name.startswith(LEFT_OUT)}
    assert not any(origin for name, origin in origins.items() if not name.startswith(VISUAL_BRANCH))

    backbone = model.config.backbone_config
    assert (backbone.depths, backbone.hidden_sizes, backbone.layer_type) == (
        [3, 4, 6, 3], [256, 512, 1024, 2048], "bottleneck"
    )  # fmt: skip
    assert (model.config.d_model, model.config.vision_encoder_layers, model.config.vision_encoder_attention_heads,
            model.config.vision_encoder_ffn_dim) == (256, 6, 8, 2048)  # fmt: skip
    report = caplog.text
    assert "from " + str(tmp_path / "detr") + ": backbone, input_projection, vision_encoder" in report
    assert "DETR decoder (TransVG keeps the encoder only) (158 tensors)" in report
    assert "DETR class head (unused) (2 tensors)" in report and "DETR object queries (unused) (1 tensors)" in report
    assert model(**random_inputs(model.config)).pred_boxes.shape == (2, 4)


def test_a_dilated_detr_is_refused_with_the_fix(tmp_path, bert_folder):
    write_detr_checkpoint(tmp_path / "detr")
    config = (tmp_path / "detr" / "config.json").read_text().replace('"dilation": false', '"dilation": true')
    (tmp_path / "detr" / "config.json").write_text(config)
    with pytest.raises(ValueError, match="dilated C5 .* use a stride-32 DETR"):
        EpmVGForVisualGrounding.from_backbone_text_pretrained(str(tmp_path / "detr"), bert_folder, **SMALL)


def test_the_backbone_revision_goes_to_the_visual_checkpoint_alone(tmp_path, bert_folder, monkeypatch):
    write_detr_checkpoint(tmp_path / "detr", "no_timm")
    seen = {}
    visual_branch, auto_model = modeling._pretrained_visual_branch, modeling.AutoModel.from_pretrained

    def record_visual(name, kwargs):
        seen["visual"] = dict(kwargs)
        return visual_branch(name, kwargs)

    def record_text(*args, **kwargs):
        seen["text"] = dict(kwargs)
        return auto_model(*args, **kwargs)

    monkeypatch.setattr(modeling, "_pretrained_visual_branch", record_visual)
    monkeypatch.setattr(modeling.AutoModel, "from_pretrained", record_text)
    arguments = ModelArguments(
        backbone_model_name_or_path=str(tmp_path / "detr"),
        backbone_revision="no_timm",
        text_model_name_or_path=bert_folder,
        config_overrides='{"image_size": 64, "max_text_len": 8, "fusion_layers": 1, "fusion_attention_heads": 2}',
    )
    build_model(arguments)
    assert seen["visual"]["revision"] == "no_timm"
    assert "revision" not in seen["text"]
    with pytest.raises(ValueError, match="--backbone_revision needs --backbone_model_name_or_path"):
        build_model(ModelArguments(backbone_revision="no_timm", text_model_name_or_path=bert_folder))
