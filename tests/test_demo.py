# Copyright 2026 The epmvg authors. Licensed under the Apache License, Version 2.0.
"""The embedded default (`scripts/demo.py`): a fixed-step schedule, reproducible results, and the ablation's rows and
learning curve, on a shortened demo."""

import json
import math
import subprocess
import sys

import pytest
from PIL import Image

from modeling_epmvg.commands import demo as demo_command
from modeling_epmvg.commands.demo import ablation_table, parse_args, schedule_arguments

from .conftest import REPO_ROOT


# `make test` runs tests side by side (pytest-xdist): one worker runs this file, so the demo fixture runs once
pytestmark = pytest.mark.xdist_group("demo")


SHORT_DEMO = ["--num-train", "2000", "--num-eval", "100", "--teacher-steps", "20", "--visual-steps", "20"]
SHORT_DEMO += ["--train-steps", "60"]
ACCURACIES = ("val_accuracy", "test_accuracy", "val_shuffled_text_accuracy", "val_accuracy_by_type")


def demo(output_dir, *arguments: str) -> None:
    subprocess.run(
        [sys.executable, "scripts/demo.py", "--output-dir", str(output_dir), *arguments], cwd=REPO_ROOT, check=True
    )


@pytest.fixture(scope="module")
def first_demo(tmp_path_factory):
    output = tmp_path_factory.mktemp("demo")
    demo(output, *SHORT_DEMO)
    return output


@pytest.mark.parametrize("rows, steps", [(40000, 4000), (2500, 1500), (10000, 1500), (2000, 60), (100, 7)])
def test_fixed_steps_drop_the_learning_rate_after_three_quarters_of_them(rows, steps):
    arguments = schedule_arguments(steps, rows, 32, minutes=None)
    assert arguments[:2] == ["--max_steps", str(steps)]
    drop_epoch = float(arguments[arguments.index("--lr_drop_epoch") + 1])
    # the Trainer's drop step: round(lr_drop_epoch * optimizer steps per epoch)
    assert round(drop_epoch * math.ceil(rows / 32)) == round(0.75 * steps)
    assert "--max_train_minutes" in schedule_arguments(steps, rows, 32, minutes=2.5)


def test_ablation_sizes_must_fit_the_training_set():
    with pytest.raises(SystemExit):
        parse_args(["--ablation", "--num-train", "1000", "--train-sizes", "500", "2000"])
    assert parse_args([]).train_sizes == [2500, 10000, 40000] and parse_args([]).seeds == [0, 1, 2]


def test_a_failed_stage_leaves_no_teacher_training_in_the_background(tmp_path, monkeypatch):
    started = []

    class Teacher:
        def __init__(self, arguments):
            self.args, self.terminated = arguments, False
            started.append(self)

        def terminate(self):
            self.terminated = True

    def failing_data(*arguments):
        raise ValueError("the data stage failed")

    monkeypatch.setattr(demo_command.subprocess, "Popen", Teacher)
    monkeypatch.setattr(demo_command, "prepare_student_inputs", failing_data)
    args = parse_args(["--output-dir", str(tmp_path)])
    with pytest.raises(ValueError, match="the data stage failed"):
        demo_command.prepare(args, {name: str(tmp_path / name) for name in ("teacher", "data", "config", "visual")})
    assert [teacher.terminated for teacher in started] == [True]
    with pytest.raises(ValueError, match="image_size=3 is too small"):  # checked before the teacher starts
        demo_command.prepare(parse_args(["--image-size", "3"]), {})
    assert len(started) == 1


@pytest.mark.slow
def test_same_seed_same_results(first_demo, tmp_path):
    demo(tmp_path, *SHORT_DEMO)
    results = [json.loads((folder / "results.json").read_text()) for folder in (first_demo, tmp_path)]
    assert results[0]["seed"] == 0 and results[0]["train_steps"] == 60
    assert {key: results[0][key] for key in ACCURACIES} == {key: results[1][key] for key in ACCURACIES}
    # and expression by expression: the same boxes, not only the same counts
    reports = [json.loads((folder / "model" / "eval_results.json").read_text()) for folder in (first_demo, tmp_path)]
    assert reports[0]["predictions"] == reports[1]["predictions"]


@pytest.mark.slow
def test_tiny_ablation_writes_its_rows_and_learning_curve(first_demo):
    # reuses the data, teacher and visual branch of the demo in the same folder
    ablation = ["--ablation", "--train-sizes", "500", "2000", "--seeds", "0", "--ablation-steps", "4"]
    demo(first_demo, *SHORT_DEMO, *ablation)
    rows = json.loads((first_demo / "ablation.json").read_text())
    assert [(row["train_size"], row["distillation"], row["seed"]) for row in rows] == [
        (500, True, 0), (500, False, 0), (2000, True, 0), (2000, False, 0)
    ]  # fmt: skip
    for row in rows:
        assert row["train_steps"] == 4 and 0 <= row["val_accuracy"] <= 1 and 0 <= row["test_accuracy"] <= 1
        assert [step for step, _ in row["val_curve"]] == [4]  # one evaluation of the final model
    with Image.open(first_demo / "ablation.png") as picture:
        assert picture.format == "PNG" and picture.width > picture.height > 300
    table = ablation_table(rows)
    assert table.count("\n") == 5 and "| 500 | no distillation | 1 |" in table


def test_the_committed_ablation_is_one_full_run_of_the_defaults_and_docs_show_its_table():
    defaults = parse_args(["--ablation"])
    rows = json.loads((REPO_ROOT / "docs" / "ablation.json").read_text())
    runs = {(row["train_size"], row["distillation"], row["seed"]) for row in rows}
    arms = (True, False)
    expected = {(size, distill, seed) for size in defaults.train_sizes for distill in arms for seed in defaults.seeds}
    assert len(rows) == len(runs) and runs == expected
    assert {row["train_steps"] for row in rows} == {defaults.ablation_steps}
    assert ablation_table(rows) in (REPO_ROOT / "docs" / "demo.md").read_text()
