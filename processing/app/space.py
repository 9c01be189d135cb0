# Copyright 2026 The epmvg authors. Licensed under the Apache License, Version 2.0.
"""`epmvg-app --write-space DIR`: a folder ready to push as a Hugging Face Space, independent of this repository."""

import json
import shutil
from pathlib import Path

import gradio
import torch
import transformers

from processing import image_processing_epmvg
from processing.data import visualization

from . import interface
from .examples import write_synthetic_examples


INTERFACE_MODULE = "grounding_interface"
# the Space's app.py, kept as a module file of this package but never imported here (it imports INTERFACE_MODULE)
SPACE_APP = Path(__file__).with_name("space_app.py")

README = """---
title: EpmVG visual grounding
emoji: 🎯
colorFrom: blue
colorTo: yellow
sdk: gradio
sdk_version: {gradio_version}
app_file: app.py
pinned: false
license: apache-2.0
{models}---

# EpmVG visual grounding

Upload an image and type referring expressions, one per line: EpmVG (TransVG with cross-modal CLIP
distillation) finds one box per expression. Model: `{model}` (loaded with
`trust_remote_code=True`; set the `EPMVG_MODEL` variable of the Space to use another one). The examples are scenes of
epmvg's synthetic benchmark.
"""


# copied flat beside app.py: the drawing code and the image-mode conversion it uses (both need only PIL, numpy, torch)
FLAT_DEPENDENCIES = (visualization, image_processing_epmvg)


def _flat_copy(module, destination: Path) -> None:
    """Copies a module's source to `destination`, importing its flat-copied dependencies from beside it."""
    source = Path(module.__file__).read_text()
    for dependency in FLAT_DEPENDENCIES:
        stem = Path(dependency.__file__).stem
        for package_import in (f"from {dependency.__name__} import", f"from ..{stem} import", f"from .{stem} import"):
            source = source.replace(package_import, f"from {stem} import")
    package_imports = ("from .", "from processing", "import processing")
    leftover = [line for line in source.splitlines() if line.startswith(package_imports)]
    if leftover:
        raise RuntimeError(f"{module.__file__} imports {leftover}, which the Space does not carry: copy it flat too.")
    destination.write_text(source)


def write_space(folder: str | Path, model: str, num_examples: int = 4) -> Path:
    """
    Writes a Hugging Face Space for the grounding app: app.py (loads `model` with `trust_remote_code=True`),
    the page and drawing modules, requirements.txt, README.md with the Space's YAML header, and example images.
    Nothing in it imports this repository's packages.

    Args:
        folder (`str` or `Path`):
            Where to write; created if missing. Files of an earlier Space there are replaced.
        model (`str`):
            The model's Hub id (a local folder works for trying the Space on this machine).
        num_examples (`int`, *optional*, defaults to 4):
            Synthetic-benchmark scenes written as examples.

    Returns:
        `Path`: the folder.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(SPACE_APP, folder / "app.py")
    _flat_copy(interface, folder / f"{INTERFACE_MODULE}.py")
    for dependency in FLAT_DEPENDENCIES:
        _flat_copy(dependency, folder / Path(dependency.__file__).name)
    examples = write_synthetic_examples(folder / "examples", num_examples)
    settings = {"model": model, "examples": [(str(Path(path).relative_to(folder)), text) for path, text in examples]}
    (folder / "space_settings.json").write_text(json.dumps(settings, indent=2) + "\n")
    torch_version = torch.__version__.split("+")[0]
    (folder / "requirements.txt").write_text(f"torch>={torch_version}\ntransformers=={transformers.__version__}\n")
    models = "" if Path(model).exists() else f"models:\n- {model}\n"
    readme = README.format(gradio_version=gradio.__version__, model=model, models=models)
    (folder / "README.md").write_text(readme)
    return folder


__all__ = ["write_space"]
