# Copyright 2026 The epmvg authors. Licensed under the Apache License, Version 2.0.
"""
The package installed as users install it (issue 23 item 3): README.md's `pip install` line into a fresh venv, not
editable (the `installed_venv` fixture, tests/installed_package.py), then every console script from that venv's bin/
on tiny data: 0 on success, 1 with one `epmvg-<name>: error: ...` line on a failure. The successful runs of the
console scripts README.md shows are its own commands, run from this venv by tests/test_readme_commands.py (epmvg-train
writing its model card among them); the rest run here.
"""

import subprocess
from pathlib import Path

import pytest
from PIL import Image

from .documented_commands import all_documented_commands
from .installed_package import run_python, site_packages
from .training_fixtures import train_arguments, write_training_setup


pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict[str, str]:
    """Tiny inputs the failing runs get past the first checks with: a training set-up, an image, a student config."""
    from .test_readme_commands import write_student_config

    folder = tmp_path_factory.mktemp("inputs")
    paths = write_training_setup(folder, train_size=2, eval_size=2)
    Image.new("RGB", (48, 40), (200, 30, 30)).save(folder / "scene.png")
    write_student_config(folder / "student")
    return paths | {name: str(folder / name) for name in ("scene.png", "student")}


def console_script(venv: Path, prog: str, *arguments: str, cwd: Path) -> subprocess.CompletedProcess:
    environment = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": str(cwd), "HF_HOME": str(cwd / "hf_home"),
                   "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "CUDA_VISIBLE_DEVICES": "",
                   "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}  # fmt: skip
    return subprocess.run(
        [str(venv / "bin" / prog), *arguments], cwd=cwd, env=environment, capture_output=True, text=True, timeout=600
    )


def test_the_package_is_installed_not_linked_to_the_repository(installed_venv, tmp_path):
    code = "import modeling_epmvg, processing; print(modeling_epmvg.__file__); print(processing.__file__)"
    purelib = site_packages(installed_venv)
    for path in run_python(installed_venv / "bin" / "python", code, tmp_path).split():
        assert Path(path).is_relative_to(purelib), path


def successful_runs() -> dict[str, list[str]]:
    """{console script: arguments of a run that must exit 0}, for those README.md does not run."""
    return {"epmvg-demo": ["--help"]}  # a full run is `make demo`; its stages are the other commands


def documented_console_scripts() -> set[str]:
    """The console scripts README.md's commands run (from the installed venv, in tests/test_readme_commands.py)."""
    commands = [c for c in all_documented_commands() if c.source.startswith("README.md")]
    return {c.words[0] for c in commands if c.words[0].startswith("epmvg-")}


def failing_runs(data: dict[str, str], missing: str) -> dict[str, list[str]]:
    """{console script: arguments that must fail with one error line}."""
    return {
        "epmvg-train": train_arguments(data, Path(missing), dataset_name=missing),
        "epmvg-evaluate": ["--model", missing, "--dataset", data["data"]],
        "epmvg-predict": [missing, "--image", data["scene.png"], "--expression", "the dog"],
        "epmvg-export-onnx": [missing, missing + "-onnx"],
        "epmvg-convert-transvg": [missing + ".pth", missing],
        "epmvg-synthetic-data": ["--output", missing, "--min_objects", "5", "--max_objects", "2"],
        "epmvg-pretrain-teacher": ["--output_dir", missing, "--captions", missing],
        "epmvg-pretrain-visual": ["--dataset", missing, "--config_name", data["student"], "--output_dir", missing],
        "epmvg-app": ["--model", missing],
        "epmvg-demo": ["--image-size", "3", "--output-dir", missing],
    }


def console_scripts() -> list[str]:
    from .test_command_line import console_scripts as scripts

    return sorted(scripts())


def test_every_console_script_is_covered(data, tmp_path):
    assert set(successful_runs()) | documented_console_scripts() == set(console_scripts())
    assert set(failing_runs(data, str(tmp_path))) == set(console_scripts())


@pytest.mark.parametrize("prog", sorted(successful_runs()))
def test_console_script_exits_zero_on_success(installed_venv, tmp_path, prog):
    completed = console_script(installed_venv, prog, *successful_runs()[prog], cwd=tmp_path)
    assert completed.returncode == 0, completed.stderr[-4000:]


@pytest.mark.parametrize("prog", console_scripts())
def test_console_script_fails_with_one_error_line(installed_venv, data, tmp_path, prog):
    arguments = failing_runs(data, str(tmp_path / "missing"))[prog]
    completed = console_script(installed_venv, prog, *arguments, cwd=tmp_path)
    assert completed.returncode == 1, completed.stderr[-4000:]
    assert "Traceback" not in completed.stderr, completed.stderr[-4000:]
    errors = [line for line in completed.stderr.splitlines() if line.startswith(f"{prog}: error: ")]
    assert len(errors) == 1, completed.stderr[-4000:]
