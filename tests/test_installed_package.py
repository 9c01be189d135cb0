# Copyright 2026 The epmvg authors. Licensed under the Apache License, Version 2.0.
"""
The package installed as users install it (issue 23 item 3): README.md's `pip install` line, run from a copy of the
repository into a fresh venv (not editable), then every console script from that venv's bin/, on tiny data: 0 on
success, 1 with one `epmvg-<name>: error: ...` line on a failure. The venv reuses the test environment's
dependencies through a .pth file, so nothing is downloaded (`--no-deps --no-build-isolation --no-index`).
"""

import json
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
import torch
from PIL import Image

from .conftest import REPO_ROOT
from .documented_commands import documented_commands
from .training_fixtures import train_arguments, write_training_setup


pytestmark = pytest.mark.slow

# the offline additions to README.md's line: the dependencies come from the test environment, nothing from an index
OFFLINE_INSTALL = ["--no-deps", "--no-build-isolation", "--no-index", "--ignore-installed"]


def readme_installs() -> list[tuple[str, ...]]:
    """The `pip install` commands of README.md."""
    return [c.words for c in documented_commands(REPO_ROOT / "README.md") if c.words[:2] == ("pip", "install")]


def repository_copy(destination: Path) -> Path:
    """The working tree as a clone has it: tracked and untracked files that git does not ignore."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=REPO_ROOT, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    for name in filter(None, listed.split("\0")):
        source = REPO_ROOT / name
        if source.is_file():
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination / name)
    return destination


@pytest.fixture(scope="module")
def venv(tmp_path_factory) -> Path:
    """A fresh venv holding the package installed from README.md's line; returns its root."""
    root = tmp_path_factory.mktemp("installed")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True)
    python = venv / "bin" / "python"
    purelib = site_packages(venv)
    # after the venv's own site-packages: the installed package comes first, the test environment's libraries next
    (purelib / "test_environment.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    clone = repository_copy(root / "clone")
    assert readme_installs(), "README.md shows no pip install line"
    for words in readme_installs():
        completed = subprocess.run(
            [str(python), "-m", *words, *OFFLINE_INSTALL], cwd=clone, capture_output=True, text=True, timeout=600
        )
        assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    shutil.rmtree(clone)  # the package runs from site-packages only
    return venv


def site_packages(venv: Path) -> Path:
    return Path(run_python(venv / "bin" / "python", "import sysconfig; print(sysconfig.get_paths()['purelib'])", venv))


def run_python(python: Path, code: str, cwd: Path) -> str:
    completed = subprocess.run([str(python), "-c", code], cwd=cwd, capture_output=True, text=True, check=True)
    return completed.stdout.strip()


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict[str, str]:
    """Tiny inputs: a training set-up, an image, a TransVG checkpoint, a synthetic benchmark and a student config."""
    from .test_convert_transvg import TRANSVG_ARGS, make_transvg_state_dict
    from .test_readme_commands import write_captions, write_student_config, write_synthetic

    folder = tmp_path_factory.mktemp("inputs")
    paths = write_training_setup(folder, train_size=2, eval_size=2)
    Image.new("RGB", (48, 40), (200, 30, 30)).save(folder / "scene.png")
    torch.save({"model": make_transvg_state_dict(), "args": TRANSVG_ARGS}, folder / "transvg.pth")
    write_synthetic(folder / "synthetic")
    write_captions(folder / "captions")
    write_student_config(folder / "student")
    names = ("scene.png", "transvg.pth", "synthetic", "captions", "student")
    return paths | {name: str(folder / name) for name in names} | {"root": str(folder)}


def console_script(venv: Path, prog: str, *arguments: str, cwd: Path) -> subprocess.CompletedProcess:
    environment = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": str(cwd), "HF_HOME": str(cwd / "hf_home"),
                   "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "CUDA_VISIBLE_DEVICES": "",
                   "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}  # fmt: skip
    return subprocess.run(
        [str(venv / "bin" / prog), *arguments], cwd=cwd, env=environment, capture_output=True, text=True, timeout=600
    )


def test_the_package_is_installed_not_linked_to_the_repository(venv, tmp_path):
    code = "import modeling_epmvg, processing; print(modeling_epmvg.__file__); print(processing.__file__)"
    purelib = site_packages(venv)
    for path in run_python(venv / "bin" / "python", code, tmp_path).split():
        assert Path(path).is_relative_to(purelib), path


@pytest.fixture(scope="module")
def trained(venv, data, tmp_path_factory) -> Path:
    """epmvg-train from the installed venv, one step; its model folder."""
    output = tmp_path_factory.mktemp("trained") / "model"
    arguments = train_arguments(data, output, max_steps="1")
    completed = console_script(venv, "epmvg-train", *arguments, cwd=output.parent)
    assert completed.returncode == 0, completed.stderr[-4000:]
    return output


def test_epmvg_train_trains_and_writes_its_model_card(trained):
    card = (trained / "README.md").read_text()
    assert "EpmVG" in card and (trained / "model.safetensors").is_file()


def successful_runs(data: dict[str, str], model: Path, out: Path) -> dict[str, list[str]]:
    """{console script: arguments of a run that must exit 0} (epmvg-train runs in its fixture)."""
    return {
        "epmvg-evaluate": ["--model", str(model), "--dataset", data["data"], "--splits", "val",
                           "--output", str(out / "eval.json")],
        "epmvg-predict": [str(model), "--image", data["scene.png"], "--expression", "the red circle",
                          "--output_dir", str(out / "predictions")],
        "epmvg-export-onnx": [str(model), str(out / "onnx")],
        "epmvg-convert-transvg": [data["transvg.pth"], str(out / "converted"), "--tokenizer", data["tokenizer"]],
        "epmvg-synthetic-data": ["--output", str(out / "synthetic"), "--num_train", "4", "--num_val", "2",
                                 "--num_test", "2"],
        "epmvg-pretrain-teacher": ["--captions", data["captions"], "--output_dir", str(out / "teacher"),
                                   "--max_steps", "1", "--batch_size", "4", "--image_size", "32"],
        "epmvg-pretrain-visual": ["--dataset", data["synthetic"], "--config_name", data["student"],
                                  "--output_dir", str(out / "visual"), "--max_steps", "1", "--batch_size", "2"],
        "epmvg-app": ["--model", str(model), "--write_space", str(out / "space")],
        "epmvg-demo": ["--help"],  # a full run is `make demo`; its stages are the commands above
    }  # fmt: skip


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
    assert set(successful_runs(data, tmp_path, tmp_path)) | {"epmvg-train"} == set(console_scripts())
    assert set(failing_runs(data, str(tmp_path))) == set(console_scripts())


@pytest.mark.parametrize("prog", [name for name in console_scripts() if name != "epmvg-train"])
def test_console_script_exits_zero_on_success(venv, data, trained, tmp_path, prog):
    completed = console_script(venv, prog, *successful_runs(data, trained, tmp_path)[prog], cwd=tmp_path)
    assert completed.returncode == 0, completed.stderr[-4000:]
    if prog == "epmvg-evaluate":
        assert json.loads((tmp_path / "eval.json").read_text())["metrics"]["val"]["num_examples"] == 2


@pytest.mark.parametrize("prog", console_scripts())
def test_console_script_fails_with_one_error_line(venv, data, tmp_path, prog):
    completed = console_script(venv, prog, *failing_runs(data, str(tmp_path / "missing"))[prog], cwd=tmp_path)
    assert completed.returncode == 1, completed.stderr[-4000:]
    assert "Traceback" not in completed.stderr, completed.stderr[-4000:]
    errors = [line for line in completed.stderr.splitlines() if line.startswith(f"{prog}: error: ")]
    assert len(errors) == 1, completed.stderr[-4000:]
