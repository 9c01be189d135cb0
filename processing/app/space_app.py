# Copyright 2026 The epmvg authors. Licensed under the Apache License, Version 2.0.
"""
The app.py of the Hugging Face Space that `epmvg-app --write-space` writes: the grounding app over an EpmVG model
loaded by Hub id with `trust_remote_code=True`, needing only gradio, torch and transformers.

The model's code and processor come from the model repository. `EPMVG_MODEL` overrides the model id. This file
only runs inside the Space (it imports the page module written beside it), never as part of the package.
"""

import json
import os
from pathlib import Path

import torch
from grounding_interface import build_interface, launch, open_image
from transformers import AutoModel, AutoProcessor


HERE = Path(__file__).resolve().parent
# written by epmvg-app --write-space: the model id and the example images with their expressions
SETTINGS = json.loads((HERE / "space_settings.json").read_text())
MODEL_ID = os.environ.get("EPMVG_MODEL", SETTINGS["model"])

model = AutoModel.from_pretrained(MODEL_ID, trust_remote_code=True).eval()
processor = AutoProcessor.from_pretrained(MODEL_ID, trust_remote_code=True)


def ground(image_path: str, expressions: list[str]) -> list[dict]:
    """One box per expression in pixels of the image: model, processor and its post-processing."""
    image = open_image(image_path)
    inputs = processor(images=[image] * len(expressions), text=expressions, return_tensors="pt")
    with torch.inference_mode():
        outputs = model(**inputs)
    sizes = [(image.height, image.width)] * len(expressions)
    results = processor.post_process_visual_grounding(outputs, target_sizes=sizes)
    return [
        {
            "box": dict(zip(("xmin", "ymin", "xmax", "ymax"), result["boxes"][0].tolist())),
            "score": result["scores"][0].item(),
            "expression": expression,
        }
        for result, expression in zip(results, expressions)
    ]


examples = [(str(HERE / path), text) for path, text in SETTINGS["examples"]]
demo = build_interface(ground, examples, MODEL_ID)

if __name__ == "__main__":
    launch(demo, host=None)
