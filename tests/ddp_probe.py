# Copyright 2026 The epmvg authors. Licensed under the Apache License, Version 2.0.
"""Runs scripts/train.py's training under `accelerate launch` and writes what each rank ended with (for tests)."""

import hashlib
import json
import os
import sys

from transformers import HfArgumentParser

from modeling_epmvg.commands.train import DataArguments, ModelArguments, train
from modeling_epmvg.trainer_epmvg import EpmVGTrainingArguments


def weights_digest(model) -> str:
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().numpy().tobytes())
    return digest.hexdigest()


if __name__ == "__main__":
    parser = HfArgumentParser((ModelArguments, DataArguments, EpmVGTrainingArguments))
    model_args, data_args, training_args = parser.parse_args_into_dataclasses(args=sys.argv[1:])
    trainer = train(model_args, data_args, training_args)
    rank = trainer.args.process_index
    report = {
        "world_size": trainer.args.world_size,
        "student": weights_digest(trainer.accelerator.unwrap_model(trainer.model_wrapped)),
        "student_wrapper": type(trainer.model_wrapped).__name__,
        "teacher_wrapper": type(trainer.teacher_model).__name__,
        "steps": trainer.state.global_step,
    }
    with open(os.path.join(training_args.output_dir, f"rank{rank}.json"), "w") as handle:
        json.dump(report, handle)
