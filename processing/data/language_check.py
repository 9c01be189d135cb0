# Copyright 2026 The epmvg authors. Licensed under the Apache License, Version 2.0.
"""The language check: expressions permuted across images, so a model that reads the text loses its target."""

import numpy as np


def permute_expressions(dataset, seed: int = 0):
    r"""
    A copy of a grounding split whose `expression` column is permuted across rows (seeded); images and boxes stay.
    A model that grounds by reading the expression falls towards the text-free baselines on it (random object,
    largest object); one that ignores the text keeps its accuracy.

    Args:
        dataset (`datasets.Dataset`): one split in the unified grounding schema.
        seed (`int`, *optional*, defaults to 0): the permutation's seed.

    Returns:
        `datasets.Dataset`: the same rows and features, expressions permuted.
    """
    if "expression" not in dataset.column_names:
        raise ValueError("The dataset has no 'expression' column: pass a split in the unified grounding schema.")
    permutation = np.random.default_rng(seed).permutation(len(dataset))
    expressions = dataset["expression"]
    features = dataset.features["expression"]
    shuffled = [expressions[index] for index in permutation]
    return dataset.remove_columns("expression").add_column("expression", shuffled, feature=features)


__all__ = ["permute_expressions"]
