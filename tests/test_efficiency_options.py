"""Every efficiency option gives the plain path's outputs and gradients (atol 1e-4); the benchmark's case grammar."""

import json
import subprocess
import sys

import pytest
import torch
from transformers.backbone_utils import load_backbone

from modeling_epmvg import EpmVGForVisualGrounding
from modeling_epmvg import efficiency_epmvg as efficiency
from modeling_epmvg.commands.benchmark import check_targets, parse_case
from modeling_epmvg.efficiency_epmvg import compile_for_inference
from modeling_epmvg.modeling_epmvg import EpmVGFoldedConv2d, EpmVGFrozenBatchNorm2d, replace_batch_norm

from .conftest import REPO_ROOT, random_inputs, tiny_config


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


def test_sdpa_path_equals_explicit_attention_in_outputs_and_gradients():
    plain, explicit = _pair()
    inputs = random_inputs(plain.config)
    explicit_result = _outputs_and_gradients(explicit, inputs, output_attentions=True)
    _assert_same(_outputs_and_gradients(plain, inputs), explicit_result)


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


def test_compile_for_inference_folds_the_weights_and_predicts_the_same_boxes():
    model = EpmVGForVisualGrounding(tiny_config()).eval()
    inputs = {key: value for key, value in random_inputs(model.config).items() if key != "labels"}
    with torch.inference_mode():
        reference = model(**inputs).pred_boxes
        try:
            compiled = compile_for_inference(model)(**inputs).pred_boxes
        finally:
            torch._dynamo.reset()
    torch.testing.assert_close(compiled, reference, atol=ATOL, rtol=ATOL)


def test_compile_for_inference_refuses_a_model_in_train_mode():
    with pytest.raises(ValueError, match=r"model\.eval\(\) first"):
        compile_for_inference(EpmVGForVisualGrounding(tiny_config()).train())


@pytest.mark.parametrize(
    ("name", "kind", "batch_size", "image_size", "options"),
    [
        ("forward-b1-640", "forward", 1, 640, ()),
        ("train-b8-320+cached+ckpt", "train", 8, 320, ("cached", "ckpt")),
        ("data-640", "data", 1, 640, ()),
        ("roofline", "roofline", 1, 640, ()),
    ],
)
def test_benchmark_case_names_parse(name, kind, batch_size, image_size, options):
    case = parse_case(name)
    assert (case.kind, case.batch_size, case.image_size, case.options) == (kind, batch_size, image_size, options)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("forward-b1-640+ckpt", "train cases only"),
        ("train-b8-640+fast", "Unknown option"),
        ("train-b8-650", "multiple of 32"),
        ("backward-b8-640", "Unknown benchmark case"),
        ("train-b8-640+live+cached", "one teacher mode"),
    ],
)
def test_bad_benchmark_case_names_are_explained(name, message):
    with pytest.raises(ValueError, match=message):
        parse_case(name)


def test_benchmark_targets_use_the_transvg_ratios():
    rows = [
        {"case": "forward-b1-640", "median_s": 0.8},
        {"case": "train-b8-640", "median_s": 20.0},
        {"case": "train-b8-640+ckpt", "median_s": 24.0, "peak_rss_gb": 4.0},
        {"case": "train-b8-640+cached", "median_s": 20.5},
        {"case": "data-640", "images_per_s": 70.0},
    ]
    met = {target["target"]: target["met"] for target in check_targets(rows)}
    assert met == {
        "forward b1@640 (s)": True,
        "train step b8@640 (s)": False,  # 20.0 > 0.9 x 21.5
        "peak RSS train b8@640 + ckpt (GB)": True,
        "ckpt step time / plain step time": True,
        "cached teacher / distillation off @640": True,
        "data pipeline data-640 (images/s per worker)": True,
    }


def test_benchmark_targets_judge_the_configuration_the_scripts_run():
    rows = [
        {"case": "forward-b1-640", "median_s": 1.1},
        {"case": "forward-b1-640+malloc", "median_s": 0.92},
        {"case": "forward-b1-640+malloc+compile", "median_s": 0.79},
        {"case": "train-b8-640", "median_s": 32.0},
        {"case": "train-b8-640+malloc", "median_s": 26.0},
        {"case": "train-b8-640+ckpt", "median_s": 40.0, "peak_rss_gb": 5.0},
        {"case": "train-b8-640+ckpt+release", "median_s": 41.0, "peak_rss_gb": 4.6},
        {"case": "train-b8-640+malloc+cached", "median_s": 26.5},
    ]
    targets = {target["target"]: (target["case"], round(target["measured"], 3)) for target in check_targets(rows)}
    assert targets == {
        "forward b1@640 (s)": ("forward-b1-640+malloc+compile", 0.79),
        "train step b8@640 (s)": ("train-b8-640+malloc", 26.0),
        # gradient checkpointing returns freed memory (memory first); its time compares with the default allocator's
        "peak RSS train b8@640 + ckpt (GB)": ("train-b8-640+ckpt+release", 4.6),
        "ckpt step time / plain step time": ("train-b8-640+ckpt+release", round(41.0 / 32.0, 3)),
        "cached teacher / distillation off @640": ("train-b8-640+malloc+cached", round(26.5 / 26.0, 3)),
    }
    # scripts/train.py restarts with huge pages: measured, those cases are judged, each against its own page size
    rows += [
        {"case": "train-b8-640+thp", "median_s": 30.0},
        {"case": "train-b8-640+malloc+thp", "median_s": 25.0},
        {"case": "train-b8-640+ckpt+release+thp", "median_s": 36.0, "peak_rss_gb": 4.7},
    ]
    targets = {target["target"]: (target["case"], round(target["measured"], 3)) for target in check_targets(rows)}
    assert targets["train step b8@640 (s)"] == ("train-b8-640+malloc+thp", 25.0)
    assert targets["peak RSS train b8@640 + ckpt (GB)"] == ("train-b8-640+ckpt+release+thp", 4.7)
    assert targets["ckpt step time / plain step time"] == ("train-b8-640+ckpt+release+thp", round(36.0 / 30.0, 3))


def test_batch_norms_folded_into_convolutions_equal_transformers_resnet_with_frozen_batch_norm():
    """The backbone's folded conv + frozen BN layers give a plain ResNet's outputs and weight gradients."""
    torch.manual_seed(0)
    model = EpmVGForVisualGrounding(tiny_config()).train()
    folded = model.model.backbone.model
    for module in folded.modules():
        if isinstance(module, EpmVGFrozenBatchNorm2d):
            # non-trivial statistics, so a wrong fold would show
            module.running_mean.uniform_(-1, 1), module.running_var.uniform_(0.5, 2), module.weight.uniform_(0.5, 2)
    assert any(isinstance(module, EpmVGFoldedConv2d) for module in folded.modules())
    reference = load_backbone(model.config)
    with torch.no_grad():
        replace_batch_norm(reference)
    reference.load_state_dict(folded.state_dict())
    for parameter, trainable in zip(reference.parameters(), folded.parameters()):
        parameter.requires_grad_(trainable.requires_grad)  # the same frozen stages
    assert not any(isinstance(module, EpmVGFoldedConv2d) for module in reference.modules())
    pixel_values = random_inputs(model.config)["pixel_values"]
    results = []
    for backbone in (reference, folded):
        backbone.zero_grad(set_to_none=True)
        feature_map = backbone(pixel_values).feature_maps[-1]
        feature_map.square().mean().backward()
        gradients = {name: p.grad for name, p in backbone.named_parameters() if p.grad is not None}
        results.append(({"feature_map": feature_map.detach()}, gradients))
    assert results[0][1]  # the trainable stages have gradients to compare
    _assert_same(*results)


def test_allocator_settings_exclude_each_other_in_a_case():
    with pytest.raises(ValueError, match=r"\+malloc \(keep\) or \+release"):
        parse_case("train-b8-640+malloc+release")


RELEASE_PROBE = """
import sys, torch
from modeling_epmvg.efficiency_epmvg import return_freed_memory

def rss_mb():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:")) / 1024

if sys.argv[1] == "release":
    assert return_freed_memory()
torch.ones(30 * 2**18)  # freeing a 30 MB block raises glibc's dynamic mmap threshold to 30 MB
block = torch.ones(20 * 2**18)  # 20 MB, touched
before = rss_mb()
del block
print(before - rss_mb())
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc allocator settings")
def test_return_freed_memory_gives_a_freed_20_mb_tensor_back_to_the_os():
    def released_mb(mode: str) -> float:
        completed = subprocess.run(
            [sys.executable, "-c", RELEASE_PROBE, mode], capture_output=True, text=True, check=True, cwd=REPO_ROOT
        )
        return float(completed.stdout)

    # by default the 20 MB block stays in the heap after the larger free raised the threshold
    assert released_mb("default") < 5
    assert released_mb("release") > 15


HUGE_PAGES = "glibc.malloc.hugetlb=1"


@pytest.mark.parametrize(
    ("libc", "mode", "tunables", "expected"),
    [
        ("glibc 2.36", "always [madvise] never", None, HUGE_PAGES),
        ("glibc 2.36", "always [madvise] never", "glibc.pthread.rseq=0", f"glibc.pthread.rseq=0:{HUGE_PAGES}"),
        ("glibc 2.36", "always [madvise] never", "glibc.malloc.hugetlb=0", None),  # the user's own choice
        ("glibc 2.36", "[always] madvise never", None, None),  # the kernel uses huge pages anyway
        ("glibc 2.36", "always madvise [never]", None, None),
        ("glibc 2.31", "always [madvise] never", None, None),  # the tunable came with glibc 2.35
    ],
)
def test_huge_pages_environment_adds_glibcs_tunable_only_where_it_changes_something(
    libc, mode, tunables, expected, tmp_path, monkeypatch
):
    setting = tmp_path / "enabled"
    setting.write_text(mode + "\n")
    monkeypatch.setattr(efficiency, "_TRANSPARENT_HUGE_PAGES_MODE", setting)
    monkeypatch.setattr(efficiency.os, "confstr", lambda name: libc)
    environ = {"HOME": "/home/me"} | ({"GLIBC_TUNABLES": tunables} if tunables else {})
    environment = efficiency.huge_pages_environment(environ)
    if expected is None:
        assert environment is None
    else:
        assert environment == {"HOME": "/home/me", "GLIBC_TUNABLES": expected}


HUGE_PAGES_PROBE = """
import json, os, sys
from modeling_epmvg.efficiency_epmvg import restart_with_huge_pages

print("started", flush=True)
restart_with_huge_pages()
block = bytearray(b"x") * 64 * 2**20  # 64 MB, written
with open("/proc/self/smaps_rollup") as rollup:
    huge_kb = next(int(line.split()[1]) for line in rollup if line.startswith("AnonHugePages:"))
tunables = os.environ["GLIBC_TUNABLES"]
print(json.dumps({"pid": os.getpid(), "tunables": tunables, "arguments": sys.argv[1:], "huge_kb": huge_kb}))
"""


@pytest.mark.skipif(efficiency.huge_pages_environment({}) is None, reason="glibc >= 2.35, THP in madvise mode")
def test_restart_with_huge_pages_reruns_the_same_process_whose_memory_then_uses_huge_pages():
    command = [sys.executable, "-c", HUGE_PAGES_PROBE, "--an", "argument"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=REPO_ROOT)
    *started, report = process.communicate(timeout=60)[0].splitlines()
    assert process.returncode == 0
    assert started == ["started", "started"]  # ran up to the restart, then again from the start
    report = json.loads(report)
    assert report["pid"] == process.pid and report["arguments"] == ["--an", "argument"]
    assert report["tunables"] == HUGE_PAGES
    assert report["huge_kb"] >= 32 * 1024  # most of the 64 MB block sits in 2 MB pages
