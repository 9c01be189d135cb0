# Copyright 2026 The epmvg authors. Licensed under the Apache License, Version 2.0.
"""scripts/run_evaluation.py on a fixture dataset with a tiny saved model: one plain process, and two processes under
`accelerate launch` (CPU, gloo) giving the same metrics and counts (issue 4, acceptance 4)."""

import json
import os
import subprocess
import sys

import pytest
import torch
from datasets import Dataset

from modeling_epmvg.commands.evaluate import markdown_table, prediction_records, score
from processing import EpmVGProcessor
from processing.data.metrics import compute_grounding_metrics
from tests.conftest import REPO_ROOT, cpu_launch, tiny_config, tiny_tokenizer
from tests.grounding_layouts import LMMS_FEATURES, lmms_split, write_parquet_repo


# `make test` runs tests side by side (pytest-xdist): one worker runs this file, so its fixtures run once
pytestmark = pytest.mark.xdist_group("evaluate_script")

# odd sizes: a 2-way shard is uneven, and testB leaves the second process with nothing
SPLIT_SIZES = {"testA": 5, "testB": 1}


class _PlainMetric:
    def compute(self, predictions, references, iou_thresholds):
        return compute_grounding_metrics(predictions, references, iou_thresholds)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    from modeling_epmvg import EpmVGForVisualGrounding

    root = tmp_path_factory.mktemp("evaluate_script")
    torch.manual_seed(0)
    EpmVGForVisualGrounding(tiny_config()).save_pretrained(root / "model")
    EpmVGProcessor.from_model_config(tiny_config(), tiny_tokenizer()).save_pretrained(root / "model")
    refs = {
        "testA": [
            (11, 1, (40, 30), ["red circle", "the left circle"], [2.0, 3.0, 10.0, 20.0]),
            (12, 2, (32, 48), ["blue square", "big square", "square"], [5.0, 5.0, 20.0, 30.0]),
        ],
        "testB": [(13, 3, (64, 20), ["star"], [0.0, 0.0, 30.0, 20.0])],
    }
    write_parquet_repo(root / "RefCOCO", {split: lmms_split(r) for split, r in refs.items()}, LMMS_FEATURES)
    (root / "hf_home").mkdir()
    return root


def run(command: list[str], workdir) -> str:
    env = {
        **os.environ,
        "HF_HOME": str(workdir / "hf_home"),  # datasets / evaluate caches, nothing from the user's
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "CUDA_VISIBLE_DEVICES": "",
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    result = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    return result.stdout


def evaluate_args(workdir, output: str) -> list[str]:
    return [
        "--model",
        str(workdir / "model"),
        "--dataset",
        str(workdir / "RefCOCO"),
        "--batch-size",
        "2",
        "--output",
        str(workdir / output),
    ]


@pytest.fixture(scope="module")
def single_process(workdir):
    # run as a plain file: the script must still import the `evaluate` library, not itself
    stdout = run([sys.executable, "scripts/run_evaluation.py", *evaluate_args(workdir, "one.json")], workdir)
    return stdout, json.loads((workdir / "one.json").read_text())


@pytest.mark.slow
def test_single_process_prints_the_table_and_writes_the_json(single_process):
    stdout, report = single_process
    assert "| split | examples | Acc@0.25 | Acc@0.5 | Acc@0.75 | mIoU |" in stdout
    assert "| testA | 5 |" in stdout and "| testB | 1 |" in stdout
    assert report["num_processes"] == 1 and sorted(report["metrics"]) == ["testA", "testB"]
    for split, size in SPLIT_SIZES.items():
        records = report["predictions"][split]
        assert [r["index"] for r in records] == list(range(size))
        # the metric of the JSON file is the metric of its own per-example predictions (original pixels)
        expected = compute_grounding_metrics([r["pred_bbox"] for r in records], [r["bbox"] for r in records])
        assert report["metrics"][split] == pytest.approx(expected)
    first = report["predictions"]["testA"][0]
    assert first["expression"] == "red circle" and first["bbox"] == [2.0, 3.0, 12.0, 23.0]
    x1, y1, x2, y2 = first["pred_bbox"]
    assert 0 <= x1 <= x2 <= 40 and 0 <= y1 <= y2 <= 30  # clipped to the 40x30 original image


@pytest.mark.slow
def test_two_processes_count_every_expression_once(single_process, workdir):
    launch = [*cpu_launch(), "-m", "modeling_epmvg.commands.evaluate"]
    stdout = run([*launch, *evaluate_args(workdir, "two.json")], workdir)
    assert stdout.count("| testA | 5 |") == 1  # only the main process reports
    one, two = single_process[1], json.loads((workdir / "two.json").read_text())
    assert two["num_processes"] == 2
    for split in SPLIT_SIZES:
        # every expression counted once: the same counts, the same metrics up to float rounding of other batches
        assert two["metrics"][split]["num_examples"] == one["metrics"][split]["num_examples"]
        assert two["metrics"][split] == pytest.approx(one["metrics"][split], abs=1e-6)
        assert [r["index"] for r in two["predictions"][split]] == [r["index"] for r in one["predictions"][split]]
        for a, b in zip(one["predictions"][split], two["predictions"][split]):
            assert a["pred_bbox"] == pytest.approx(b["pred_bbox"], abs=1e-4)


@pytest.mark.slow
def test_compiled_model_gives_the_same_predictions(single_process, workdir, in_process_command):
    # in this process (the launcher and the command runs are tested above); one image per batch: inductor compiles
    # one input shape. This is also the equivalence test of `compile_for_inference`.
    try:
        arguments = [*evaluate_args(workdir, "compiled.json"), "--compile", "--batch-size", "1"]
        completed = in_process_command("evaluate", *arguments)
        assert completed.returncode == 0, completed.stderr[-3000:]
    finally:
        torch._dynamo.reset()
    one, compiled = single_process[1], json.loads((workdir / "compiled.json").read_text())
    for split in SPLIT_SIZES:
        for a, b in zip(one["predictions"][split], compiled["predictions"][split], strict=True):
            assert a["pred_bbox"] == pytest.approx(b["pred_bbox"], abs=1e-3)  # pixels of a 40x30 image


def test_records_refuse_a_prediction_count_that_is_not_one_per_expression():
    dataset = Dataset.from_dict(
        {"image_id": [1, 2], "ref_id": [3, 4], "expression": ["a", "b"], "bbox": [[0.0, 0.0, 2.0, 2.0]] * 2}
    )
    with pytest.raises(RuntimeError, match="Gathered 3 predictions for 2 expressions"):
        prediction_records(dataset, [[0.0, 0.0, 2.0, 2.0]] * 3)
    records = prediction_records(dataset, [[0.0, 0.0, 2.0, 2.0], [0.0, 0.0, 1.0, 1.0]])
    metrics, records = score(records, [0.5], _PlainMetric())
    assert [r["index"] for r in records] == [0, 1] and [r["iou"] for r in records] == [1.0, 0.25]
    assert records[1]["expression"] == "b" and metrics["num_examples"] == 2
    table = markdown_table({"val": metrics}, [0.5])
    assert table.splitlines()[2] == "| val | 2 | 50.00 | 62.50 |"
