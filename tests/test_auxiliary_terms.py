# Copyright 2026 The epmvg authors. Licensed under the Apache License, Version 2.0.
"""The training-only auxiliary terms: pure losses, the heads they need, and their config switches (paper: off)."""

import pytest
import torch

from modeling_epmvg import EpmVGForVisualGrounding
from modeling_epmvg.loss_epmvg import dense_prediction_loss, target_cells, target_token_loss
from tests.conftest import random_inputs, tiny_config


ATTRIBUTES = [3, 2]
AUXILIARY = dict(
    dense_attribute_classes=ATTRIBUTES,
    auxiliary_dense_loss_coefficient=0.5,
    auxiliary_target_token_loss_coefficient=1.0,
)


def one_object_labels(num_tokens: int = 4, cell: int = 2) -> torch.Tensor:
    """One object (box 0.6, 0.4, 0.2, 0.2; attributes 1 and 0) centred in `cell`; -1 elsewhere."""
    labels = torch.full((1, num_tokens, 4 + len(ATTRIBUTES)), -1.0)
    labels[0, cell] = torch.tensor([0.6, 0.4, 0.2, 0.2, 1, 0])
    return labels


def matching_logits(labels: torch.Tensor, confidence: float = 20.0) -> torch.Tensor:
    """Logits that predict `labels` almost exactly."""
    logits = torch.full((*labels.shape[:2], 1 + sum(ATTRIBUTES) + 4), -confidence)
    has_object = labels[..., 4] >= 0
    logits[..., 0] = torch.where(has_object, confidence, -confidence)
    for token in has_object[0].nonzero()[:, 0]:
        logits[0, token, 1 + int(labels[0, token, 4])] = confidence
        logits[0, token, 1 + ATTRIBUTES[0] + int(labels[0, token, 5])] = confidence
        logits[0, token, -4:] = torch.logit(labels[0, token, :4])
    return logits


def test_dense_loss_is_near_zero_for_matching_logits_and_grows_with_each_mistake():
    labels = one_object_labels()
    loss, terms = dense_prediction_loss(matching_logits(labels), labels, ATTRIBUTES)
    assert loss < 1e-4 and set(terms) == {"objectness", "attributes", "box"}
    wrong_attribute = matching_logits(labels)
    wrong_attribute[0, 2, 1:4] = torch.tensor([20.0, -20.0, -20.0])
    wrong_box = matching_logits(labels)
    wrong_box[0, 2, -4] = 0.0
    for logits in (wrong_attribute, wrong_box):
        assert dense_prediction_loss(logits, labels, ATTRIBUTES)[0] > 0.1


def test_dense_loss_without_any_object_trains_objectness_only():
    labels = torch.full((2, 4, 6), -1.0)
    logits = torch.zeros(2, 4, 10, requires_grad=True)
    loss, terms = dense_prediction_loss(logits, labels, ATTRIBUTES)
    loss.backward()
    assert terms["attributes"] == 0 and terms["box"] == 0
    assert torch.isclose(loss, torch.log(torch.tensor(2.0)))


def test_dense_loss_names_mismatched_channels():
    with pytest.raises(ValueError, match="dense_attribute_classes"):
        dense_prediction_loss(torch.zeros(1, 4, 9), one_object_labels(), ATTRIBUTES)


def test_target_cells_are_row_major_and_clamp_the_border():
    boxes = torch.tensor([[0.1, 0.1, 0.1, 0.1], [0.9, 0.1, 0.1, 0.1], [0.1, 0.9, 0.1, 0.1], [1.0, 1.0, 0.1, 0.1]])
    assert target_cells(boxes, grid_size=2).tolist() == [0, 1, 2, 3]


def test_target_token_loss_is_low_when_the_target_cell_scores_highest():
    labels = torch.tensor([[0.8, 0.2, 0.1, 0.1]])  # cell 1 of a 2x2 grid
    right, wrong = torch.tensor([[0.0, 10.0, 0.0, 0.0]]), torch.tensor([[10.0, 0.0, 0.0, 0.0]])
    assert target_token_loss(right, labels, 2) < 1e-3 < 5 < target_token_loss(wrong, labels, 2)


def test_the_papers_model_has_no_auxiliary_heads_and_no_auxiliary_loss_terms():
    model = EpmVGForVisualGrounding(tiny_config())
    assert model.dense_head is None and model.target_token_scorer is None
    assert set(model(**random_inputs(model.config)).loss_dict) == {"loss_bbox", "loss_giou"}


def test_auxiliary_terms_are_weighted_into_the_loss_and_reported_unweighted():
    torch.manual_seed(0)
    model = EpmVGForVisualGrounding(tiny_config(**AUXILIARY)).eval()  # no dropout: the two passes must agree
    inputs = random_inputs(model.config)
    num_tokens = model.config.num_visual_tokens
    inputs["dense_labels"] = one_object_labels(num_tokens, cell=1).repeat(2, 1, 1)
    outputs = model(**inputs)
    terms = outputs.loss_dict
    assert set(terms) == {"loss_bbox", "loss_giou", "loss_aux_dense", "loss_aux_target_token"}
    expected = terms["loss_bbox"] + terms["loss_giou"] + 0.5 * terms["loss_aux_dense"] + terms["loss_aux_target_token"]
    assert torch.allclose(outputs.loss, expected)
    # training-only: inference returns the same boxes, and no hidden states it was not asked for
    assert outputs.hidden_states is None
    with torch.no_grad():
        plain = model(**{k: v for k, v in inputs.items() if k not in ("labels", "dense_labels")})
    assert torch.allclose(plain.pred_boxes, outputs.pred_boxes)


def test_the_target_token_term_reads_the_configured_fusion_layer():
    torch.manual_seed(0)
    config = tiny_config(fusion_layers=3, auxiliary_target_token_loss_coefficient=1.0, auxiliary_target_token_layer=0)
    model = EpmVGForVisualGrounding(config).eval()
    inputs = random_inputs(config)
    first_layer_only = model(**inputs).loss_dict["loss_aux_target_token"]
    # layers after the scored one cannot change the term
    torch.nn.init.normal_(model.model.fusion_encoder.layers[2].mlp.fc1.weight)
    assert torch.equal(model(**inputs).loss_dict["loss_aux_target_token"], first_layer_only)


def test_the_dense_term_without_dense_labels_says_how_to_get_them():
    model = EpmVGForVisualGrounding(tiny_config(**AUXILIARY))
    with pytest.raises(ValueError, match="dense labeler"):
        model(**random_inputs(model.config))


def test_auxiliary_heads_are_saved_and_reloaded(tmp_path):
    model = EpmVGForVisualGrounding(tiny_config(**AUXILIARY))
    model.save_pretrained(tmp_path)
    reloaded = EpmVGForVisualGrounding.from_pretrained(tmp_path)
    assert torch.equal(reloaded.dense_head.projection.weight, model.dense_head.projection.weight)
    assert torch.equal(reloaded.target_token_scorer.weight, model.target_token_scorer.weight)
