# Copyright 2026 The epmvg authors. Licensed under the Apache License, Version 2.0.
"""scripts/train.py end to end: a plain run, a 2-process accelerate run, and runs killed and resumed."""

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import psutil
import pytest
import torch
from huggingface_hub import ModelCard
from safetensors.torch import load_file
from transformers import AutoModel, AutoProcessor, pipeline

from modeling_epmvg import EpmVGForVisualGrounding
from modeling_epmvg.commands.train import last_complete_checkpoint, main
from processing import EpmVGProcessor, VisualGroundingPipeline

from .conftest import REPO_ROOT, cpu_launch
from .test_pipeline import as_list, make_image, remote_pipeline_boxes
from .training_fixtures import train_arguments, write_training_setup


CPU_ONLY = dict(os.environ, CUDA_VISIBLE_DEVICES="", TOKENIZERS_PARALLELISM="false", OMP_NUM_THREADS="1")


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> dict[str, str]:
    return write_training_setup(tmp_path_factory.mktemp("setup"))


def test_a_plain_run_trains_evaluates_and_saves_model_processor_and_card(setup, tmp_path):
    main(train_arguments(setup, tmp_path, eval_strategy="steps", eval_steps="2", augment="true"))

    assert type(AutoModel.from_pretrained(tmp_path)) is EpmVGForVisualGrounding
    assert type(AutoProcessor.from_pretrained(tmp_path)) is EpmVGProcessor
    results = json.loads((tmp_path / "all_results.json").read_text())
    assert 0 <= results["eval_accuracy"] <= 1 and "eval_loss_distill_image" in results
    card = ModelCard.load(tmp_path / "README.md")
    assert card.data.library_name == "transformers"
    assert card.data.eval_results[0].metric_value == round(100 * results["eval_accuracy"], 2)
    assert set(load_file(tmp_path / "model.safetensors")) == set(
        EpmVGForVisualGrounding(EpmVGForVisualGrounding.config_class.from_pretrained(tmp_path)).state_dict()
    )


def test_the_trained_folder_runs_as_the_visual_grounding_pipeline_where_the_package_is_not_importable(setup, tmp_path):
    main(train_arguments(setup, tmp_path / "out", max_steps="1"))

    grounder = pipeline("visual-grounding", model=str(tmp_path / "out"), pipeline_class=VisualGroundingPipeline)
    image, expressions = make_image(40, 64, seed=3), ["the red circle", "a big blue star"]
    expected = [as_list(result) for result in grounder(image, expressions)]
    np.testing.assert_allclose(
        remote_pipeline_boxes(tmp_path / "out", image, expressions, tmp_path), expected, atol=1e-4
    )


def test_a_run_whose_loss_turns_non_finite_exits_non_zero_naming_it_and_writes_no_model(setup, tmp_path, capsys):
    arguments = train_arguments(setup, tmp_path, learning_rate="1e6")
    assert main(arguments) == 1
    message = capsys.readouterr().err
    assert "epmvg-train: error: Training stopped at step" in message and "loss is not finite" in message
    assert not (tmp_path / "model.safetensors").exists()


def test_distillation_ablations_are_plain_flags(setup, tmp_path):
    main(train_arguments(setup, tmp_path, distillation_image_coefficient="0", distillation_loss="l1"))

    config = EpmVGForVisualGrounding.config_class.from_pretrained(tmp_path)
    assert config.distillation_image_coefficient == 0 and config.distillation_loss == "l1"
    results = json.loads((tmp_path / "all_results.json").read_text())
    assert "eval_loss_distill_image" not in results and results["eval_loss_distill_text"] > 0


def test_a_run_with_cached_teacher_embeddings_evaluates_with_the_distillation_terms(setup, tmp_path):
    main(train_arguments(setup, tmp_path, eval_strategy="steps", eval_steps="2", cache_teacher_embeddings="true"))

    results = json.loads((tmp_path / "all_results.json").read_text())
    assert results["eval_loss_distill_image"] > 0 and results["eval_loss_distill_text"] > 0


def test_cached_text_states_train_the_same_student_as_the_frozen_text_encoder_run_at_every_step(setup, tmp_path):
    config = EpmVGForVisualGrounding.config_class.from_pretrained(setup["config"])
    config.text_config.hidden_dropout_prob = config.text_config.attention_probs_dropout_prob = 0.0
    config.save_pretrained(tmp_path / "config")
    frozen = dict(config_name=str(tmp_path / "config"), freeze_text_encoder="true")
    main(train_arguments(setup, tmp_path / "live", **frozen))
    main(train_arguments(setup, tmp_path / "cached", cache_text_hidden_states="true", **frozen))

    live, cached = (load_file(tmp_path / run / "model.safetensors") for run in ("live", "cached"))
    for name, weight in live.items():
        torch.testing.assert_close(cached[name], weight, rtol=1e-4, atol=1e-5, msg=name)


@pytest.mark.parametrize(
    "flags, named",
    [
        (dict(freeze_text_encoder="false"), "needs --freeze_text_encoder true"),
        (dict(freeze_text_encoder="true", augment="true"), "needs --augment false: the augmentation's flip"),
    ],
)
def test_cached_text_states_are_refused_where_they_would_not_be_the_encoders(setup, tmp_path, capsys, flags, named):
    assert main(train_arguments(setup, tmp_path, cache_text_hidden_states="true", **flags)) == 1
    assert named in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.xdist_group("several_training_processes")
def test_two_processes_end_with_identical_students_and_an_unwrapped_teacher(setup, tmp_path):
    command = [*cpu_launch(), str(REPO_ROOT / "tests" / "ddp_probe.py"), *train_arguments(setup, tmp_path)]
    completed = subprocess.run(command, env=CPU_ONLY, capture_output=True, text=True, timeout=600, cwd=REPO_ROOT)
    assert completed.returncode == 0, completed.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{rank}.json").read_text()) for rank in (0, 1)]
    assert all(report["world_size"] == 2 and report["steps"] == 4 for report in ranks)
    assert ranks[0]["student"] == ranks[1]["student"]
    assert ranks[0]["student_wrapper"] == "DistributedDataParallel"
    assert ranks[0]["teacher_wrapper"] == "CLIPModel"


def start_training(arguments: list[str], output_dir: Path, processes: int = 1) -> subprocess.Popen:
    """epmvg-train (under `accelerate launch` for several processes), logging to a file."""
    launcher = cpu_launch(processes) if processes > 1 else [sys.executable]
    command = [*launcher, str(REPO_ROOT / "scripts" / "train.py")]
    output_dir.mkdir(parents=True, exist_ok=True)
    log = open(output_dir.parent / f"{output_dir.name}.log", "ab")  # a file: a full pipe would stall the run
    return subprocess.Popen([*command, *arguments], env=CPU_ONLY, cwd=REPO_ROOT, stdout=log, stderr=log)


def finish(process: subprocess.Popen, output_dir: Path) -> dict[str, torch.Tensor]:
    """Waits for a run to end, checks it succeeded, and returns its final weights."""
    process.wait(timeout=600)
    log = (output_dir.parent / f"{output_dir.name}.log").read_text()
    assert process.returncode == 0, log[-3000:]
    return load_file(output_dir / "model.safetensors")


def kill_after_checkpoint(process: subprocess.Popen, checkpoint: Path, max_steps: int) -> None:
    """kill -9 of the run, every process of it, as soon as `checkpoint` is written."""
    written = checkpoint / "trainer_state.json"
    deadline = time.time() + 300
    while not written.exists() and process.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    # the launcher's workers and the DataLoader's run in sessions of their own: each is killed by its id
    for member in [*psutil.Process(process.pid).children(recursive=True), psutil.Process(process.pid)]:
        with contextlib.suppress(psutil.NoSuchProcess):
            member.send_signal(signal.SIGKILL)
    process.wait()
    assert written.exists(), "no checkpoint was written before the kill"
    last = last_complete_checkpoint(str(checkpoint.parent))
    assert last != str(checkpoint.parent / f"checkpoint-{max_steps}"), "the run finished before it was killed"


def assert_killed_runs_resume_to_the_uninterrupted_weights(
    setup, tmp_path, arguments: dict, checkpoint: str, variants: dict[str, dict], processes: int = 1
) -> None:
    """
    Runs `arguments` uninterrupted and, side by side, once per variant (extra arguments): killed with -9 once
    `checkpoint` is written, then resumed with `--resume_from_checkpoint last`; every run ends with the same weights.
    """
    reference_dir = tmp_path / "reference"
    reference = start_training(train_arguments(setup, reference_dir, **arguments), reference_dir, processes)
    resumed = {}
    for name, extra in variants.items():
        # one variant at a time: a run started beside the one being watched could finish before its own kill
        run_arguments = train_arguments(setup, tmp_path / name, **arguments, **extra)
        killed = start_training(run_arguments, tmp_path / name, processes)
        kill_after_checkpoint(killed, tmp_path / name / checkpoint, int(arguments["max_steps"]))
        run_arguments = train_arguments(setup, tmp_path / name, resume_from_checkpoint="last", **arguments, **extra)
        resumed[name] = start_training(run_arguments, tmp_path / name, processes)
    expected = finish(reference, reference_dir)
    for name, process in resumed.items():
        actual = finish(process, tmp_path / name)
        for tensor_name, tensor in expected.items():
            torch.testing.assert_close(actual[tensor_name], tensor, atol=0, rtol=0, msg=f"{name}: {tensor_name}")


@pytest.mark.slow
@pytest.mark.xdist_group("several_training_processes")
def test_an_augmented_run_killed_inside_an_epoch_resumes_to_the_uninterrupted_weights_with_or_without_workers(
    setup, tmp_path
):
    # dropout on (the restored RNG state matters as much as the optimizer state); 4 steps an epoch: killed in the
    # first epoch, resumed through the second, which augments anew; the workers' run is compared with the main
    # process's
    arguments = dict(max_steps="6", save_strategy="steps", save_steps="2", config_overrides="{}", augment="true")
    variants = {"no_workers": {}, "one_worker": {"dataloader_num_workers": "1"}}
    assert_killed_runs_resume_to_the_uninterrupted_weights(setup, tmp_path, arguments, "checkpoint-2", variants)


@pytest.mark.slow
@pytest.mark.xdist_group("several_training_processes")
def test_an_augmented_two_process_run_killed_after_a_checkpoint_resumes_to_the_uninterrupted_weights(setup, tmp_path):
    # 2 steps an epoch on 2 processes: killed in the first epoch, resumed through the second
    arguments = dict(max_steps="4", save_strategy="steps", save_steps="1", config_overrides="{}", augment="true")
    assert_killed_runs_resume_to_the_uninterrupted_weights(
        setup, tmp_path, arguments, "checkpoint-1", {"killed": {}}, processes=2
    )


def test_resuming_from_last_skips_a_checkpoint_cut_off_while_saving(tmp_path):
    for step, state in ((2, "{}"), (4, None), (10, '{"global_step": 10}'), (12, '{"global_st'), (14, "")):
        checkpoint = tmp_path / f"checkpoint-{step}"
        checkpoint.mkdir()
        (checkpoint / "model.safetensors").write_bytes(b"")
        if state is not None:  # a kill can cut the state file off while the Trainer writes it
            (checkpoint / "trainer_state.json").write_text(state)
    assert last_complete_checkpoint(str(tmp_path)) == str(tmp_path / "checkpoint-10")
    assert last_complete_checkpoint(str(tmp_path / "missing")) is None


def test_resuming_a_distributed_run_from_last_skips_a_checkpoint_without_every_process_rng_state(tmp_path):
    for step, ranks in ((2, (0, 1)), (4, (0,)), (6, ())):  # 6: saved with save_only_model
        checkpoint = tmp_path / f"checkpoint-{step}"
        checkpoint.mkdir()
        (checkpoint / "trainer_state.json").write_text("{}")
        for rank in ranks:
            (checkpoint / f"rng_state_{rank}.pth").write_bytes(b"")
    assert last_complete_checkpoint(str(tmp_path), world_size=2) == str(tmp_path / "checkpoint-6")
    (tmp_path / "checkpoint-6" / "trainer_state.json").unlink()
    assert last_complete_checkpoint(str(tmp_path), world_size=2) == str(tmp_path / "checkpoint-2")
    assert last_complete_checkpoint(str(tmp_path), world_size=1) == str(tmp_path / "checkpoint-4")
