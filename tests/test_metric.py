# Copyright 2026 The epmvg authors. Licensed under the Apache License, Version 2.0.
"""The grounding-accuracy metric: exact values, IoU = 0.5 counts, offline evaluate.load (issue 4, acceptance 3)."""

import importlib
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from processing.data.metrics import box_iou, compute_grounding_metrics, grounding_accuracy_path


REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PREDICTIONS = [
    [0, 0, 10, 10],  # IoU 1
    [0, 0, 10, 10],  # IoU exactly 0.5 against [0, 0, 10, 20]: counts as correct
    [0, 0, 10, 10],  # IoU 25 / 300 = 1/12 against [5, 5, 20, 20]
    [30, 30, 40, 40],  # IoU 0: disjoint
    [0.1, 0.1, 0.7, 0.3],  # IoU 0.12 / 0.24 = 0.5 in floating point (0.49999999999999994 without the epsilon)
]
REFERENCES = [[0, 0, 10, 10], [0, 0, 10, 20], [5, 5, 20, 20], [0, 0, 10, 10], [0.1, 0.1, 0.7, 0.5]]


def test_iou_of_hand_made_boxes():
    assert box_iou(PREDICTIONS, REFERENCES) == pytest.approx([1.0, 0.5, 1 / 12, 0.0, 0.5])
    assert box_iou([[0, 0, 0, 0]], [[0, 0, 0, 0]]).tolist() == [0.0]  # empty boxes: 0, not NaN


def test_exact_metric_values_and_the_boundary():
    metrics = compute_grounding_metrics(PREDICTIONS, REFERENCES, iou_thresholds=[0.05, 0.75])
    assert metrics == {
        "accuracy": 3 / 5,  # IoU 1, 0.5 and 0.5: the boundary counts
        "accuracy@0.05": 4 / 5,
        "accuracy@0.5": 3 / 5,
        "accuracy@0.75": 1 / 5,
        "mean_iou": pytest.approx((1 + 0.5 + 1 / 12 + 0 + 0.5) / 5),
        "num_examples": 5,
    }
    # just under the boundary does not count
    assert compute_grounding_metrics([[0, 0, 10, 10]], [[0, 0, 10, 20.001]])["accuracy"] == 0.0


def test_bad_inputs_are_clear():
    with pytest.raises(ValueError, match=r"shape \(num_examples, 4\)"):
        compute_grounding_metrics([[0, 0, 1]], [[0, 0, 1, 1]])
    with pytest.raises(ValueError, match="1 references"):
        compute_grounding_metrics(np.zeros((2, 4)), np.zeros((1, 4)))
    with pytest.raises(ValueError, match="at least one"):
        compute_grounding_metrics(np.zeros((0, 4)), np.zeros((0, 4)))


def run_python(code: str, tmp_path, **env) -> str:
    environment = {**os.environ, "HF_HOME": str(tmp_path / "hf_home"), "HF_HUB_OFFLINE": "1", **env}
    environment["PYTHONPATH"] = os.pathsep.join([REPO, environment.get("PYTHONPATH", "")])
    result = subprocess.run([sys.executable, "-c", code], env=environment, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


@pytest.mark.slow  # a fresh interpreter importing evaluate (which imports transformers.pipelines): ~3-15 s here
def test_evaluate_load_offline_with_an_empty_hf_home(tmp_path):
    (tmp_path / "hf_home").mkdir()
    code = f"""
import json, evaluate
metric = evaluate.load({grounding_accuracy_path()!r})
metric.add_batch(predictions={PREDICTIONS[:2]}, references={REFERENCES[:2]})
metric.add_batch(predictions={PREDICTIONS[2:]}, references={REFERENCES[2:]})
print(json.dumps(metric.compute(iou_thresholds=[0.05, 0.75])))
"""
    metrics = json.loads(run_python(code, tmp_path, HF_EVALUATE_OFFLINE="1").strip().splitlines()[-1])
    assert metrics == compute_grounding_metrics(PREDICTIONS, REFERENCES, iou_thresholds=[0.05, 0.75])


def test_the_plain_function_needs_no_evaluate(monkeypatch):
    monkeypatch.setitem(sys.modules, "evaluate", None)  # any import of evaluate now fails
    for name in [name for name in sys.modules if name.startswith("processing.data.metrics")]:
        monkeypatch.delitem(sys.modules, name)
    metrics = importlib.import_module("processing.data.metrics")
    assert metrics.compute_grounding_metrics([[0, 0, 2, 2]], [[0, 0, 2, 2]])["accuracy"] == 1.0
