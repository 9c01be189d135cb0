# Copyright 2026 The epmvg authors. Licensed under the Apache License, Version 2.0.
"""Shared test helpers: tiny random configs and an in-memory tokenizer (everything offline, CPU, fast)."""

import importlib
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from transformers import BertConfig, BertTokenizer, ResNetConfig

from modeling_epmvg import EpmVGConfig


REPO_ROOT = Path(__file__).resolve().parents[1]


TINY_VOCAB = [
    "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]",
    "the", "a", "red", "green", "blue", "small", "big", "circle", "square", "triangle", "star",
    "left", "right", "of", "on", "top", "bottom", "man", "woman", "dog", "bright", "second", "from",
]  # fmt: skip


def tiny_tokenizer() -> BertTokenizer:
    """A BERT WordPiece tokenizer over a few dozen words, built in memory."""
    return BertTokenizer(vocab={token: index for index, token in enumerate(TINY_VOCAB)})


def tiny_config(**overrides) -> EpmVGConfig:
    """A ~0.2M-parameter EpmVG config: 2-stage ResNet-like backbone, 1-layer encoders, 64x64 canvas, 8 text slots."""
    kwargs = dict(
        backbone_config=ResNetConfig(
            embedding_size=8,
            hidden_sizes=[8, 16, 16, 32],
            depths=[1, 1, 1, 1],
            layer_type="basic",
            out_features=["stage4"],
        ),
        text_config=BertConfig(
            vocab_size=len(TINY_VOCAB),
            hidden_size=16,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=32,
            max_position_embeddings=32,
        ),
        d_model=16,
        vision_encoder_layers=1,
        vision_encoder_attention_heads=2,
        vision_encoder_ffn_dim=32,
        fusion_layers=2,
        fusion_attention_heads=2,
        fusion_ffn_dim=32,
        image_size=64,
        max_text_len=8,
    )
    kwargs.update(overrides)
    return EpmVGConfig(**kwargs)


def random_inputs(config: EpmVGConfig, batch_size: int = 2, seed: int = 0) -> dict:
    """Random model inputs with some canvas padding and some text padding, plus labels."""
    generator = torch.Generator().manual_seed(seed)
    size, length = config.image_size, config.max_text_len
    pixel_mask = torch.ones(batch_size, size, size, dtype=torch.long)
    pixel_mask[:, : size // 4] = 0
    input_ids = torch.randint(5, config.text_config.vocab_size, (batch_size, length), generator=generator)
    input_ids[:, 0] = 2
    attention_mask = torch.ones(batch_size, length, dtype=torch.long)
    attention_mask[:, length // 2 :] = 0
    input_ids[:, length // 2 :] = 0
    centers = 0.3 + 0.4 * torch.rand(batch_size, 2, generator=generator)
    sizes = 0.1 + 0.3 * torch.rand(batch_size, 2, generator=generator)
    return {
        "pixel_values": torch.randn(batch_size, 3, size, size, generator=generator) * pixel_mask[:, None],
        "pixel_mask": pixel_mask,
        "input_ids": input_ids,
        "attention_mask": attention_mask,
        "labels": torch.cat([centers, sizes], dim=-1),
    }


def frozen_parameter_names(model: torch.nn.Module) -> set[str]:
    return {name for name, parameter in model.named_parameters() if not parameter.requires_grad}


def free_port() -> int:
    """A TCP port nobody listens on now (tests run side by side: no fixed port)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def cpu_launch(processes: int = 2) -> list[str]:
    """`accelerate launch` of `processes` CPU processes (gloo) on a free port, as a command's first words."""
    return [
        sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", str(processes),
        "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
        "--main_process_port", str(free_port()),
    ]  # fmt: skip


@pytest.fixture
def config() -> EpmVGConfig:
    return tiny_config()


@pytest.fixture
def tokenizer() -> BertTokenizer:
    return tiny_tokenizer()


@pytest.fixture
def in_process_command(capsys, monkeypatch):
    """Calls `modeling_epmvg.commands.<name>.main(argv)` in this process: its exit status, stdout and stderr."""
    monkeypatch.setenv("EPMVG_CPU_ALLOCATOR", "default")  # the test process keeps glibc's own malloc settings
    monkeypatch.delenv("EPMVG_DEBUG", raising=False)

    def call(name: str, *argv: str) -> subprocess.CompletedProcess:
        capsys.readouterr()
        status = importlib.import_module(f"modeling_epmvg.commands.{name}").main(list(argv))
        return subprocess.CompletedProcess(argv, status, *capsys.readouterr())

    return call


@pytest.fixture(scope="session")
def installed_venv(tmp_path_factory) -> Path:
    """A fresh venv with the package installed from README.md's `pip install` line (not editable), once a session."""
    from .installed_package import install_package

    return install_package(tmp_path_factory.mktemp("installed"))


def tiny_clip():
    """A ~50K-parameter random CLIPModel over the tiny vocabulary (32x32 images, 24-dim projections)."""
    from transformers import CLIPConfig, CLIPModel

    config = CLIPConfig(
        text_config=dict(
            vocab_size=len(TINY_VOCAB),
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            max_position_embeddings=16,
            eos_token_id=TINY_VOCAB.index("[SEP]"),
            pad_token_id=0,
            bos_token_id=TINY_VOCAB.index("[CLS]"),
        ),
        vision_config=dict(
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            image_size=32,
            patch_size=8,
        ),
        projection_dim=24,
    )
    return CLIPModel(config)


def teacher_inputs(batch_size: int = 2, seed: int = 0) -> dict:
    """Random inputs for `tiny_clip()` under the collator's `teacher_` names."""
    generator = torch.Generator().manual_seed(seed)
    input_ids = torch.randint(5, len(TINY_VOCAB), (batch_size, 6), generator=generator)
    input_ids[:, 0], input_ids[:, -1] = TINY_VOCAB.index("[CLS]"), TINY_VOCAB.index("[SEP]")
    return {
        "teacher_pixel_values": torch.randn(batch_size, 3, 32, 32, generator=generator),
        "teacher_input_ids": input_ids,
        "teacher_attention_mask": torch.ones_like(input_ids),
    }
