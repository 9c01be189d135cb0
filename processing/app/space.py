# Copyright 2026 The epmvg authors. Licensed under the Apache License, Version 2.0.
"""`epmvg-app --write-space DIR`: a folder ready to push as a Hugging Face Space, independent of this repository."""

import ast
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


# the Space's app.py, kept as a module file of this package but never imported here (it imports the page module)
SPACE_APP = Path(__file__).with_name("space_app.py")
PACKAGE_ROOT = Path(image_processing_epmvg.__file__).resolve().parent.parent

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

# copied as they are, at their paths in this repository: the page, the drawing code and the image-mode conversion
# it uses (together they need only gradio, PIL, numpy, torch and transformers)
SPACE_MODULES = (interface, visualization, image_processing_epmvg)
PACKAGE_DOCSTRING = '"""The files of epmvg that the Space runs, copied as they are by `epmvg-app --write-space`."""\n'


def _package_imports(path: Path) -> set[str]:
    """The modules of this repository's packages that the file at `path` imports, as dotted names."""
    package = ".".join(path.relative_to(PACKAGE_ROOT).parent.parts)
    imported = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
            name = node.module if not node.level else f"{base}.{node.module}" if node.module else base
            if name.split(".")[0] in ("processing", "modeling_epmvg"):
                imported.add(name)
        elif isinstance(node, ast.Import):
            imported |= {
                alias.name for alias in node.names if alias.name.split(".")[0] in ("processing", "modeling_epmvg")
            }
    return imported


def _copy_modules(folder: Path) -> None:
    """Copies SPACE_MODULES to their repository paths under `folder`, each package with a docstring-only __init__."""
    carried = {module.__name__ for module in SPACE_MODULES}
    for module in SPACE_MODULES:
        source = Path(module.__file__).resolve()
        missing = _package_imports(source) - carried
        if missing:
            raise RuntimeError(
                f"{source} imports {sorted(missing)}, which the Space does not carry: add it to SPACE_MODULES."
            )
        destination = folder / source.relative_to(PACKAGE_ROOT)
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, destination)
        for package in destination.relative_to(folder).parents:
            if package != Path("."):
                (folder / package / "__init__.py").write_text(PACKAGE_DOCSTRING)


def write_space(folder: str | Path, model: str, num_examples: int = 4) -> Path:
    """
    Writes a Hugging Face Space for the grounding app: app.py (the `"visual-grounding"` pipeline of `model` with
    `trust_remote_code=True`), the page and drawing modules copied as they are, requirements.txt, README.md with the
    Space's YAML header, and example images. Nothing in it imports this repository's installed packages.

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
    _copy_modules(folder)
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
