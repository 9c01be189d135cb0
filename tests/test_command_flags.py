# Copyright 2026 The epmvg authors. Licensed under the Apache License, Version 2.0.
"""epmvg-train and epmvg-evaluate read data with the same flags, and refuse bad arguments naming them."""

import pytest
from transformers import BertConfig, BertModel, HfArgumentParser

from modeling_epmvg.commands import evaluate
from modeling_epmvg.commands.train import DataArguments, ModelArguments
from modeling_epmvg.trainer_epmvg import EpmVGTrainingArguments
from processing.data.sources import GroundingSourceArguments


DATA_FLAGS = ["--image-root", "img", "--split-by", "umd", "--skip-invalid", "--verify-images", "--allow-pickle"]
DATA_FLAGS += ["--no-truncate-boxes", "--cache-dir", "cache"]


def test_train_and_evaluate_accept_the_same_data_flags_with_the_same_meaning(tmp_path):
    parser = HfArgumentParser((ModelArguments, DataArguments, EpmVGTrainingArguments))
    _, data_args, _ = parser.parse_args_into_dataclasses(
        args=["--dataset_name", "d", "--output_dir", str(tmp_path), *DATA_FLAGS]
    )
    evaluate_args = evaluate.parse_args(["--model", "m", "--dataset", "d", *DATA_FLAGS])
    expected = dict(image_root="img", split_by="umd", skip_invalid=True, verify_images=True, allow_pickle=True)
    expected |= dict(truncate_boxes=False, cache_dir="cache")
    assert GroundingSourceArguments.load_kwargs(data_args) == expected
    assert GroundingSourceArguments.load_kwargs(evaluate_args) == expected
    # the underscore spelling works too, as the train script's own error message asks for it
    _, data_args, _ = parser.parse_args_into_dataclasses(
        args=["--dataset_name", "d", "--output_dir", str(tmp_path), "--allow_pickle"]
    )
    assert data_args.allow_pickle


def test_skip_invalid_decodes_every_image_up_front():
    # only decoding finds a truncated file, so skipping invalid rows must decode them all
    assert GroundingSourceArguments.load_kwargs(GroundingSourceArguments(skip_invalid=True))["verify_images"] is True
    assert GroundingSourceArguments.load_kwargs(GroundingSourceArguments())["verify_images"] is False


@pytest.mark.parametrize("threshold", ["0", "1.5", "-0.5", "half"])
def test_evaluate_refuses_iou_thresholds_outside_zero_one(threshold, capsys):
    with pytest.raises(SystemExit) as exited:
        evaluate.parse_args(["--model", "m", "--dataset", "d", "--iou-thresholds", "0.5", threshold])
    assert exited.value.code == 2
    assert f"{threshold!r} is not an IoU threshold: give numbers in (0, 1]" in capsys.readouterr().err


def test_evaluate_refuses_a_checkpoint_of_another_model_type(tmp_path, capsys):
    config = BertConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32)
    BertModel(config).save_pretrained(tmp_path / "bert")
    assert evaluate.main(["--model", str(tmp_path / "bert"), "--dataset", str(tmp_path / "missing")]) == 1
    error = capsys.readouterr().err
    assert "epmvg-evaluate: error:" in error and "holds a 'bert' checkpoint, not an EpmVG one" in error
