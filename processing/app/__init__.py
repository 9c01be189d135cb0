# Copyright 2026 The epmvg authors. Licensed under the Apache License, Version 2.0.
"""The interactive grounding app (Gradio, the `app` extra): `epmvg-app` and its Hugging Face Space writer."""

from .cli import main
from .space import write_space


__all__ = ["main", "write_space"]
