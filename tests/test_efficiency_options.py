# Copyright 2026 The epmvg authors. Licensed under the Apache License, Version 2.0.
"""Every efficiency option gives the plain path's outputs and gradients (atol 1e-4); glibc's allocator environments."""

import os
import subprocess
import sys

import pytest
import torch
from transformers import ResNetBackbone

from modeling_epmvg import EpmVGForVisualGrounding
from modeling_epmvg.efficiency_epmvg import allocator_environment, compile_for_inference
from modeling_epmvg.modeling_epmvg import EpmVGFoldedBatchNorm2d, EpmVGFrozenBatchNorm2d

from .conftest import random_inputs, tiny_config


ATOL = 1e-4


def _pair(**overrides) -> tuple[EpmVGForVisualGrounding, EpmVGForVisualGrounding]:
    """Two identical tiny models in train mode, without dropout (so both paths draw no random numbers)."""
    torch.manual_seed(0)
    config = tiny_config(dropout=0.0, **overrides)
    config.text_config.hidden_dropout_prob = config.text_config.attention_probs_dropout_prob = 0.0
    plain = EpmVGForVisualGrounding(config).train()
    other = EpmVGForVisualGrounding(config).train()
    other.load_state_dict(plain.state_dict())
    return plain, other


def _outputs_and_gradients(model: EpmVGForVisualGrounding, inputs: dict, call=None, **kwargs) -> tuple[dict, dict]:
    """Outputs and parameter gradients of `call` (defaults to `model`; e.g. a compiled wrapper of it)."""
    model.zero_grad(set_to_none=True)
    outputs = (model if call is None else call)(**inputs, **kwargs)
    (outputs.loss + outputs.image_embeds.sum() + outputs.text_embeds.sum()).backward()
    values = {name: getattr(outputs, name).detach() for name in ("loss", "pred_boxes", "last_hidden_state")}
    gradients = {name: p.grad for name, p in model.named_parameters() if p.grad is not None}
    return values, gradients


def _assert_same(left: tuple[dict, dict], right: tuple[dict, dict]) -> None:
    (left_values, left_grads), (right_values, right_grads) = left, right
    for name, value in left_values.items():
        torch.testing.assert_close(right_values[name], value, atol=ATOL, rtol=ATOL, msg=name)
    assert left_grads.keys() == right_grads.keys()
    for name, gradient in left_grads.items():
        torch.testing.assert_close(right_grads[name], gradient, atol=ATOL, rtol=ATOL, msg=name)


def test_sdpa_attention_equals_eager_attention_in_outputs_and_gradients():
    plain, eager = _pair()
    eager.set_attn_implementation("eager")
    inputs = random_inputs(plain.config)
    eager_result = _outputs_and_gradients(eager, inputs, output_attentions=True)
    _assert_same(_outputs_and_gradients(plain, inputs), eager_result)


@pytest.mark.parametrize("stage", ["stage4", "stage3"])
def test_gradient_checkpointing_equals_plain_path_and_recomputes_the_trainable_resnet_blocks(stage):
    backbone = tiny_config().backbone_config
    backbone.out_features = [stage]
    plain, checkpointed = _pair(backbone_config=backbone, backbone_stride=32 if stage == "stage4" else 16)
    checkpointed.activation_checkpointing_enable()
    stages = checkpointed.model.backbone.model.encoder.stages
    output_stage = stages[int(stage[-1]) - 1]
    calls = {"frozen": 0, "trainable": 0, "output stage": 0}
    blocks = {"frozen": stages[0].layers[0], "trainable": stages[1].layers[0], "output stage": output_stage.layers[0]}
    for name, block in blocks.items():
        block.forward = _counting(block.forward, calls, name)
    inputs = random_inputs(plain.config)
    _assert_same(_outputs_and_gradients(plain, inputs), _outputs_and_gradients(checkpointed, inputs))
    # the trainable block runs again in the backward pass; the frozen one (no graph) and the output stage's (least
    # memory for its recompute) keep their activations
    assert calls == {"frozen": 1, "trainable": 2, "output stage": 1}


def _counting(forward, calls: dict, name: str):
    def counted(*args, **kwargs):
        calls[name] += 1
        return forward(*args, **kwargs)

    return counted


def test_block_by_block_resnet_equals_the_backbone_and_skips_unused_stages():
    backbone = tiny_config().backbone_config
    backbone.out_features = ["stage3"]
    model = EpmVGForVisualGrounding(tiny_config(backbone_config=backbone, backbone_stride=16)).eval()
    inputs = random_inputs(model.config)
    encoder = model.model.backbone
    calls = {"stage4": 0}
    last_stage = encoder.model.encoder.stages[3]
    last_stage.forward = _counting(last_stage.forward, calls, "stage4")
    with torch.no_grad():
        feature_map, _ = encoder(inputs["pixel_values"], inputs["pixel_mask"])
        reference = encoder.model(inputs["pixel_values"]).feature_maps[-1]  # runs every stage
    torch.testing.assert_close(feature_map, reference, atol=0, rtol=0)
    assert calls == {"stage4": 1}  # only the reference call computed stage 4


def test_batch_norms_folded_into_the_convolutions_equal_the_resnet_with_its_own_in_outputs_and_gradients():
    torch.manual_seed(0)
    resnet = EpmVGForVisualGrounding(tiny_config()).model.backbone.model.train()
    folded = [module for module in resnet.modules() if isinstance(module, EpmVGFoldedBatchNorm2d)]
    assert folded and not [module for module in resnet.modules() if type(module) is EpmVGFrozenBatchNorm2d]
    for norm in folded:  # statistics that are not the identity
        for name in ("weight", "bias", "running_mean"):
            norm._buffers[name].normal_()
        norm.running_var.uniform_(0.5, 2.0)
    # transformers' own ResNet: BatchNorm2d in eval mode normalizes with the same frozen statistics
    reference = ResNetBackbone(resnet.config).eval()
    incompatible = reference.load_state_dict(resnet.state_dict(), strict=False)
    assert not incompatible.unexpected_keys
    assert all(key.endswith("num_batches_tracked") for key in incompatible.missing_keys)
    pixel_values = torch.randn(2, 3, 64, 64)
    weights = torch.randn_like(reference(pixel_values).feature_maps[-1])
    outputs = {}
    for name, model in (("folded", resnet), ("reference", reference)):
        feature_map = model(pixel_values).feature_maps[-1]
        (feature_map * weights).sum().backward()
        gradients = {key: p.grad for key, p in model.named_parameters() if p.grad is not None}
        outputs[name] = feature_map.detach(), gradients
    torch.testing.assert_close(outputs["folded"][0], outputs["reference"][0], atol=ATOL, rtol=ATOL)
    trained = outputs["folded"][1]
    assert trained and all(key.endswith("convolution.weight") for key in trained)
    for key, gradient in trained.items():
        torch.testing.assert_close(gradient, outputs["reference"][1][key], atol=ATOL, rtol=ATOL, msg=key)


def test_channels_last_gives_the_same_outputs_and_gradients():
    plain, channels_last = _pair()
    channels_last.to(memory_format=torch.channels_last)
    inputs = random_inputs(plain.config)
    pixel_values = inputs["pixel_values"].contiguous(memory_format=torch.channels_last)
    channels_last_inputs = dict(inputs, pixel_values=pixel_values)
    _assert_same(_outputs_and_gradients(plain, inputs), _outputs_and_gradients(channels_last, channels_last_inputs))


def test_inference_mode_prediction_equals_no_grad():
    model = EpmVGForVisualGrounding(tiny_config()).eval()
    inputs = {key: value for key, value in random_inputs(model.config).items() if key != "labels"}
    with torch.no_grad():
        reference = model(**inputs).pred_boxes
    with torch.inference_mode():
        fast = model(**inputs).pred_boxes
    torch.testing.assert_close(fast, reference, atol=0, rtol=0)


def test_compiled_model_gives_the_same_outputs_and_gradients():
    plain, compiled = _pair()
    inputs = random_inputs(plain.config)
    # aot_eager traces forward and backward like inductor does, without the C++ compilation time
    try:
        result = _outputs_and_gradients(compiled, inputs, call=torch.compile(compiled, backend="aot_eager"))
    finally:
        torch._dynamo.reset()
    _assert_same(_outputs_and_gradients(plain, inputs), result)


def test_compile_for_inference_refuses_a_model_in_train_mode():
    with pytest.raises(ValueError, match=r"model\.eval\(\) first"):
        compile_for_inference(EpmVGForVisualGrounding(tiny_config()).train())


ALLOCATOR_PROBE = """
import sys, torch

def status_mb(field):
    with open("/proc/self/smaps_rollup" if field == "AnonHugePages:" else "/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith(field)) / 1024

torch.ones(30 * 2**18)  # freeing a 30 MB block raises glibc's dynamic mmap threshold to 30 MB
block = torch.ones(int(sys.argv[1]) * 2**18)  # touched
before, huge = status_mb("VmRSS:"), status_mb("AnonHugePages:")
del block
print(before - status_mb("VmRSS:"), huge)
"""


def _probe(settings: list[str], block_mb: int) -> tuple[float, float]:
    """(MB given back to the OS when a `block_mb` tensor is freed, MB in huge pages while it lives)."""
    environment = allocator_environment(os.environ, settings)
    completed = subprocess.run(
        [sys.executable, "-c", ALLOCATOR_PROBE, str(block_mb)], env=environment, capture_output=True, text=True
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    released, huge = map(float, completed.stdout.split())
    return released, huge


linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc allocator settings")


@linux_only
def test_release_gives_a_freed_20_mb_tensor_back_to_the_os():
    # by default the 20 MB block stays in the heap after the larger free raised the threshold
    assert _probe([], 20)[0] < 5
    assert _probe(["release"], 20)[0] > 15


@linux_only
def test_keep_holds_a_freed_64_mb_tensor_for_reuse():
    # by default a block above glibc's 32 MB mmap threshold limit is mapped, and unmapped when freed
    assert _probe([], 64)[0] > 60
    assert _probe(["keep"], 64)[0] < 5


def _huge_pages_on_request() -> bool:
    """glibc >= 2.35 (its hugetlb tunable) and the kernel's transparent huge pages in `madvise` mode."""
    try:
        name, version = os.confstr("CS_GNU_LIBC_VERSION").split()
        with open("/sys/kernel/mm/transparent_hugepage/enabled") as setting:
            mode = setting.read()
    except (AttributeError, ValueError, OSError):
        return False
    return name == "glibc" and tuple(map(int, version.split(".")[:2])) >= (2, 35) and "[madvise]" in mode


@pytest.mark.skipif(not _huge_pages_on_request(), reason="glibc >= 2.35, THP in madvise mode")
def test_huge_pages_back_a_64_mb_tensor_with_2_mb_pages():
    assert _probe([], 64)[1] < 8
    assert _probe(["huge_pages"], 64)[1] >= 32  # most of the 64 MB block sits in 2 MB pages


def test_allocator_environment_keeps_the_users_values_and_refuses_contradictions():
    environ = {"HOME": "/home/me", "MALLOC_MMAP_MAX_": "5", "GLIBC_TUNABLES": "glibc.pthread.rseq=0"}
    assert allocator_environment(environ, ["keep", "huge_pages"]) == {
        "HOME": "/home/me",
        "MALLOC_MMAP_MAX_": "5",  # the user's own value wins
        "MALLOC_TRIM_THRESHOLD_": str(2**36),
        "GLIBC_TUNABLES": "glibc.pthread.rseq=0:glibc.malloc.hugetlb=1",
    }
    own_choice = {"GLIBC_TUNABLES": "glibc.malloc.hugetlb=0"}
    assert allocator_environment(own_choice, ["huge_pages"]) == own_choice
    assert allocator_environment(environ, []) == environ
    with pytest.raises(ValueError, match="'keep' \\(speed\\) and 'release' \\(memory\\), not both"):
        allocator_environment({}, ["keep", "release"])
    with pytest.raises(ValueError, match="Unknown allocator setting"):
        allocator_environment({}, ["fast"])
