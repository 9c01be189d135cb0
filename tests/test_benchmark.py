# Copyright 2026 The epmvg authors. Licensed under the Apache License, Version 2.0.
"""scripts/benchmark.py, run as the tool it is: its JSON, its references measured in the run, its refusals."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


# `make test` runs tests side by side (pytest-xdist): one worker runs this file, so the short run happens once
pytestmark = pytest.mark.xdist_group("benchmark")

BENCHMARK = Path(__file__).resolve().parents[1] / "scripts" / "benchmark.py"


def _benchmark(*arguments: str, cwd: Path) -> subprocess.CompletedProcess:
    environment = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.run(
        [sys.executable, str(BENCHMARK), *arguments], cwd=cwd, env=environment, capture_output=True, text=True
    )


@pytest.fixture(scope="module")
def short_run(tmp_path_factory) -> tuple[dict, str]:
    """A short benchmark: a tiny forward (no TransVG source given) and the trainer case with its plain loop."""
    folder = tmp_path_factory.mktemp("benchmark")
    completed = _benchmark(
        "--cases", "forward-b1-64,trainer_step", "--rounds", "1", "--repeats", "1", "--warmup", "0", "--no-flops",
        "--trainer-steps", "2", "--trainer-warmup", "1", "--output-json", "b.json", cwd=folder,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr[-3000:]
    return json.loads((folder / "b.json").read_text()), completed.stdout


@pytest.mark.slow
def test_the_trainer_case_has_its_plain_loop_measured_in_the_same_run(short_run):
    report, _ = short_run
    row = next(row for row in report["rows"] if row["case"] == "trainer_step")
    assert row["reference"] == "plain_loop"
    assert row["median_s"] > 0 and row["reference_median_s"] > 0
    assert row["ratio"] == pytest.approx(row["median_s"] / row["reference_median_s"])
    assert row["steps_per_s"] == pytest.approx(1 / row["median_s"])
    # both ran in processes of their own, in this run
    assert report["processes"]["plain_loop"]["times"] and report["processes"]["trainer_step"]["times"]
    assert [target["case"] for target in report["targets"]] == ["trainer_step"]


@pytest.mark.slow
def test_a_missing_transvg_source_is_reported_not_faked(short_run):
    report, stdout = short_run
    row = next(row for row in report["rows"] if row["case"] == "forward-b1-64")
    assert row["median_s"] > 0 and row["runs"] == 1
    assert "--transvg-source" in row["reference_skipped"]
    assert not {"reference", "reference_median_s", "ratio"} & row.keys()
    assert not any(name.startswith("transvg:") for name in report["processes"])
    assert "TransVG's code: skipped (no --transvg-source DIR" in stdout


def test_the_benchmark_lives_outside_the_installed_packages():
    import modeling_epmvg.commands

    assert not (Path(modeling_epmvg.commands.__file__).parent / "benchmark.py").exists()


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--transvg-source", "."], "is not a checkout of djiajunustc/TransVG (it lacks train.py"),
        (["--cases", "forward-b1-640+ckpt"], "train cases only"),
        (["--cases", "train-b8-640+fast"], "Unknown option"),
        (["--cases", "train-b8-650"], "multiple of 32"),
        (["--cases", "backward-b8-640"], "Unknown benchmark case"),
        (["--cases", "train-b8-640+live+cached"], "one teacher mode"),
        (["--cases", "train-b8-640+malloc+glibc"], "one allocator setting"),
        (["--cases", "transvg:train-b8-640+thp"], "TransVG's code runs at its defaults"),
        (["--cases", "plain_loop"], "are references, run beside their cases"),
    ],
)
def test_bad_arguments_are_explained_before_anything_runs(tmp_path, arguments, message):
    completed = _benchmark(*arguments, cwd=tmp_path)
    assert completed.returncode == 2
    assert message in completed.stderr
