# Copyright 2026 The epmvg authors. Licensed under the Apache License, Version 2.0.
"""The interactive grounding app (Gradio, the `app` extra) and its Hugging Face Space writer; the command line is
`epmvg-app` (modeling_epmvg/commands/app.py)."""

from .examples import write_synthetic_examples
from .interface import build_interface, launch
from .space import write_space


__all__ = ["build_interface", "launch", "write_space", "write_synthetic_examples"]
