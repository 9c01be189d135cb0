# Copyright 2026 The epmvg authors. Licensed under the Apache License, Version 2.0.
"""The dropout of the visual and fusion encoders is torch's, on every device; checkpointing replays its masks."""

import torch
import torch.nn.functional as F
from torch import nn

from modeling_epmvg import EpmVGForVisualGrounding
from modeling_epmvg.modeling_epmvg import EpmVGMLP

from .conftest import random_inputs, tiny_config


P = 0.1


def test_every_dropout_of_the_encoders_is_torchs_nn_dropout_with_the_configured_probability():
    model = EpmVGForVisualGrounding(tiny_config(dropout=P))
    for encoder in (model.model.vision_encoder, model.model.fusion_encoder):
        dropouts = [module for module in encoder.modules() if "dropout" in type(module).__name__.lower()]
        assert dropouts and all(type(module) is nn.Dropout and module.p == P for module in dropouts)
        assert all(layer.self_attn.attention_dropout == P for layer in encoder.layers)


def test_the_feed_forward_block_in_training_draws_the_masks_torch_draws():
    torch.manual_seed(0)
    mlp = EpmVGMLP(tiny_config(dropout=P), ffn_dim=32).train()
    hidden_states = torch.randn(4, 7, 16)
    torch.manual_seed(5)
    output = mlp(hidden_states)
    torch.manual_seed(5)
    expected = mlp.fc2(F.dropout(F.relu(mlp.fc1(hidden_states)), P, training=True))
    torch.testing.assert_close(output, expected, atol=0, rtol=0)


def test_gradient_checkpointing_replays_the_same_dropout_masks():
    torch.manual_seed(0)
    plain = EpmVGForVisualGrounding(tiny_config(dropout=P)).train()
    checkpointed = EpmVGForVisualGrounding(tiny_config(dropout=P)).train()
    checkpointed.load_state_dict(plain.state_dict())
    checkpointed.activation_checkpointing_enable()
    inputs = random_inputs(plain.config)
    torch.manual_seed(1)
    plain_loss = plain(**inputs).loss
    torch.manual_seed(1)
    checkpointed_loss = checkpointed(**inputs).loss
    plain_loss.backward()
    checkpointed_loss.backward()
    torch.testing.assert_close(plain_loss, checkpointed_loss)
    for (name, left), (_, right) in zip(plain.named_parameters(), checkpointed.named_parameters()):
        if left.grad is not None:
            torch.testing.assert_close(left.grad, right.grad, atol=1e-4, rtol=1e-4, msg=name)
