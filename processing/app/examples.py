# Copyright 2026 The epmvg authors. Licensed under the Apache License, Version 2.0.
"""The app's examples: scenes of the synthetic benchmark with their expressions, generated on the spot."""

from pathlib import Path

from processing.data.synthetic import generate_synthetic_dataset


def write_synthetic_examples(folder: str | Path, num_images: int = 4, seed: int = 0) -> list[tuple[str, str]]:
    """
    Writes `num_images` validation scenes of the synthetic benchmark (default configuration) as PNGs into `folder`.

    Returns:
        `list[tuple[str, str]]`: per scene, the PNG's path and its expressions, one per line.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    # the default config writes up to 2 expressions per scene: at least num_images scenes
    rows = generate_synthetic_dataset(num_train=0, num_val=2 * num_images, num_test=0, seed=seed)["val"]
    scenes: dict[str, tuple] = {}
    for row in rows:
        scenes.setdefault(row["image_id"], (row["image"], []))[1].append(row["expression"])
    examples = []
    for image_id, (image, texts) in list(scenes.items())[:num_images]:
        image.save(folder / f"{image_id}.png")
        examples.append((str(folder / f"{image_id}.png"), "\n".join(texts)))
    return examples


__all__ = ["write_synthetic_examples"]
