# Copyright 2026 The epmvg authors. Licensed under the Apache License, Version 2.0.
"""Specification of EpmVGConfig / EpmVGForVisualGrounding: architecture, training behaviour, save/load, errors."""

import os
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from torch._subclasses.fake_tensor import FakeTensorMode
from transformers import AutoModel, BertConfig, BertModel

from modeling_epmvg import EpmVGConfig, EpmVGForVisualGrounding

from .conftest import random_inputs, tiny_config


TRANSVG_R50_PARAMETERS = 149_745_860
BERT_POOLER_PARAMETERS = 590_592


def count(module: torch.nn.Module) -> int:
    return sum(parameter.numel() for parameter in module.parameters())


def test_default_config_is_transvg_r50_at_640_with_20_text_slots():
    model = EpmVGForVisualGrounding(EpmVGConfig())
    inner = model.model
    breakdown = {
        "ResNet-50 body": count(inner.backbone),
        "visual encoder x6": count(inner.vision_encoder),
        "input projection": count(inner.input_projection),
        "BERT-base without pooler": count(inner.text_backbone),
        "fusion encoder x6": count(inner.fusion_encoder),
        "fusion position table": count(inner.fusion_position_embeddings),
        "[REG] / visual proj / text proj / box MLP": (
            inner.reg_token.numel(),
            count(inner.vision_projection),
            count(inner.text_projection),
            count(model.bbox_predictor),
        ),
    }
    for part, parameters in breakdown.items():
        print(f"{part:45s} {parameters}")
    assert breakdown["ResNet-50 body"] == 23_454_912
    assert breakdown["visual encoder x6"] == breakdown["fusion encoder x6"] == 7_890_432
    assert breakdown["fusion position table"] == 421 * 256
    expected = TRANSVG_R50_PARAMETERS - BERT_POOLER_PARAMETERS
    assert abs(count(model) - expected) / expected < 0.005
    frozen = sum(p.numel() for p in inner.backbone.parameters() if not p.requires_grad)
    assert frozen == 222_400  # conv1 + layer1, as TransVG


def test_tiny_forward_backward_reaches_every_trainable_parameter_and_spares_frozen_ones(config):
    model = EpmVGForVisualGrounding(config).train()
    trainable = {name for name, parameter in model.named_parameters() if parameter.requires_grad}
    # frozen: the stem, the first stage and every BatchNorm statistic / affine buffer
    frozen_before = {name: t.clone() for name, t in model.state_dict().items() if name not in trainable}
    assert any(".embedder." in name for name in frozen_before) and any("stages.0." in name for name in frozen_before)

    outputs = model(**random_inputs(config))
    outputs.loss.backward()
    for name, parameter in model.named_parameters():
        if name in trainable:
            assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name
        else:
            assert parameter.grad is None, name
    torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=1e-4).step()

    after = model.state_dict()
    for name, before in frozen_before.items():
        assert torch.equal(before, after[name]), f"{name} is frozen but changed"


def test_output_shapes_and_distillation_slots(config):
    model = EpmVGForVisualGrounding(config).eval()
    outputs = model(**random_inputs(config, batch_size=3))
    sequence = 1 + config.max_text_len + config.num_visual_tokens
    assert outputs.pred_boxes.shape == (3, 4)
    assert ((outputs.pred_boxes > 0) & (outputs.pred_boxes < 1)).all()
    assert outputs.last_hidden_state.shape == (3, sequence, config.d_model)
    torch.testing.assert_close(outputs.text_embeds, outputs.last_hidden_state[:, 1])
    torch.testing.assert_close(outputs.image_embeds, outputs.last_hidden_state[:, 1 + config.max_text_len])
    assert outputs.hidden_states is None and outputs.attentions is None


def test_recorded_outputs_are_the_fusion_encoders_input_layer_outputs_and_attention_weights():
    model = EpmVGForVisualGrounding(tiny_config(attn_implementation="eager")).eval()
    config, inputs = model.config, random_inputs(model.config, batch_size=3)
    with torch.no_grad():
        outputs = model(**inputs, output_hidden_states=True, output_attentions=True)
        visual_tokens, _ = model.model.encode_image(inputs["pixel_values"], inputs["pixel_mask"])
        text_tokens, _ = model.model.encode_text(inputs["input_ids"], inputs["attention_mask"])
    sequence = 1 + config.max_text_len + config.num_visual_tokens
    # one tensor per fusion layer (the visual encoder's layers are not recorded)
    assert len(outputs.attentions) == config.fusion_layers
    heads = config.fusion_attention_heads
    assert all(weights.shape == (3, heads, sequence, sequence) for weights in outputs.attentions)
    torch.testing.assert_close(outputs.attentions[0].sum(-1), torch.ones(3, heads, sequence))
    # the fusion input [REG, text slots, visual tokens], then each fusion layer's output
    assert len(outputs.hidden_states) == config.fusion_layers + 1
    reg_token = model.model.reg_token.expand(3, -1, -1)
    torch.testing.assert_close(outputs.hidden_states[0], torch.cat([reg_token, text_tokens, visual_tokens], dim=1))
    torch.testing.assert_close(outputs.hidden_states[-1], outputs.last_hidden_state)


def test_output_flags_default_to_the_configs():
    config = tiny_config(attn_implementation="eager", output_attentions=True, output_hidden_states=True)
    model = EpmVGForVisualGrounding(config).eval()
    inputs = random_inputs(config)
    with torch.no_grad():
        outputs = model(**inputs)
        quiet = model(**inputs, output_attentions=False, output_hidden_states=False)
    assert len(outputs.attentions) == config.fusion_layers
    assert len(outputs.hidden_states) == config.fusion_layers + 1
    assert quiet.attentions is None and quiet.hidden_states is None


def test_output_hidden_states_can_select_fusion_layers_by_index(config):
    model = EpmVGForVisualGrounding(config).eval()
    inputs = random_inputs(config)
    with torch.no_grad():
        every = model(**inputs, output_hidden_states=True).hidden_states
        selected = model(**inputs, output_hidden_states=[0, -2]).hidden_states
    # the fusion input and the penultimate fusion layer's output, the others left out
    assert len(selected) == len(every) and all(state is None for state in selected[1:-2] + selected[-1:])
    torch.testing.assert_close(selected[0], every[0])
    torch.testing.assert_close(selected[-2], every[-2])


def test_recorded_hidden_states_under_gradient_checkpointing_equal_the_plain_ones_and_carry_gradients(config):
    torch.manual_seed(0)
    plain = EpmVGForVisualGrounding(config).train()
    checkpointed = EpmVGForVisualGrounding(config).train()
    checkpointed.load_state_dict(plain.state_dict())
    checkpointed.activation_checkpointing_enable()
    inputs = random_inputs(config)
    results = []
    for model in (plain, checkpointed):
        torch.manual_seed(1)  # the same dropout masks
        outputs = model(**inputs, output_hidden_states=True)
        # as a training-only head on the penultimate fusion layer would use it
        (outputs.loss + outputs.hidden_states[-2].square().mean()).backward()
        gradients = {name: p.grad for name, p in model.named_parameters() if p.grad is not None}
        results.append(([state.detach() for state in outputs.hidden_states], gradients))
    (plain_states, plain_gradients), (checkpointed_states, checkpointed_gradients) = results
    assert len(checkpointed_states) == config.fusion_layers + 1
    torch.testing.assert_close(checkpointed_states, plain_states)
    assert checkpointed_gradients.keys() == plain_gradients.keys()
    for name, gradient in plain_gradients.items():
        torch.testing.assert_close(checkpointed_gradients[name], gradient, atol=1e-5, rtol=1e-4, msg=name)


def test_attention_weights_with_another_attention_implementation_are_refused_with_the_fix(config):
    model = EpmVGForVisualGrounding(config)
    assert model.config._attn_implementation == "sdpa"
    with pytest.raises(ValueError, match='attn_implementation="eager"'):
        model(**random_inputs(config), output_attentions=True)


@pytest.mark.parametrize("attn_implementation", ["eager", "sdpa"])
def test_attention_implementations_load_from_a_folder_and_give_the_same_boxes(config, tmp_path, attn_implementation):
    model = EpmVGForVisualGrounding(config).eval()
    model.save_pretrained(tmp_path)
    reloaded = AutoModel.from_pretrained(tmp_path, attn_implementation=attn_implementation).eval()
    assert reloaded.config._attn_implementation == attn_implementation
    assert reloaded.config.text_config._attn_implementation == attn_implementation
    inputs = random_inputs(config)
    with torch.no_grad():
        torch.testing.assert_close(reloaded(**inputs).pred_boxes, model(**inputs).pred_boxes, atol=1e-5, rtol=0)


def test_the_attention_implementation_can_be_switched_on_a_built_model(config):
    model = EpmVGForVisualGrounding(config).eval()
    inputs = random_inputs(config)
    with torch.no_grad():
        sdpa = model(**inputs).pred_boxes
        model.set_attn_implementation("eager")
        eager = model(**inputs, output_attentions=True)
    assert len(eager.attentions) == config.fusion_layers
    torch.testing.assert_close(eager.pred_boxes, sdpa, atol=1e-5, rtol=0)


def test_attention_weights_are_computed_on_the_models_device():
    """Every mask and bias is built where the inputs are: the model runs on the meta device (fake tensors, as under
    torch.compile, since transformers' mask creation looks at the mask's values otherwise)."""
    config = tiny_config(attn_implementation="eager")
    model = EpmVGForVisualGrounding(config).eval().to("meta")
    with FakeTensorMode(allow_non_fake_inputs=True) as mode:
        inputs = {key: mode.from_tensor(value.to("meta")) for key, value in random_inputs(config).items()}
        outputs = model(**inputs, output_attentions=True)
    assert len(outputs.attentions) == config.fusion_layers
    assert {tensor.device.type for tensor in (outputs.pred_boxes, outputs.loss, *outputs.attentions)} == {"meta"}


def test_prediction_does_not_depend_on_the_rest_of_the_batch_or_on_text_padding(config):
    model = EpmVGForVisualGrounding(config).eval()
    batch = random_inputs(config, batch_size=3, seed=1)
    batch["pixel_mask"][1:, :, : config.image_size // 2] = 0  # other images have other sizes
    batch["attention_mask"][1:] = 1  # other texts are longer
    alone = {key: value[:1] for key, value in batch.items() if key != "labels"}
    # the same text dynamically padded to its own length instead of max_length
    length = int(alone["attention_mask"].sum())
    short = dict(alone, input_ids=alone["input_ids"][:, :length], attention_mask=alone["attention_mask"][:, :length])
    with torch.no_grad():
        in_batch = model(**{k: v for k, v in batch.items() if k != "labels"}).pred_boxes[:1]
        single = model(**alone).pred_boxes
        dynamic = model(**short).pred_boxes
    torch.testing.assert_close(in_batch, single, atol=1e-5, rtol=0)
    torch.testing.assert_close(dynamic, single, atol=1e-5, rtol=0)


def test_return_dict_false_gives_the_same_values_as_the_dataclass(config):
    model = EpmVGForVisualGrounding(config).eval()
    inputs = random_inputs(config)
    with torch.no_grad():
        as_dataclass = model(**inputs)
        as_tuple = model(**inputs, return_dict=False)
    assert isinstance(as_tuple, tuple)
    assert len(as_tuple) == len(as_dataclass.to_tuple())
    for left, right in zip(as_tuple, as_dataclass.to_tuple()):
        if isinstance(left, torch.Tensor):
            torch.testing.assert_close(left, right)
        else:
            assert left.keys() == right.keys()


def test_freeze_helpers(config):
    model = EpmVGForVisualGrounding(config)
    model.freeze_backbone()
    model.freeze_text_encoder()
    assert not any(p.requires_grad for p in model.model.backbone.parameters())
    assert not any(p.requires_grad for p in model.model.text_backbone.parameters())
    model.model.unfreeze_backbone()
    assert any(p.requires_grad for p in model.model.backbone.parameters())
    assert not model.model.backbone.model.embedder.embedder.convolution.weight.requires_grad


def test_save_pretrained_writes_safetensors_only_and_reloads_identically(config, tmp_path):
    model = EpmVGForVisualGrounding(config).eval()
    model.save_pretrained(tmp_path)
    files = set(os.listdir(tmp_path))
    assert "model.safetensors" in files
    assert not any(name.endswith((".bin", ".pt", ".pth", ".pkl")) for name in files)
    assert {"configuration_epmvg.py", "modeling_epmvg.py", "loss_epmvg.py"} <= files
    assert "model.backbone.model.embedder.embedder.normalization.running_mean" in load_file(
        tmp_path / "model.safetensors"
    )

    reloaded = AutoModel.from_pretrained(tmp_path).eval()  # no trust_remote_code: the installed package is used
    assert type(reloaded) is EpmVGForVisualGrounding
    inputs = random_inputs(config)
    with torch.no_grad():
        torch.testing.assert_close(model(**inputs).pred_boxes, reloaded(**inputs).pred_boxes, atol=0, rtol=0)


# A tiny model saved by commit d19ba4b (before attention went through transformers' attention interface and dropout
# became torch's), with non-trivial BatchNorm statistics, and the boxes it gave on the inputs stored beside it.
CHECKPOINT_BEFORE_ATTENTION_REWORK = Path(__file__).parent / "fixtures" / "epmvg_before_attention_rework"


@pytest.mark.parametrize("attn_implementation", ["eager", "sdpa"])
def test_a_checkpoint_saved_before_the_attention_rework_gives_the_boxes_it_gave_then(attn_implementation):
    expected = load_file(CHECKPOINT_BEFORE_ATTENTION_REWORK / "expected_outputs.safetensors")
    boxes = expected.pop("pred_boxes")
    inputs = dict(expected, pixel_values=expected["pixel_values"].float(), pixel_mask=expected["pixel_mask"].long())
    model = AutoModel.from_pretrained(CHECKPOINT_BEFORE_ATTENTION_REWORK, attn_implementation=attn_implementation)
    with torch.no_grad():
        torch.testing.assert_close(model.eval()(**inputs).pred_boxes, boxes, atol=1e-5, rtol=0)


def test_loading_a_checkpoint_of_another_model_type_is_refused(tmp_path):
    bert = BertModel(BertConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32))
    bert.save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="holds a 'bert' checkpoint, not an EpmVG one"):
        EpmVGForVisualGrounding.from_pretrained(tmp_path)


def test_inputs_of_the_wrong_shape_get_clear_errors(config):
    model = EpmVGForVisualGrounding(config)
    inputs = random_inputs(config)
    with pytest.raises(ValueError, match="must have shape \\(batch_size, 3, 64, 64\\)"):
        model(**dict(inputs, pixel_values=torch.zeros(2, 3, 32, 32), pixel_mask=None))
    with pytest.raises(ValueError, match="tokenize with max_length=8"):
        model(**dict(inputs, input_ids=torch.ones(2, 12, dtype=torch.long), attention_mask=None))
    with pytest.raises(ValueError, match="one expression per image"):
        model(**dict(inputs, input_ids=inputs["input_ids"][:1], attention_mask=None))
    with pytest.raises(ValueError, match="`labels` must have shape \\(2, 4\\)"):
        model(**dict(inputs, labels=torch.zeros(2, 2)))


def test_a_backbone_stride_that_does_not_match_the_feature_map_is_reported(config):
    model = EpmVGForVisualGrounding(tiny_config(backbone_stride=16))
    with pytest.raises(ValueError, match="set `backbone_stride` to the backbone's real output stride"):
        model(**random_inputs(model.config))


def test_a_stride_16_backbone_gives_four_times_the_visual_tokens():
    backbone = tiny_config().backbone_config
    backbone.out_features = ["stage3"]
    model = EpmVGForVisualGrounding(tiny_config(backbone_config=backbone, backbone_stride=16))
    outputs = model(**random_inputs(model.config))
    assert outputs.last_hidden_state.shape[1] == 1 + 8 + (64 // 16) ** 2


def test_freeze_backbone_stages_zero_trains_the_whole_backbone_including_the_stem():
    model = EpmVGForVisualGrounding(tiny_config(freeze_backbone_stages=0))
    assert all(parameter.requires_grad for parameter in model.model.backbone.parameters())
