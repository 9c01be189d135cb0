# Copyright 2026 The epmvg authors. Licensed under the Apache License, Version 2.0.
"""scripts/export_onnx.py: the exported inference graph matches PyTorch under ONNX Runtime (CPU) within 1e-4."""

import json
import subprocess
import sys

import pytest
import torch
from transformers import BertConfig, BertModel

from modeling_epmvg import EpmVGForVisualGrounding
from modeling_epmvg.commands import export_onnx

from .conftest import REPO_ROOT, tiny_config
from .test_hub_loading import save_model_and_processor


onnxruntime = pytest.importorskip("onnxruntime")


def test_the_command_exports_with_the_default_exporter_and_matches_pytorch_in_a_fresh_process(tmp_path):
    # a fresh process, as users run it: onnxscript's folding warnings would reach stderr (pytest captures them)
    save_model_and_processor(tmp_path / "checkpoint")
    command = [sys.executable, "-m", "modeling_epmvg.commands.export_onnx", str(tmp_path / "checkpoint")]
    completed = subprocess.run(
        [*command, str(tmp_path / "exported")], cwd=REPO_ROOT, capture_output=True, text=True, timeout=600
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "Evaluation failed" not in completed.stdout + completed.stderr
    summary = json.loads(completed.stdout)
    assert summary["exporter"] == "dynamo"
    assert summary["max_abs_diff"] <= 1e-4 and summary["checked_batch_sizes"] == [1, 3]
    session = onnxruntime.InferenceSession(summary["onnx"], providers=["CPUExecutionProvider"])
    assert [tensor.name for tensor in session.get_inputs()] == list(export_onnx.INPUT_NAMES)
    assert [tensor.name for tensor in session.get_outputs()] == ["pred_boxes"]
    assert {"config.json", "processor_config.json", "model.onnx"} <= {
        p.name for p in (tmp_path / "exported").iterdir()
    }


def test_legacy_exporter_matches_pytorch_and_a_mismatch_is_reported(tmp_path):
    torch.manual_seed(0)
    model = EpmVGForVisualGrounding(tiny_config()).eval()
    path = tmp_path / "model.onnx"
    assert export_onnx.export_onnx(model, path, exporter="legacy") == "legacy"
    assert export_onnx.check_onnx(model, path, batch_sizes=(1, 2, 5)) <= 1e-4
    with torch.no_grad():
        model.bbox_predictor.layers[2].bias.add_(1.0)
    with pytest.raises(ValueError, match="ONNX Runtime and PyTorch differ"):
        export_onnx.check_onnx(model, path)


def test_a_folder_without_processor_or_of_another_model_type_fails_saying_why(tmp_path, capsys):
    EpmVGForVisualGrounding(tiny_config()).save_pretrained(tmp_path / "model_only")
    assert export_onnx.main([str(tmp_path / "model_only"), str(tmp_path / "out")]) == 1
    assert "pass --processor PATH" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()

    BertModel(
        BertConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32)
    ).save_pretrained(tmp_path / "bert")
    assert export_onnx.main([str(tmp_path / "bert"), str(tmp_path / "out")]) == 1
    assert "holds a 'bert' checkpoint, not an EpmVG one" in capsys.readouterr().err
