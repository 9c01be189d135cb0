# Copyright 2026 The epmvg authors. Licensed under the Apache License, Version 2.0.
"""Per-visual-token targets of the dense visual objective, from the annotated objects of each scene."""

from dataclasses import dataclass

import numpy as np
import torch

from modeling_epmvg.loss_epmvg import target_cells


@dataclass
class EpmVGDenseLabeler:
    r"""
    Builds `dense_labels` for [`EpmVGForVisualPretraining`] and the dense auxiliary term of
    [`EpmVGForVisualGrounding`]: on the `grid_size` x `grid_size` grid of visual tokens, the cell holding an object's
    box centre gets the object's normalized canvas (cx, cy, w, h) and its attribute class indices; every other cell
    gets -1. When two centres share a cell, the first object listed wins.

    Args:
        attributes (`dict[str, list[str]]`):
            Attribute name -> class names, in the order of the config's `dense_attribute_classes` (the synthetic
            benchmark's `SyntheticGroundingConfig.object_attributes`).
        grid_size (`int`): side of the visual token grid (`EpmVGConfig.visual_grid_size`).
        objects_column (`str`, *optional*, defaults to `"scene_objects"`):
            Row column holding the objects: a list of dicts with `bbox` (x1, y1, x2, y2 pixels) and every attribute.
    """

    attributes: dict[str, list[str]]
    grid_size: int
    objects_column: str = "scene_objects"

    @property
    def attribute_classes(self) -> list[int]:
        """Class counts in order: the config's `dense_attribute_classes`."""
        return [len(names) for names in self.attributes.values()]

    def _class_indices(self, obj: dict) -> list[int]:
        indices = []
        for name, classes in self.attributes.items():
            if obj.get(name) not in classes:
                raise ValueError(
                    f"Object {obj} has {name}={obj.get(name)!r}, not one of {classes}: build the labeler with the "
                    "dataset's own attribute classes (e.g. SyntheticGroundingConfig.object_attributes)."
                )
            indices.append(classes.index(obj[name]))
        return indices

    def __call__(self, rows: list[dict], image_sizes: list[tuple[int, int]], image_processor) -> torch.Tensor:
        """
        `(batch, grid_size**2, 4 + num_attributes)` float labels for the rows' objects, with boxes put in the canvas
        by `image_processor` exactly as it places the images (centred letterbox, `(height, width)` sizes).
        """
        objects = [row.get(self.objects_column) for row in rows]
        for index, scene in enumerate(objects):
            if not scene:
                raise ValueError(
                    f"Row {index} has no {self.objects_column!r} annotations: the dense objective needs every object "
                    "of the scene (the synthetic benchmark has them; real data starts from a DETR checkpoint instead)."
                )
        counts = [len(scene) for scene in objects]
        flat = [obj for scene in objects for obj in scene]
        boxes = image_processor.boxes_to_canvas(
            [obj["bbox"] for obj in flat], np.repeat(np.asarray(image_sizes), counts, axis=0)
        )
        values = torch.cat([torch.from_numpy(boxes), torch.tensor([self._class_indices(obj) for obj in flat])], dim=1)
        slots = np.repeat(np.arange(len(rows)), counts) * self.grid_size**2
        slots = slots + target_cells(torch.from_numpy(boxes), self.grid_size).numpy()
        # np.unique returns each slot's first occurrence: the first object of a shared cell wins
        slots, first = np.unique(slots, return_index=True)
        labels = torch.full((len(rows) * self.grid_size**2, 4 + len(self.attributes)), -1.0)
        labels[torch.from_numpy(slots)] = values[torch.from_numpy(first)].float()
        return labels.view(len(rows), self.grid_size**2, -1)


__all__ = ["EpmVGDenseLabeler"]
