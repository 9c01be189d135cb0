# Copyright 2026 The epmvg authors. Licensed under the Apache License, Version 2.0.
"""A checkpoint whose config.json does not match its weights is refused naming the config field behind the shapes."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from PIL import Image
from transformers import AutoModel, pipeline

from modeling_epmvg import EpmVGForVisualGrounding
from processing import EpmVGProcessor, VisualGroundingPipeline

from .conftest import tiny_config, tiny_tokenizer
from .remote_code import run_without_package
from .test_command_line import error_line


# {edit of config.json (tiny_config: d_model 16, fusion_ffn_dim 32, 8 text slots, 64x64 canvas): what the error says}
EDITS = {
    "d_model": ({"d_model": 32}, "`d_model` is 32 in the config but 16 in the weights"),
    "fusion_ffn_dim": ({"fusion_ffn_dim": 48}, "`fusion_ffn_dim` is 48 in the config but 32 in the weights"),
    "max_text_len": (
        {"max_text_len": 12},
        "has 17 rows in the config (max_text_len 12, image_size 64) but 13 in the weights (max_text_len 8 at this",
    ),
}


def save_with_edited_config(folder, edit: dict) -> None:
    """A tiny model and its processor saved to `folder`, then config.json edited so it no longer fits the weights."""
    config = tiny_config()
    EpmVGForVisualGrounding(config).save_pretrained(folder)
    EpmVGProcessor.from_model_config(config, tiny_tokenizer()).save_pretrained(folder)
    path = folder / "config.json"
    path.write_text(json.dumps(json.loads(path.read_text()) | edit))


@pytest.mark.parametrize("field", sorted(EDITS))
def test_auto_model_names_the_field_whose_value_differs_from_the_weights(tmp_path, field):
    edit, message = EDITS[field]
    save_with_edited_config(tmp_path, edit)
    with pytest.raises(ValueError, match="do not fit the model its config describes") as refused:
        AutoModel.from_pretrained(tmp_path)
    assert message in str(refused.value)
    assert "Tensors that differ in shape" in str(refused.value) and "ignore_mismatched_sizes=True" in str(
        refused.value
    )


def test_ignore_mismatched_sizes_still_loads_with_those_tensors_initialized_anew(tmp_path):
    save_with_edited_config(tmp_path, {"fusion_ffn_dim": 48})
    model = AutoModel.from_pretrained(tmp_path, ignore_mismatched_sizes=True)
    assert model.model.fusion_encoder.layers[0].mlp.fc1.weight.shape == (48, 16)


def test_the_pipeline_names_the_field(tmp_path):
    save_with_edited_config(tmp_path, {"d_model": 32})
    with pytest.raises(ValueError, match="`d_model` is 32 in the config but 16 in the weights"):
        pipeline("visual-grounding", model=str(tmp_path), pipeline_class=VisualGroundingPipeline)


REMOTE_LOAD_SCRIPT = textwrap.dedent(
    """
    import json, sys
    for name in ("modeling_epmvg", "processing", "scripts"):
        sys.modules[name] = None  # any import of them now fails
    from transformers import AutoModel

    try:
        AutoModel.from_pretrained(sys.argv[1], trust_remote_code=True)
        print(json.dumps({"error": None}))
    except Exception as error:
        print(json.dumps({"error": type(error).__name__, "message": str(error)}))
    """
)


def test_remote_code_users_get_the_same_error_without_the_package(tmp_path):
    save_with_edited_config(tmp_path / "model", {"d_model": 32})
    result = run_without_package(REMOTE_LOAD_SCRIPT, str(tmp_path / "model"), cwd=tmp_path)
    assert result["error"] == "ValueError"
    assert "`d_model` is 32 in the config but 16 in the weights" in result["message"]


def epmvg_predict(model, tmp_path, *flags: str) -> subprocess.CompletedProcess:
    Image.new("RGB", (40, 30), "red").save(tmp_path / "image.png")
    command = [str(Path(sys.executable).parent / "epmvg-predict"), str(model), "--image", str(tmp_path / "image.png")]
    command += ["--expression", "the red circle", "--no_draw", *flags]
    env = os.environ | {"HF_MODULES_CACHE": str(tmp_path / "modules"), "CUDA_VISIBLE_DEVICES": ""}
    return subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
@pytest.mark.parametrize("flags", [(), ("--trust_remote_code",)], ids=["package code", "remote code"])
def test_epmvg_predict_reports_it_in_one_error_line(tmp_path, flags):
    save_with_edited_config(tmp_path / "model", {"max_text_len": 12})
    completed = epmvg_predict(tmp_path / "model", tmp_path, *flags)
    assert completed.returncode == 1, completed.stderr[-3000:]
    line = error_line(completed, "epmvg-predict")
    assert line.startswith("epmvg-predict: error: The weights in") and "max_text_len 12" in line


@pytest.mark.slow
def test_epmvg_predict_runs_the_checkpoints_own_pipeline_with_remote_code(tmp_path):
    save_with_edited_config(tmp_path / "model", {})
    completed = epmvg_predict(tmp_path / "model", tmp_path, "--trust_remote_code")
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert len(json.loads(completed.stdout)) == 1
    assert list((tmp_path / "modules").rglob("pipeline_epmvg.py"))
