# Copyright 2026 The epmvg authors. Licensed under the Apache License, Version 2.0.
"""Any AutoBackbone (ResNet, Swin, ConvNeXt): stage freezing by the backbone's own stage names, every trainable
parameter trained, a Swin checkpoint as the Hub has it, and 2-process DDP on a Swin EpmVG."""

import json
import subprocess

import pytest
import torch
from transformers import BertConfig, BertModel, ConvNextConfig

from modeling_epmvg import EpmVGForVisualGrounding

from .conftest import REPO_ROOT, TINY_VOCAB, cpu_launch, frozen_parameter_names, random_inputs, tiny_config
from .hub_layouts import tiny_swin_config, write_swin_checkpoint
from .test_train_script import CPU_ONLY
from .training_fixtures import train_arguments, write_training_setup


def backbone_configs() -> dict:
    return {
        "resnet": tiny_config().backbone_config,
        "swin": tiny_swin_config(out_features=["stage4"]),
        "convnext": ConvNextConfig(hidden_sizes=[8, 8, 16, 16], depths=[1, 1, 1, 1], out_features=["stage4"]),
    }


# where each backbone keeps its stem and its stages (transformers' module names)
STEM_AND_STAGES = {
    "resnet": ("embedder.", "encoder.stages.{}."),
    "swin": ("swin.embeddings.", "swin.encoder.layers.{}."),
    "convnext": ("embeddings.", "encoder.stages.{}."),
}
# parameters the feature map never reads: trained by nothing, so frozen
UNREAD = {"resnet": (), "swin": ("swin.layernorm.",), "convnext": ()}


@pytest.mark.parametrize("model_type", ["resnet", "swin", "convnext"])
@pytest.mark.parametrize("num_stages", [0, 1, 2])
def test_freeze_backbone_stages_freezes_the_stem_and_the_first_stages_by_stage_name(model_type, num_stages):
    model = EpmVGForVisualGrounding(tiny_config(backbone_config=backbone_configs()[model_type],
                                                freeze_backbone_stages=num_stages))  # fmt: skip
    stem, stage = STEM_AND_STAGES[model_type]
    expected_prefixes = ((stem,) if num_stages else ()) + tuple(stage.format(i) for i in range(num_stages))
    expected_prefixes += UNREAD[model_type]
    backbone = {name: parameter for name, parameter in model.model.backbone.model.named_parameters()}
    frozen = {name for name, parameter in backbone.items() if not parameter.requires_grad}
    assert frozen == {name for name in backbone if name.startswith(expected_prefixes)}
    assert frozen_parameter_names(model) == {f"model.backbone.model.{name}" for name in frozen}


@pytest.mark.parametrize("model_type", ["swin", "convnext"])
def test_every_trainable_parameter_gets_a_gradient(model_type):
    model = EpmVGForVisualGrounding(tiny_config(backbone_config=backbone_configs()[model_type]))
    model(**random_inputs(model.config)).loss.backward()
    trainable = {name: parameter for name, parameter in model.named_parameters() if parameter.requires_grad}
    assert [name for name, parameter in trainable.items() if parameter.grad is None] == []


def test_the_swin_freeze_survives_save_and_from_pretrained(tmp_path):
    model = EpmVGForVisualGrounding(tiny_config(backbone_config=backbone_configs()["swin"], freeze_backbone_stages=2))
    model.save_pretrained(tmp_path)
    assert frozen_parameter_names(EpmVGForVisualGrounding.from_pretrained(tmp_path)) == frozen_parameter_names(model)


def test_too_many_frozen_stages_are_refused_with_the_count():
    with pytest.raises(ValueError, match="the backbone has 4 stages .* pick at most 4"):
        EpmVGForVisualGrounding(tiny_config(freeze_backbone_stages=5))


def test_a_hub_layout_swin_initializes_the_backbone_value_for_value(tmp_path):
    source = write_swin_checkpoint(tmp_path / "swin")
    bert = BertConfig(vocab_size=len(TINY_VOCAB), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                      intermediate_size=32, max_position_embeddings=32)  # fmt: skip
    BertModel(bert).save_pretrained(tmp_path / "bert")
    model = EpmVGForVisualGrounding.from_backbone_text_pretrained(
        str(tmp_path / "swin"), str(tmp_path / "bert"), d_model=16, vision_encoder_layers=1,
        vision_encoder_attention_heads=2, vision_encoder_ffn_dim=32, fusion_layers=1, fusion_attention_heads=2,
        fusion_ffn_dim=32, image_size=64, max_text_len=8,
    )  # fmt: skip
    loaded = model.model.backbone.model.state_dict()
    swin = {name: tensor for name, tensor in source.items() if name.startswith("swin.")}
    assert swin and all(torch.equal(loaded[name], tensor) for name, tensor in swin.items())
    assert model.config.backbone_config.model_type == "swin"
    assert model.config.backbone_config.out_features == ["stage4"]
    assert model(**random_inputs(model.config)).pred_boxes.shape == (2, 4)


@pytest.mark.slow
def test_two_process_ddp_trains_a_swin_epmvg_without_unused_parameters(tmp_path):
    setup = write_training_setup(tmp_path / "setup", train_size=4, eval_size=2)
    # ddp_find_unused_parameters stays False (the trainer's default): a parameter without a gradient would fail
    tiny_config(backbone_config=backbone_configs()["swin"]).save_pretrained(tmp_path / "swin_config")
    arguments = train_arguments(setup, tmp_path / "out", max_steps="2")
    arguments[arguments.index("--config_name") + 1] = str(tmp_path / "swin_config")
    command = [*cpu_launch(), str(REPO_ROOT / "tests" / "ddp_probe.py"), *arguments]
    completed = subprocess.run(command, env=CPU_ONLY, capture_output=True, text=True, timeout=600, cwd=REPO_ROOT)
    assert completed.returncode == 0, completed.stderr[-3000:]
    ranks = [json.loads((tmp_path / "out" / f"rank{rank}.json").read_text()) for rank in (0, 1)]
    assert all(report["world_size"] == 2 and report["steps"] == 2 for report in ranks)
    assert ranks[0]["student"] == ranks[1]["student"]
