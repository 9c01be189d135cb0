# Copyright 2026 The epmvg authors. Licensed under the Apache License, Version 2.0.
"""
The app.py of the Hugging Face Space that `epmvg-app --write-space` writes: the grounding app over an EpmVG model
loaded by Hub id with `trust_remote_code=True`, needing only gradio, torch and transformers.

The pipeline's, the model's and the processor's code come from the model repository; the page and drawing modules
are copies of this repository's files at their own paths (`processing/app/interface.py`, ...), written beside this
file. `EPMVG_MODEL` overrides the model id. This file only runs inside the Space, never as part of the package.
"""

import json
import os
from pathlib import Path

from transformers import pipeline

from processing.app.interface import build_interface, launch, open_image


HERE = Path(__file__).resolve().parent
# written by epmvg-app --write-space: the model id and the example images with their expressions
SETTINGS = json.loads((HERE / "space_settings.json").read_text())
MODEL_ID = os.environ.get("EPMVG_MODEL", SETTINGS["model"])

# the model repository's own pipeline, model and processor code (its config names the pipeline file)
grounder = pipeline("visual-grounding", model=MODEL_ID, trust_remote_code=True)


def ground(image_path: str, expressions: list[str]) -> list[dict]:
    """One box per expression, in the pipeline's output format (pixels of the image, as the viewer shows it)."""
    return grounder(open_image(image_path), expressions)


examples = [(str(HERE / path), text) for path, text in SETTINGS["examples"]]
demo = build_interface(ground, examples, MODEL_ID)

if __name__ == "__main__":
    launch(demo, host=None)
