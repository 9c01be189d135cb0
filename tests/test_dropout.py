"""The CPU dropout of the visual and fusion encoders: torch's dropout semantics from 16 random bits per element."""

import pytest
import torch

from modeling_epmvg import EpmVGForVisualGrounding
from modeling_epmvg.modeling_epmvg import EpmVGAttention, _dropout_keep_mask, epmvg_dropout

from .conftest import random_inputs, tiny_config


P = 0.1
# 0.1 rounded to a multiple of 1/65536, and the scale that keeps the expectation exact
P_ROUNDED = 6554 / 65536
SCALE = 1 / (1 - P_ROUNDED)


def test_drops_the_configured_fraction_and_scales_the_rest_to_keep_the_mean():
    torch.manual_seed(0)
    dropped = epmvg_dropout(torch.ones(1_000_000), P, training=True)
    zero_fraction = (dropped == 0).float().mean().item()
    # binomial standard deviation at n = 1e6 is 0.0003
    assert abs(zero_fraction - P_ROUNDED) < 0.0015
    torch.testing.assert_close(dropped[dropped != 0], torch.full_like(dropped[dropped != 0], SCALE))
    assert abs(dropped.mean().item() - 1.0) < 0.002


def test_masks_are_independent_across_positions():
    torch.manual_seed(0)
    keep, _ = _dropout_keep_mask(torch.Size([4, 250_000]), 0.5)
    # neighbours come from the same 64-bit word: their agreement must still be that of independent coins
    agreement = (keep[:, 1:] == keep[:, :-1]).float().mean().item()
    assert abs(agreement - 0.5) < 0.003


def test_is_the_identity_in_eval_mode_and_at_probability_zero():
    hidden_states = torch.randn(3, 5)
    assert epmvg_dropout(hidden_states, P, training=False) is hidden_states
    assert epmvg_dropout(hidden_states, 0.0, training=True) is hidden_states


def test_probability_one_drops_everything():
    assert not epmvg_dropout(torch.randn(3, 5), 1.0, training=True).any()


def test_follows_the_torch_seed():
    hidden_states = torch.randn(64, 64)
    torch.manual_seed(3)
    first = epmvg_dropout(hidden_states, P, training=True)
    torch.manual_seed(3)
    again = epmvg_dropout(hidden_states, P, training=True)
    other = epmvg_dropout(hidden_states, P, training=True)
    torch.testing.assert_close(first, again)
    assert not torch.equal(first, other)


def test_gradient_is_the_keep_mask_times_the_scale():
    hidden_states = torch.randn(256, 256, requires_grad=True)
    dropped = epmvg_dropout(hidden_states, P, training=True)
    dropped.sum().backward()
    kept = dropped.detach() != 0
    torch.testing.assert_close(hidden_states.grad, kept.float() * SCALE)


@pytest.mark.parametrize("with_padding", [False, True])
def test_training_attention_equals_torch_math_attention_with_the_same_dropout_mask(with_padding):
    torch.manual_seed(0)
    attention = EpmVGAttention(embed_dim=16, num_heads=2, dropout=P).train()
    hidden_states, positions = torch.randn(2, 7, 16), torch.randn(2, 7, 16)
    attention_mask = torch.ones(2, 1, 1, 7, dtype=torch.bool)
    if with_padding:
        attention_mask[1, ..., 5:] = False
    torch.manual_seed(5)
    output, _ = attention(hidden_states, positions, attention_mask)

    queries_keys = hidden_states + positions
    query = attention._split_heads(attention.q_proj(queries_keys))
    key = attention._split_heads(attention.k_proj(queries_keys))
    value = attention._split_heads(attention.v_proj(hidden_states))
    torch.manual_seed(5)
    keep, _ = _dropout_keep_mask(torch.Size([2, 2, 7, 7]), P)
    # the private math kernel takes an additive mask (the public SDPA converts boolean ones before calling it)
    additive_mask = torch.zeros(attention_mask.shape).masked_fill(~attention_mask, float("-inf"))
    context, _ = torch.ops.aten._scaled_dot_product_attention_math(
        query, key, value, attn_mask=additive_mask, dropout_p=P_ROUNDED, dropout_mask=keep
    )
    expected = attention.o_proj(context.transpose(1, 2).flatten(2))
    torch.testing.assert_close(output, expected, atol=1e-5, rtol=1e-5)


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
