# Copyright 2026 The epmvg authors. Licensed under the Apache License, Version 2.0.
"""TransVG / DETR checkpoint conversion: every key mapped, outputs identical to a hand-built model, clear failures."""

import argparse
import json

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from transformers import AutoModel, AutoProcessor, BertConfig, BertModel

from modeling_epmvg import EpmVGForVisualGrounding
from modeling_epmvg.commands import convert_transvg as convert
from modeling_epmvg.detr_weights_epmvg import convert_detr_state_dict
from processing import EpmVGProcessor

from .conftest import TINY_VOCAB, frozen_parameter_names, random_inputs, tiny_tokenizer


# Tiny TransVG: ResNet "R-50-like" bottlenecks (stem 8, widths 16/32/32/64, depths 2/1/1/1), d 16, 2 heads,
# 1 visual + 2 fusion layers, a 2-layer BERT of width 16, 64x64 canvas (4 visual tokens), 8 text slots.
TINY = dict(
    stem=8, widths=(16, 32, 32, 64), depths=(2, 1, 1, 1), d=16, ffn=32, heads=2, vision_layers=1, fusion_layers=2,
    text_hidden=16, text_layers=2, text_ffn=32, text_positions=32, vocab=len(TINY_VOCAB), image_size=64,
    max_text_len=8,
)  # fmt: skip
TRANSVG_ARGS = dict(
    imsize=64, max_query_len=8, nheads=2, vl_nheads=2, bert_enc_num=2, dilation=False, vl_dropout=0.1,
    backbone="resnet50", bert_model="bert-base-uncased", lr=1e-4,
)  # fmt: skip
BODY = "visumodel.backbone.0.body."


class _Generator:
    """Random tensors (small, so that deep products stay in range) with positive BatchNorm variances."""

    def __init__(self, seed: int = 0):
        self.generator = torch.Generator().manual_seed(seed)

    def __call__(self, *shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=self.generator) * 0.2

    def batch_norm(self, state_dict: dict, prefix: str, channels: int) -> None:
        state_dict[prefix + ".weight"] = 1 + self(channels)
        state_dict[prefix + ".bias"] = self(channels)
        state_dict[prefix + ".running_mean"] = self(channels)
        state_dict[prefix + ".running_var"] = 0.5 + torch.rand(channels, generator=self.generator)


def torchvision_resnet_tensors(prefix: str, rand: _Generator, stem: int, widths, depths) -> dict:
    """torchvision ResNet (bottleneck, v1.5) tensors with FrozenBatchNorm2d buffers, named as in DETR/TransVG."""
    state_dict = {prefix + "conv1.weight": rand(stem, 3, 7, 7)}
    rand.batch_norm(state_dict, prefix + "bn1", stem)
    in_channels = stem
    for stage, (width, depth) in enumerate(zip(widths, depths), start=1):
        inner = width // 4
        for block in range(depth):
            name = f"{prefix}layer{stage}.{block}."
            state_dict[name + "conv1.weight"] = rand(inner, in_channels, 1, 1)
            rand.batch_norm(state_dict, name + "bn1", inner)
            state_dict[name + "conv2.weight"] = rand(inner, inner, 3, 3)
            rand.batch_norm(state_dict, name + "bn2", inner)
            state_dict[name + "conv3.weight"] = rand(width, inner, 1, 1)
            rand.batch_norm(state_dict, name + "bn3", width)
            if block == 0:  # the first block of every stage changes the width or the stride
                state_dict[name + "downsample.0.weight"] = rand(width, in_channels, 1, 1)
                rand.batch_norm(state_dict, name + "downsample.1", width)
            in_channels = width
    return state_dict


def multihead_encoder_layer_tensors(prefix: str, rand: _Generator, d: int, ffn: int) -> dict:
    """One DETR/TransVG TransformerEncoderLayer (nn.MultiheadAttention with fused in_proj, linear1/2, norm1/2)."""
    return {
        prefix + "self_attn.in_proj_weight": rand(3 * d, d),
        prefix + "self_attn.in_proj_bias": rand(3 * d),
        prefix + "self_attn.out_proj.weight": rand(d, d),
        prefix + "self_attn.out_proj.bias": rand(d),
        prefix + "linear1.weight": rand(ffn, d),
        prefix + "linear1.bias": rand(ffn),
        prefix + "linear2.weight": rand(d, ffn),
        prefix + "linear2.bias": rand(d),
        prefix + "norm1.weight": 1 + rand(d),
        prefix + "norm1.bias": rand(d),
        prefix + "norm2.weight": 1 + rand(d),
        prefix + "norm2.bias": rand(d),
    }


def bert_tensors(
    prefix: str, rand: _Generator, vocab: int, hidden: int, layers: int, ffn: int, positions: int
) -> dict:
    """BERT (pytorch-pretrained-bert / transformers names) including the pooler TransVG never uses."""
    state_dict = {
        prefix + "embeddings.word_embeddings.weight": rand(vocab, hidden),
        prefix + "embeddings.position_embeddings.weight": rand(positions, hidden),
        prefix + "embeddings.token_type_embeddings.weight": rand(2, hidden),
        prefix + "embeddings.LayerNorm.weight": 1 + rand(hidden),
        prefix + "embeddings.LayerNorm.bias": rand(hidden),
        prefix + "pooler.dense.weight": rand(hidden, hidden),
        prefix + "pooler.dense.bias": rand(hidden),
    }
    for index in range(layers):
        name = f"{prefix}encoder.layer.{index}."
        for part, shape in (
            ("attention.self.query", (hidden, hidden)),
            ("attention.self.key", (hidden, hidden)),
            ("attention.self.value", (hidden, hidden)),
            ("attention.output.dense", (hidden, hidden)),
            ("intermediate.dense", (ffn, hidden)),
            ("output.dense", (hidden, ffn)),
        ):
            state_dict[f"{name}{part}.weight"] = rand(*shape)
            state_dict[f"{name}{part}.bias"] = rand(shape[0])
        for norm in ("attention.output.LayerNorm", "output.LayerNorm"):
            state_dict[f"{name}{norm}.weight"] = 1 + rand(hidden)
            state_dict[f"{name}{norm}.bias"] = rand(hidden)
    return state_dict


def make_transvg_state_dict(seed: int = 0, **overrides) -> dict[str, torch.Tensor]:
    """A TransVG state dict with exactly the official key names and shapes, at the tiny dims of `TINY`."""
    dims = TINY | overrides
    rand = _Generator(seed)
    d, num_visual_tokens = dims["d"], (dims["image_size"] // 32) ** 2
    state_dict = torchvision_resnet_tensors(BODY, rand, dims["stem"], dims["widths"], dims["depths"])
    state_dict["visumodel.input_proj.weight"] = rand(d, dims["widths"][-1], 1, 1)
    state_dict["visumodel.input_proj.bias"] = rand(d)
    for index in range(dims["vision_layers"]):
        prefix = f"visumodel.transformer.encoder.layers.{index}."
        state_dict |= multihead_encoder_layer_tensors(prefix, rand, d, dims["ffn"])
    state_dict |= bert_tensors(
        "textmodel.bert.", rand, dims["vocab"], dims["text_hidden"], dims["text_layers"], dims["text_ffn"],
        dims["text_positions"],
    )  # fmt: skip
    state_dict["vl_pos_embed.weight"] = rand(1 + dims["max_text_len"] + num_visual_tokens, d) * 5
    state_dict["reg_token.weight"] = rand(1, d) * 5
    state_dict["visu_proj.weight"], state_dict["visu_proj.bias"] = rand(d, d), rand(d)
    state_dict["text_proj.weight"], state_dict["text_proj.bias"] = rand(d, dims["text_hidden"]), rand(d)
    for index in range(dims["fusion_layers"]):
        state_dict |= multihead_encoder_layer_tensors(f"vl_transformer.encoder.layers.{index}.", rand, d, dims["ffn"])
    for index, shape in enumerate([(d, d), (d, d), (4, d)]):
        state_dict[f"bbox_embed.layers.{index}.weight"] = rand(*shape) * 5
        state_dict[f"bbox_embed.layers.{index}.bias"] = rand(shape[0])
    return state_dict


def make_detr_state_dict(seed: int = 1) -> dict[str, torch.Tensor]:
    """An original DETR state dict at the tiny dims: backbone, encoder, decoder, queries, heads, input_proj."""
    rand, d = _Generator(seed), TINY["d"]
    state_dict = torchvision_resnet_tensors("backbone.0.body.", rand, TINY["stem"], TINY["widths"], TINY["depths"])
    state_dict["backbone.0.body.bn1.num_batches_tracked"] = torch.tensor(0)
    state_dict |= multihead_encoder_layer_tensors("transformer.encoder.layers.0.", rand, d, TINY["ffn"])
    state_dict |= multihead_encoder_layer_tensors("transformer.decoder.layers.0.", rand, d, TINY["ffn"])
    state_dict["transformer.decoder.layers.0.multihead_attn.in_proj_weight"] = rand(3 * d, d)
    state_dict["transformer.decoder.norm.weight"] = 1 + rand(d)
    state_dict["query_embed.weight"] = rand(5, d)
    state_dict["class_embed.weight"], state_dict["class_embed.bias"] = rand(92, d), rand(92)
    state_dict["bbox_embed.layers.0.weight"] = rand(d, d)
    state_dict["input_proj.weight"], state_dict["input_proj.bias"] = rand(d, TINY["widths"][-1], 1, 1), rand(d)
    return state_dict


# ------------------------------------------------------------------------------------------------ by hand


def _place_batch_norm(module: nn.Module, state_dict: dict, prefix: str) -> None:
    for name in ("weight", "bias", "running_mean", "running_var"):
        getattr(module, name).copy_(state_dict[f"{prefix}.{name}"])


def _place_linear(module: nn.Linear, state_dict: dict, prefix: str) -> None:
    module.weight.copy_(state_dict[prefix + ".weight"])
    module.bias.copy_(state_dict[prefix + ".bias"])


def _place_encoder_layer(layer: nn.Module, state_dict: dict, prefix: str) -> None:
    """nn.MultiheadAttention packs query, key and value rows (in that order) into in_proj."""
    weight, bias = state_dict[prefix + "self_attn.in_proj_weight"], state_dict[prefix + "self_attn.in_proj_bias"]
    d = weight.shape[1]
    for index, projection in enumerate((layer.self_attn.q_proj, layer.self_attn.k_proj, layer.self_attn.v_proj)):
        projection.weight.copy_(weight[index * d : (index + 1) * d])
        projection.bias.copy_(bias[index * d : (index + 1) * d])
    _place_linear(layer.self_attn.o_proj, state_dict, prefix + "self_attn.out_proj")
    _place_linear(layer.mlp.fc1, state_dict, prefix + "linear1")
    _place_linear(layer.mlp.fc2, state_dict, prefix + "linear2")
    _place_linear(layer.self_attn_layer_norm, state_dict, prefix + "norm1")
    _place_linear(layer.final_layer_norm, state_dict, prefix + "norm2")


@torch.no_grad()
def build_by_hand(config, state_dict: dict) -> EpmVGForVisualGrounding:
    """The TransVG tensors placed module by module into a model whose every tensor starts as NaN."""
    model = EpmVGForVisualGrounding(config).eval()
    for tensor in model.state_dict().values():
        tensor.fill_(float("nan"))
    inner = model.model
    resnet = inner.backbone.model
    resnet.embedder.embedder.convolution.weight.copy_(state_dict[BODY + "conv1.weight"])
    _place_batch_norm(resnet.embedder.embedder.normalization, state_dict, BODY + "bn1")
    for stage_index, stage in enumerate(resnet.encoder.stages, start=1):
        for block_index, block in enumerate(stage.layers):
            prefix = f"{BODY}layer{stage_index}.{block_index}."
            for conv_index, conv in enumerate(block.layer, start=1):
                conv.convolution.weight.copy_(state_dict[f"{prefix}conv{conv_index}.weight"])
                _place_batch_norm(conv.normalization, state_dict, f"{prefix}bn{conv_index}")
            if prefix + "downsample.0.weight" in state_dict:
                block.shortcut.convolution.weight.copy_(state_dict[prefix + "downsample.0.weight"])
                _place_batch_norm(block.shortcut.normalization, state_dict, prefix + "downsample.1")
    _place_linear(inner.input_projection, state_dict, "visumodel.input_proj")
    for index, layer in enumerate(inner.vision_encoder.layers):
        _place_encoder_layer(layer, state_dict, f"visumodel.transformer.encoder.layers.{index}.")
    _place_linear(inner.vision_projection, state_dict, "visu_proj")
    bert = {k[len("textmodel.bert.") :]: v for k, v in state_dict.items() if k.startswith("textmodel.bert.")}
    inner.text_backbone.load_state_dict({k: v for k, v in bert.items() if not k.startswith("pooler.")})
    _place_linear(inner.text_projection, state_dict, "text_proj")
    inner.reg_token.copy_(state_dict["reg_token.weight"])
    inner.fusion_position_embeddings.weight.copy_(state_dict["vl_pos_embed.weight"])
    for index, layer in enumerate(inner.fusion_encoder.layers):
        _place_encoder_layer(layer, state_dict, f"vl_transformer.encoder.layers.{index}.")
    for index, layer in enumerate(model.bbox_predictor.layers):
        _place_linear(layer, state_dict, f"bbox_embed.layers.{index}")
    unplaced = [
        key for key, tensor in model.state_dict().items() if tensor.is_floating_point() and tensor.isnan().any()
    ]
    assert not unplaced, f"the hand-built model misses {unplaced}"
    return model


# ------------------------------------------------------------------------------------------------ references


def torchvision_resnet_forward(state_dict: dict, prefix: str, pixel_values: torch.Tensor, depths) -> torch.Tensor:
    """torchvision's ResNet-50 forward (frozen BN, stride in the 3x3 convolution) written out with functional ops."""

    def batch_norm(x, name):
        scale = state_dict[name + ".weight"] * (state_dict[name + ".running_var"] + 1e-5).rsqrt()
        shift = state_dict[name + ".bias"] - state_dict[name + ".running_mean"] * scale
        return x * scale[None, :, None, None] + shift[None, :, None, None]

    x = F.relu(
        batch_norm(F.conv2d(pixel_values, state_dict[prefix + "conv1.weight"], stride=2, padding=3), prefix + "bn1")
    )
    x = F.max_pool2d(x, kernel_size=3, stride=2, padding=1)
    for stage, depth in enumerate(depths, start=1):
        for block in range(depth):
            name, stride = f"{prefix}layer{stage}.{block}.", 2 if stage > 1 and block == 0 else 1
            out = F.relu(batch_norm(F.conv2d(x, state_dict[name + "conv1.weight"]), name + "bn1"))
            out = F.relu(
                batch_norm(F.conv2d(out, state_dict[name + "conv2.weight"], stride=stride, padding=1), name + "bn2")
            )
            out = batch_norm(F.conv2d(out, state_dict[name + "conv3.weight"]), name + "bn3")
            if name + "downsample.0.weight" in state_dict:
                x = batch_norm(
                    F.conv2d(x, state_dict[name + "downsample.0.weight"], stride=stride), name + "downsample.1"
                )
            x = F.relu(out + x)
    return x


def transvg_encoder_layer_forward(state_dict, prefix, src, pos, key_padding_mask, num_heads) -> torch.Tensor:
    """TransVG's TransformerEncoderLayer.forward_post with torch's nn.MultiheadAttention, sequence-first."""
    d = src.shape[-1]
    attention = nn.MultiheadAttention(d, num_heads).eval()
    attention.load_state_dict(
        {
            "in_proj_weight": state_dict[prefix + "self_attn.in_proj_weight"],
            "in_proj_bias": state_dict[prefix + "self_attn.in_proj_bias"],
            "out_proj.weight": state_dict[prefix + "self_attn.out_proj.weight"],
            "out_proj.bias": state_dict[prefix + "self_attn.out_proj.bias"],
        }
    )
    query = key = src + pos
    src = src + attention(query, key, value=src, key_padding_mask=key_padding_mask)[0]
    src = F.layer_norm(src, (d,), state_dict[prefix + "norm1.weight"], state_dict[prefix + "norm1.bias"], 1e-5)
    hidden = F.relu(F.linear(src, state_dict[prefix + "linear1.weight"], state_dict[prefix + "linear1.bias"]))
    src = src + F.linear(hidden, state_dict[prefix + "linear2.weight"], state_dict[prefix + "linear2.bias"])
    return F.layer_norm(src, (d,), state_dict[prefix + "norm2.weight"], state_dict[prefix + "norm2.bias"], 1e-5)


# ------------------------------------------------------------------------------------------------ tests


def test_transvg_state_dict_converts_with_zero_unmapped_keys_and_matches_a_hand_built_model():
    state_dict = make_transvg_state_dict()
    model, result = convert.convert_transvg_checkpoint(state_dict, TRANSVG_ARGS)

    assert result.missing == []
    assert set(result.skipped) == {"textmodel.bert.pooler.dense.weight", "textmodel.bert.pooler.dense.bias"}
    config = model.config
    assert (config.image_size, config.max_text_len, config.d_model) == (64, 8, 16)
    assert (config.vision_encoder_layers, config.fusion_layers, config.vision_encoder_ffn_dim) == (1, 2, 32)
    assert (config.vision_encoder_attention_heads, config.fusion_attention_heads) == (2, 2)
    assert config.backbone_config.hidden_sizes == [16, 32, 32, 64] and config.backbone_config.depths == [2, 1, 1, 1]
    assert config.text_config.num_hidden_layers == 2 and config.text_config.vocab_size == len(TINY_VOCAB)

    hand_built = build_by_hand(config, state_dict)
    converted_state, hand_state = model.state_dict(), hand_built.state_dict()
    assert converted_state.keys() == hand_state.keys()
    for key in hand_state:
        assert torch.equal(converted_state[key], hand_state[key]), key
    inputs = random_inputs(config, batch_size=2)
    inputs.pop("labels")
    with torch.no_grad():
        converted_boxes, hand_boxes = model(**inputs).pred_boxes, hand_built(**inputs).pred_boxes
    assert torch.equal(converted_boxes, hand_boxes)
    # the fusion slots keep TransVG's order: row 0 is [REG], rows 1..8 the text, then the visual tokens
    assert torch.equal(model.model.fusion_position_embeddings.weight[1:9], state_dict["vl_pos_embed.weight"][1:9])


def test_converted_layers_compute_what_transvg_computes():
    state_dict = make_transvg_state_dict()
    model, _ = convert.convert_transvg_checkpoint(state_dict, TRANSVG_ARGS)
    pixel_values = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        reference = torchvision_resnet_forward(state_dict, BODY, pixel_values, TINY["depths"])
        ours = model.model.backbone.model(pixel_values).feature_maps[-1]
    torch.testing.assert_close(ours, reference, rtol=1e-4, atol=1e-5)

    generator = torch.Generator().manual_seed(4)
    hidden, positions = torch.randn(2, 13, 16, generator=generator), torch.randn(2, 13, 16, generator=generator)
    padding = torch.zeros(2, 13, dtype=torch.bool)
    padding[1, 5:9] = True
    prefix = "vl_transformer.encoder.layers.1."
    with torch.no_grad():
        reference = transvg_encoder_layer_forward(
            state_dict, prefix, hidden.transpose(0, 1), positions.transpose(0, 1), padding, num_heads=2
        ).transpose(0, 1)
        # the default SDPA attention takes a boolean mask, True on the keys each query may attend to
        ours = model.model.fusion_encoder.layers[1](hidden, ~padding[:, None, None, :], positions)
    torch.testing.assert_close(ours, reference, rtol=1e-4, atol=1e-5)


def test_unknown_key_fails_with_its_name():
    state_dict = make_transvg_state_dict()
    state_dict["visumodel.transformer.decoder.layers.0.linear1.weight"] = torch.zeros(2, 2)
    with pytest.raises(ValueError, match=r"visumodel\.transformer\.decoder\.layers\.0\.linear1\.weight"):
        convert.convert_transvg_state_dict(state_dict)
    state_dict = make_transvg_state_dict()
    state_dict["vl_transformer.encoder.layers.0.norm3.weight"] = torch.zeros(16)
    with pytest.raises(ValueError, match=r"Unmapped tensor 'vl_transformer\.encoder\.layers\.0\.norm3\.weight'"):
        convert.convert_transvg_state_dict(state_dict)


def test_config_inference_from_the_position_table():
    assert convert.infer_canvas(421, None, None) == (640, 20)  # TransVG R-50, RefCOCO
    assert convert.infer_canvas(441, None, None) == (640, 40)  # RefCOCOg queries
    assert convert.infer_canvas(13, None, 8) == (64, 8)
    assert convert.infer_canvas(13, 64, None) == (64, 8)
    with pytest.raises(ValueError, match="--image-size and --max-text-len"):
        convert.infer_canvas(13, None, None)
    state_dict = make_transvg_state_dict()
    config = convert.transvg_config_from_state_dict(state_dict, image_size=64)
    assert (config.max_text_len, config.vision_encoder_attention_heads, config.text_config.num_attention_heads) == (
        8,
        8,
        1,
    )
    with pytest.raises(ValueError, match="dilated"):
        convert.transvg_config_from_state_dict(state_dict, {**TRANSVG_ARGS, "dilation": True})


def test_bert_layers_after_bert_enc_num_are_dropped():
    model, result = convert.convert_transvg_checkpoint(make_transvg_state_dict(), {**TRANSVG_ARGS, "bert_enc_num": 1})
    assert model.config.text_config.num_hidden_layers == 1
    assert sum("encoder.layer.1." in key for key in result.skipped) == 16


class _NotData:
    """Stands for any pickled object that weights_only loading refuses."""


def test_cli_converts_a_checkpoint_file_with_processor_and_push(tmp_path, monkeypatch):
    state_dict = make_transvg_state_dict()
    checkpoint = tmp_path / "transvg.pth"
    optimizer = {"state": {}, "param_groups": [{"lr": 1e-4, "params": [0, 1]}]}
    torch.save(
        {"model": state_dict, "args": argparse.Namespace(**TRANSVG_ARGS), "epoch": 89, "optimizer": optimizer},
        checkpoint,
    )
    tokenizer_dir = tmp_path / "tokenizer"
    tiny_tokenizer().save_pretrained(tokenizer_dir)
    pushed = []
    monkeypatch.setattr(
        EpmVGForVisualGrounding, "push_to_hub", lambda self, repo, **kw: pushed.append(("model", repo))
    )
    monkeypatch.setattr(EpmVGProcessor, "push_to_hub", lambda self, repo, **kw: pushed.append(("processor", repo)))

    output = tmp_path / "converted"
    argv = [str(checkpoint), str(output), "--tokenizer", str(tokenizer_dir), "--push-to-hub", "me/transvg-tiny"]
    assert convert.main(argv) == 0
    assert pushed == [("model", "me/transvg-tiny"), ("processor", "me/transvg-tiny")]

    model, processor = AutoModel.from_pretrained(output).eval(), AutoProcessor.from_pretrained(output)
    assert processor.max_text_len == 8 and processor.image_processor.size["height"] == 64
    expected, _ = convert.convert_transvg_checkpoint(state_dict, TRANSVG_ARGS)
    for key, tensor in expected.state_dict().items():
        assert torch.equal(model.state_dict()[key], tensor), key


def test_the_converted_model_loads_with_transvgs_frozen_stem_and_layer1(tmp_path):
    checkpoint = tmp_path / "transvg.pth"
    torch.save({"model": make_transvg_state_dict(), "args": TRANSVG_ARGS}, checkpoint)
    assert convert.main([str(checkpoint), str(tmp_path / "converted")]) == 0
    converted = AutoModel.from_pretrained(tmp_path / "converted")
    assert converted.config.freeze_backbone_stages == 1
    frozen = frozen_parameter_names(EpmVGForVisualGrounding(converted.config))
    assert frozen and frozen_parameter_names(converted) == frozen


def test_pickled_objects_need_allow_pickle(tmp_path, capsys):
    checkpoint = tmp_path / "odd.pth"
    torch.save({"model": make_transvg_state_dict(), "extra": _NotData()}, checkpoint)
    with pytest.raises(ValueError, match="--allow-pickle"):
        convert.load_checkpoint(checkpoint)
    state_dict, args = convert.load_checkpoint(checkpoint, allow_pickle=True)
    assert "vl_pos_embed.weight" in state_dict and args == {}
    assert convert.main([str(checkpoint), str(tmp_path / "out")]) == 1
    assert "--allow-pickle" in capsys.readouterr().err


def test_detr_checkpoint_converts_into_the_visual_branch(tmp_path):
    detr = make_detr_state_dict()
    text_dir = tmp_path / "bert"
    bert = BertModel(BertConfig(vocab_size=len(TINY_VOCAB), hidden_size=16, num_hidden_layers=1,
                                num_attention_heads=2, intermediate_size=32, max_position_embeddings=32))  # fmt: skip
    bert.save_pretrained(text_dir)
    model, result = convert.convert_detr_checkpoint(
        detr, text_model=str(text_dir), vision_attention_heads=2, image_size=64, max_text_len=8
    )
    weights = model.state_dict()
    assert torch.equal(
        weights["model.backbone.model.embedder.embedder.convolution.weight"], detr["backbone.0.body.conv1.weight"]
    )
    assert torch.equal(
        weights["model.vision_encoder.layers.0.self_attn.v_proj.bias"],
        detr["transformer.encoder.layers.0.self_attn.in_proj_bias"][32:],
    )
    assert torch.equal(weights["model.input_projection.weight"], detr["input_proj.weight"])
    assert torch.equal(
        weights["model.text_backbone.encoder.layer.0.output.dense.weight"],
        bert.state_dict()["encoder.layer.0.output.dense.weight"],
    )
    assert "query_embed.weight" in result.skipped and "backbone.0.body.bn1.num_batches_tracked" in result.skipped
    assert not any(
        key.startswith(("model.backbone.", "model.vision_encoder.", "model.text_backbone.")) for key in result.missing
    )
    assert "model.reg_token" in result.missing and "bbox_predictor.layers.0.weight" in result.missing

    detr["transformer.encoder.layers.0.extra.weight"] = torch.zeros(1)
    with pytest.raises(ValueError, match=r"transformer\.encoder\.layers\.0\.extra\.weight"):
        convert_detr_state_dict(detr)


def test_detr_cli_refuses_a_transvg_checkpoint_and_vice_versa(tmp_path, capsys):
    transvg, detr = tmp_path / "transvg.pth", tmp_path / "detr.pth"
    torch.save({"model": make_transvg_state_dict()}, transvg)
    torch.save({"model": make_detr_state_dict()}, detr)
    assert convert.main([str(transvg), str(tmp_path / "a"), "--detr"]) == 1
    assert convert.main([str(detr), str(tmp_path / "b")]) == 1
    errors = capsys.readouterr().err
    assert "drop --detr" in errors and "add --detr" in errors
    summary_argv = [str(detr), str(tmp_path / "c"), "--detr", "--image-size", "64", "--max-text-len", "8"]
    assert convert.main(summary_argv + ["--vision-attention-heads", "2"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert "model.fusion_encoder" in summary["newly_initialized"]
