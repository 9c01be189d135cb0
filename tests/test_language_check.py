# Copyright 2026 The epmvg authors. Licensed under the Apache License, Version 2.0.
"""The language check: expressions permuted across images, the images and boxes left in place."""

import pytest
from datasets import Dataset

from processing.data.language_check import permute_expressions


def test_expressions_are_permuted_across_rows_and_nothing_else_moves():
    rows = {"expression": [f"expression {i}" for i in range(50)], "bbox": [[i, i, i + 1, i + 1] for i in range(50)]}
    shuffled = permute_expressions(Dataset.from_dict(rows), seed=0)
    assert shuffled["bbox"] == rows["bbox"]
    assert sorted(shuffled["expression"]) == sorted(rows["expression"])
    assert sum(a == b for a, b in zip(shuffled["expression"], rows["expression"])) < 5
    assert permute_expressions(Dataset.from_dict(rows), seed=0)["expression"] == shuffled["expression"]
    assert permute_expressions(Dataset.from_dict(rows), seed=1)["expression"] != shuffled["expression"]


def test_a_dataset_without_expressions_is_refused():
    with pytest.raises(ValueError, match="no 'expression' column"):
        permute_expressions(Dataset.from_dict({"caption": ["a"]}))
