# Copyright 2026 The epmvg authors. Licensed under the Apache License, Version 2.0.
"""
The command surface: every console script is a `main(argv) -> int` in modeling_epmvg/commands with a thin launcher in
scripts/, accepts both flag spellings, and reports an expected failure as `<command>: error: <message>` with exit
status 1 (2 for a usage error) and no traceback, unless --debug asks for it. Each command's `main` runs in this
process, as its console script calls it (`sys.exit(main())`); one module and one launcher run as their own processes,
and tests/test_installed_package.py runs every console script of an installed copy.
"""

import configparser
import os
import subprocess
import sys

import pytest
from transformers import BertConfig, BertModel

from modeling_epmvg.commands.cli import EpmVGArgumentParser, EpmVGUsageError, run_command
from modeling_epmvg.commands.demo import check_stage

from .conftest import REPO_ROOT, tiny_tokenizer
from .training_fixtures import tiny_grounding_split, train_arguments, write_training_setup


def console_scripts() -> dict[str, str]:
    """{console script: module} from setup.cfg."""
    parser = configparser.ConfigParser()
    parser.read(REPO_ROOT / "setup.cfg")
    lines = parser["options.entry_points"]["console_scripts"].strip().splitlines()
    return {name.strip(): target.strip() for name, target in (line.split("=") for line in lines)}


COMMANDS = console_scripts()
# scripts/evaluate.py would shadow the `evaluate` library for `python scripts/...`: its launcher has another name
LAUNCHER_NAMES = {"evaluate": "run_evaluation"}
CPU_ONLY = os.environ | {"CUDA_VISIBLE_DEVICES": "", "TOKENIZERS_PARALLELISM": "false"}


def run(*command: str, cwd=REPO_ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *command], cwd=cwd, env=CPU_ONLY, capture_output=True, text=True, timeout=600
    )


def error_line(completed: subprocess.CompletedProcess, prog: str) -> str:
    """The command's one error line; there is no traceback."""
    assert "Traceback" not in completed.stderr, completed.stderr[-3000:]
    lines = [line for line in completed.stderr.splitlines() if line.startswith(f"{prog}: error: ")]
    assert len(lines) == 1, completed.stderr[-3000:]
    return lines[0]


def test_every_console_script_is_a_main_in_the_commands_package_with_one_launcher():
    assert {"epmvg-train", "epmvg-evaluate", "epmvg-predict", "epmvg-demo", "epmvg-app"} <= set(COMMANDS)
    for prog, target in COMMANDS.items():
        module, function = target.split(":")
        package, name = module.rsplit(".", 1)
        assert package == "modeling_epmvg.commands" and function == "main", prog
        assert prog == "epmvg-" + name.replace("_", "-"), prog
        launcher = (REPO_ROOT / "scripts" / f"{LAUNCHER_NAMES.get(name, name)}.py").read_text()
        assert f"from {module} import main" in launcher and "sys.exit(main())" in launcher, prog


@pytest.mark.parametrize("prog", sorted(COMMANDS))
def test_help_exits_zero_and_every_module_runs_its_main(prog, in_process_command):
    name = COMMANDS[prog].split(":")[0].rsplit(".", 1)[1]
    completed = in_process_command(name, "--help")
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert f"usage: {prog}" in completed.stdout and "--debug" in completed.stdout
    source = (REPO_ROOT / "modeling_epmvg" / "commands" / f"{name}.py").read_text()
    assert source.endswith('\n\nif __name__ == "__main__":\n    sys.exit(main())\n'), prog  # `python -m` runs main


@pytest.mark.slow
def test_a_module_and_a_launcher_run_as_their_own_processes():
    as_module = run("-m", "modeling_epmvg.commands.train", "--help")
    assert as_module.returncode == 0 and "usage: epmvg-train" in as_module.stdout, as_module.stderr[-3000:]
    launcher = run("scripts/predict.py", "--help")
    assert launcher.returncode == 0 and "usage: epmvg-predict" in launcher.stdout, launcher.stderr[-3000:]


def test_both_spellings_of_a_flag_are_one_option():
    parser = EpmVGArgumentParser(prog="x")
    parser.add_argument("--batch_size", type=int, default=1)
    parser.add_argument("--output-dir")
    args = parser.parse_args(["--batch-size", "3", "--output_dir", "out"])
    assert (args.batch_size, args.output_dir) == (3, "out")


def test_the_runner_turns_expected_failures_into_one_line_and_keeps_unexpected_tracebacks(capsys, monkeypatch):
    monkeypatch.delenv("EPMVG_DEBUG", raising=False)

    def fails(error):
        def body(argv):
            raise error

        return body

    assert run_command("epmvg-x", fails(ValueError("bad box: use pixels")), []) == 1
    assert capsys.readouterr().err == "epmvg-x: error: bad box: use pixels\n"
    assert run_command("epmvg-x", fails(EpmVGUsageError("--batch_size must be at least 1")), []) == 2
    assert run_command("epmvg-x", fails(FileNotFoundError("no such folder")), []) == 1
    assert run_command("epmvg-x", lambda argv: None, []) == 0
    with pytest.raises(KeyError):
        run_command("epmvg-x", fails(KeyError("a bug")), [])
    capsys.readouterr()
    assert run_command("epmvg-x", fails(ValueError("shown")), ["--debug"]) == 1
    error = capsys.readouterr().err
    assert error.startswith("Traceback") and error.endswith("epmvg-x: error: shown\n")


def test_a_failed_demo_stage_names_the_stage_and_its_command():
    check_stage("train", ["python", "-m", "modeling_epmvg.commands.train", "--max_steps", "1"], 0)
    with pytest.raises(ValueError, match=r"the train stage failed \(exit status 1; .*commands.train --max_steps 1"):
        check_stage("train", ["python", "-m", "modeling_epmvg.commands.train", "--max_steps", "1"], 1)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    folder = tmp_path_factory.mktemp("setup")
    paths = write_training_setup(folder, train_size=4, eval_size=2)
    bert = BertConfig(vocab_size=40, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32)
    BertModel(bert).save_pretrained(folder / "bert")
    paths["bert"] = str(folder / "bert")
    return paths


def bad_training_inputs(setup, tmp_path) -> dict[str, tuple[list[str], str]]:
    """{case: (epmvg-train arguments, words of the error line)}."""
    empty = tiny_grounding_split("train", 2, 0)
    empty = empty.map(lambda row: {"expression": "  "})
    empty.save_to_disk(tmp_path / "empty")
    large = tiny_tokenizer()
    large.add_tokens([f"word{index}" for index in range(10)])
    large.save_pretrained(tmp_path / "large_tokenizer")
    out = tmp_path / "out"
    return {
        "empty expression": (
            train_arguments(setup, out, dataset_name=str(tmp_path / "empty"), train_split="train", eval_split="none"),
            "empty",
        ),
        "oversized tokenizer": (
            train_arguments(setup, out, tokenizer_name_or_path=str(tmp_path / "large_tokenizer")),
            "tokens but the model's text encoder embeds only",
        ),
        "a BERT folder as the model": (
            train_arguments(setup, out, model_name_or_path=setup["bert"]),
            "holds a 'bert' checkpoint, not an EpmVG one",
        ),
        "a missing resume folder": (
            train_arguments(setup, out, resume_from_checkpoint=str(tmp_path / "checkpoint-7")),
            "is not a checkpoint folder",
        ),
    }


@pytest.mark.parametrize(
    "case", ["empty expression", "oversized tokenizer", "a BERT folder as the model", "a missing resume folder"]
)
def test_epmvg_train_refuses_bad_input_with_one_error_line(setup, tmp_path, case, in_process_command):
    arguments, words = bad_training_inputs(setup, tmp_path)[case]
    completed = in_process_command("train", *arguments)
    assert completed.returncode == 1, completed.stderr[-3000:]
    assert words in error_line(completed, "epmvg-train")
    if case == "a missing resume folder":  # found before any data is read: the quickest case to rerun
        with_debug = in_process_command("train", *arguments, "--debug")
        assert with_debug.returncode == 1 and "Traceback" in with_debug.stderr


def test_every_other_command_refuses_a_missing_input_with_one_error_line(tmp_path, in_process_command):
    missing = str(tmp_path / "missing")
    cases = {
        "evaluate": ["--model", missing, "--dataset", missing],
        "predict": [missing, "--image", missing, "--expression", "the dog"],
        "convert_transvg": [missing + ".pth", str(tmp_path / "out")],
        "export_onnx": [missing, str(tmp_path / "out")],
        "pretrain_teacher": ["--output_dir", str(tmp_path / "teacher"), "--captions", missing],
        "pretrain_visual": ["--dataset", missing, "--config_name", missing, "--output_dir", str(tmp_path / "v")],
        "synthetic_data": ["--output", str(tmp_path / "data"), "--min_objects", "5", "--max_objects", "2"],
        "app": ["--model", missing],
    }
    for name, arguments in cases.items():
        completed = in_process_command(name, *arguments)
        assert completed.returncode == 1, (name, completed.stderr[-3000:])
        error_line(completed, "epmvg-" + name.replace("_", "-"))
    usage = in_process_command("predict", missing, "--image", missing, "--expression", "a", "--batch-size", "0")
    assert usage.returncode == 2 and "--batch_size must be at least 1" in error_line(usage, "epmvg-predict")
