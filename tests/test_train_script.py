"""scripts/train.py end to end: a plain run, a 2-process accelerate run, and a run killed and resumed."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from huggingface_hub import ModelCard
from safetensors.torch import load_file
from transformers import AutoModel, AutoProcessor, pipeline

from modeling_epmvg import EpmVGForVisualGrounding
from modeling_epmvg.commands.train import last_complete_checkpoint, main
from processing import EpmVGProcessor, VisualGroundingPipeline

from .conftest import REPO_ROOT
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


@pytest.mark.slow
def test_two_processes_end_with_identical_students_and_an_unwrapped_teacher(setup, tmp_path):
    command = [
        sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
        "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
        str(REPO_ROOT / "tests" / "ddp_probe.py"), *train_arguments(setup, tmp_path),
    ]  # fmt: skip
    completed = subprocess.run(command, env=CPU_ONLY, capture_output=True, text=True, timeout=600, cwd=REPO_ROOT)
    assert completed.returncode == 0, completed.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{rank}.json").read_text()) for rank in (0, 1)]
    assert all(report["world_size"] == 2 and report["steps"] == 4 for report in ranks)
    assert ranks[0]["student"] == ranks[1]["student"]
    assert ranks[0]["student_wrapper"] == "DistributedDataParallel"
    assert ranks[0]["teacher_wrapper"] == "CLIPModel"


def run_training(arguments: list[str]) -> subprocess.Popen:
    command = [sys.executable, str(REPO_ROOT / "scripts" / "train.py"), *arguments]
    return subprocess.Popen(command, env=CPU_ONLY, cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


@pytest.mark.slow
def test_a_run_killed_after_a_checkpoint_resumes_to_the_uninterrupted_weights(setup, tmp_path):
    # dropout on: the restored RNG state matters as much as the optimizer state
    arguments = dict(max_steps="6", save_strategy="steps", save_steps="2", config_overrides="{}")
    reference = run_training(train_arguments(setup, tmp_path / "reference", **arguments))
    killed = run_training(train_arguments(setup, tmp_path / "killed", **arguments))
    first_checkpoint = tmp_path / "killed" / "checkpoint-2" / "trainer_state.json"
    deadline = time.time() + 300
    while not first_checkpoint.exists() and killed.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    assert first_checkpoint.exists(), "no checkpoint was written before the kill"
    assert not (tmp_path / "killed" / "model.safetensors").exists(), "the run finished before it was killed"

    resumed = run_training(train_arguments(setup, tmp_path / "killed", resume_from_checkpoint="last", **arguments))
    for process in (reference, resumed):
        _, errors = process.communicate(timeout=600)
        assert process.returncode == 0, errors.decode()[-3000:]
    expected = load_file(tmp_path / "reference" / "model.safetensors")
    actual = load_file(tmp_path / "killed" / "model.safetensors")
    for name, tensor in expected.items():
        torch.testing.assert_close(actual[name], tensor, atol=1e-6, rtol=0, msg=name)


def test_resuming_from_last_skips_a_checkpoint_cut_off_while_saving(tmp_path):
    for step, complete in ((2, True), (4, False), (10, True), (12, False)):
        checkpoint = tmp_path / f"checkpoint-{step}"
        checkpoint.mkdir()
        (checkpoint / "model.safetensors").write_bytes(b"")
        if complete:
            (checkpoint / "trainer_state.json").write_text("{}")
    assert last_complete_checkpoint(str(tmp_path)) == str(tmp_path / "checkpoint-10")
    assert last_complete_checkpoint(str(tmp_path / "missing")) is None
