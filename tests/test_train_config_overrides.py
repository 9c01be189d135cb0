# Copyright 2026 The epmvg authors. Licensed under the Apache License, Version 2.0.
"""`epmvg-train --config_overrides`: integers for float fields (the console script, run as users run it), refusals
named up front."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from modeling_epmvg import EpmVGConfig, EpmVGForVisualGrounding
from modeling_epmvg.commands.train import ModelArguments, build_model

from .conftest import REPO_ROOT, tiny_config
from .training_fixtures import train_arguments, write_training_setup


EPMVG_TRAIN = str(Path(sys.executable).parent / "epmvg-train")
CPU_ONLY = os.environ | {"CUDA_VISIBLE_DEVICES": "", "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}

# {case: (--config_overrides, words the error line must hold)}
REFUSED_OVERRIDES = {
    "heads that do not divide d_model": (
        '{"fusion_attention_heads": 3}',
        "`fusion_attention_heads` is 3: it must divide `d_model` (16)",
    ),
    "not JSON": ("{fusion_layers: 3}", "--config_overrides is not valid JSON"),
    "a fraction for an int field": ('{"fusion_layers": 2.5}', "Field 'fusion_layers' expected int, got float"),
    "an unknown field": ('{"fusion_layer": 3}', "unknown EpmVGConfig fields: 'fusion_layer' (did you mean"),
}


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> dict[str, str]:
    return write_training_setup(tmp_path_factory.mktemp("setup"), train_size=4, eval_size=2)


def epmvg_train(arguments: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [EPMVG_TRAIN, *arguments], cwd=REPO_ROOT, env=CPU_ONLY, capture_output=True, text=True, timeout=600
    )


@pytest.mark.slow
def test_an_integer_for_a_float_field_trains(setup, tmp_path):
    overrides = json.dumps({"giou_loss_coefficient": 2, "dropout": 0})
    completed = epmvg_train(train_arguments(setup, tmp_path, max_steps="1", config_overrides=overrides))
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert EpmVGConfig.from_pretrained(tmp_path).giou_loss_coefficient == 2


# the commands' error surface (modeling_epmvg/commands/cli.py) prints the ValueError as one line, exit status 1
# (epmvg-train's main in this process: the console script above runs the same main in its own)
@pytest.mark.parametrize("case", sorted(REFUSED_OVERRIDES))
def test_a_bad_override_is_refused_before_training_with_one_error_line_naming_it(
    setup, tmp_path, case, in_process_command
):
    overrides, words = REFUSED_OVERRIDES[case]
    completed = in_process_command("train", *train_arguments(setup, tmp_path, config_overrides=overrides))
    assert completed.returncode == 1
    stderr = completed.stderr
    # before it only the command's one-line CPU allocator notice
    first_line = [line for line in stderr.splitlines() if not line.startswith("epmvg: CPU run:")][0]
    assert first_line.startswith("epmvg-train: error: ") and words in first_line, stderr[-3000:]
    assert "Traceback" not in stderr
    assert not (tmp_path / "model.safetensors").exists()


def test_fine_tuning_a_checkpoint_applies_the_overrides_to_its_config_and_validates_them(tmp_path):
    saved = EpmVGForVisualGrounding(tiny_config())
    saved.save_pretrained(tmp_path)
    model = build_model(ModelArguments(model_name_or_path=str(tmp_path), config_overrides='{"dropout": 0}'))
    assert model.config.dropout == 0 and model.config.fusion_layers == saved.config.fusion_layers
    torch.testing.assert_close(model.state_dict(), saved.state_dict(), rtol=0, atol=0)
    # set after loading, as from_pretrained(**overrides) does, the heads would pass unchecked
    with pytest.raises(ValueError, match="`fusion_attention_heads` is 3: it must divide `d_model` \\(16\\)"):
        build_model(ModelArguments(model_name_or_path=str(tmp_path), config_overrides='{"fusion_attention_heads": 3}'))
