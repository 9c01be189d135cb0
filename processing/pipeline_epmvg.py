# Copyright 2026 The epmvg authors. Licensed under the Apache License, Version 2.0.
"""A transformers pipeline for visual grounding: image(s) + referring expression(s) -> one box per expression."""

import os
from typing import Any

import PIL.Image
import PIL.ImageOps
import torch
from transformers.image_utils import load_image
from transformers.pipelines.base import ChunkPipeline


ImageLike = str | os.PathLike | PIL.Image.Image


def load_grounding_image(image: ImageLike, timeout: float | None = None) -> PIL.Image.Image:
    """
    An image given as a PIL image (returned as is), a local file path (opened, EXIF orientation applied) or an
    http(s) URL. The mode is kept: the image processor converts every mode to RGB itself.
    """
    if isinstance(image, PIL.Image.Image):
        return image
    if isinstance(image, os.PathLike):
        image = os.fspath(image)
    if not isinstance(image, str):
        raise TypeError(
            f"Got an image of type {type(image).__name__}: pass a PIL image or the path of an image file "
            "(or a list of them)."
        )
    if image.startswith(("http://", "https://")):
        return load_image(image, timeout=timeout)
    if not os.path.isfile(image):
        raise FileNotFoundError(f"Image file not found: {image!r}. Pass the path of an existing image or a PIL image.")
    try:
        with PIL.Image.open(image) as opened:
            # the pixels as a viewer shows them (phones store rotated pixels plus an EXIF orientation tag)
            return PIL.ImageOps.exif_transpose(opened).copy()
    except (OSError, SyntaxError, ValueError) as error:  # not an image, truncated, corrupt
        raise ValueError(
            f"Cannot read the image file {image!r} ({type(error).__name__}: {error}): it is not an image PIL can "
            "decode, or it is truncated. Pass another file, or re-save this one."
        ) from error


class VisualGroundingPipeline(ChunkPipeline):
    r"""
    Visual grounding pipeline for [`EpmVGForVisualGrounding`]: finds the one box that each referring expression
    describes in an image. Several expressions per image and several images per call are batched together
    (`batch_size=`); every image is preprocessed once, whatever its number of expressions.

    A saved EpmVG folder (model + processor) names this pipeline in its config (`custom_pipelines`) and holds its
    file, so it loads from the Hub or a folder with `trust_remote_code=True`, with or without this package. Importing
    the `processing` package also registers the `"visual-grounding"` task for models given as objects.

    Example:

    ```python
    >>> from transformers import pipeline

    >>> grounder = pipeline("visual-grounding", model="path/to/model", trust_remote_code=True)  # doctest: +SKIP
    >>> grounder("street.jpg", "the man on the left")  # doctest: +SKIP
    {'box': {'xmin': 12.4, 'ymin': 40.0, 'xmax': 180.9, 'ymax': 395.2}, 'score': 1.0, 'expression': 'the man on ...'}
    >>> grounder("street.jpg", ["the man on the left", "the red car"], batch_size=8)  # doctest: +SKIP
    [{'box': {...}, 'score': 1.0, 'expression': 'the man on the left'}, {'box': {...}, ...}]
    ```
    """

    _load_processor = True
    _load_image_processor = False
    _load_feature_extractor = False
    _load_tokenizer = False

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.processor is None or self.image_processor is None or self.tokenizer is None:
            raise ValueError(
                "The visual-grounding pipeline needs an EpmVGProcessor (image processor + tokenizer): save one "
                "next to the model with processor.save_pretrained(...), or pass `processor=` to pipeline(...)."
            )
        self.check_model_type(["EpmVGForVisualGrounding"])
        self.processor.check_model_config(self.model.config)

    def __call__(
        self,
        image: ImageLike | list[ImageLike] | dict | list[dict],
        expressions: str | list[str] | list[str | list[str]] | None = None,
        **kwargs: Any,
    ) -> dict | list:
        r"""
        Ground referring expressions in images.

        Args:
            image (`str`, `os.PathLike`, `PIL.Image.Image`, `dict`, or a list of them):
                One image (a PIL image or the path of an image file), a list of images, or `{"image": ...,
                "expressions": ...}` dicts (a list, a generator or a dataset of them).
            expressions (`str`, `list[str]` or `list[str | list[str]]`):
                For one image: one expression (returns one result) or a list (returns one result per expression).
                For a list of N images: one string for all of them, or N entries, one per image, each a string or a
                list of strings.
            batch_size (`int`, *optional*):
                How many (image, expression) pairs go through the model at once.
            timeout (`float`, *optional*):
                Timeout in seconds when an image is an http(s) URL.

        Returns:
            For each expression a dict with
            - **box** (`dict[str, float]`) -- `xmin`, `ymin`, `xmax`, `ymax` in pixels of the original image.
            - **score** (`float`) -- always 1.0: EpmVG regresses exactly one box per expression.
            - **expression** (`str`) -- the expression.
            One image with one string gives one dict; with a list, a list of dicts; a list of images gives a list
            with one such result per image.
        """
        if "text" in kwargs and expressions is None:
            expressions = kwargs.pop("text")
        if isinstance(image, (list, tuple)) and image and not isinstance(image[0], dict):
            return super().__call__(self._pair_images(list(image), expressions), **kwargs)
        if isinstance(image, (str, os.PathLike, PIL.Image.Image)):
            if expressions is None:
                raise ValueError("Pass the referring expression(s) to ground: pipe(image, 'the red car').")
            image = {"image": image, "expressions": expressions}
        elif expressions is not None:
            raise ValueError("Give the expressions inside each {'image': ..., 'expressions': ...} input, not apart.")
        return super().__call__(image, **kwargs)

    @staticmethod
    def _pair_images(images: list, expressions: Any) -> list[dict]:
        """`{"image", "expressions"}` inputs for a list of images: one string for all, or one entry per image."""
        if isinstance(expressions, str):
            return [{"image": image, "expressions": expressions} for image in images]
        if not isinstance(expressions, (list, tuple)) or len(expressions) != len(images):
            count = len(expressions) if isinstance(expressions, (list, tuple)) else type(expressions).__name__
            raise ValueError(
                f"Got {len(images)} images and {count} expressions: pass one string for all images, or a list with "
                "one entry per image (a string, or a list of strings to ground several expressions in that image)."
            )
        return [{"image": image, "expressions": texts} for image, texts in zip(images, expressions)]

    def save_pretrained(self, save_directory: str | os.PathLike, **kwargs: Any) -> None:
        """
        Saves the model and the whole processor (image processor, tokenizer and `max_text_len`), with the pipeline's
        code: the folder loads back with `pipeline("visual-grounding", model=save_directory, trust_remote_code=True)`.
        """
        super().save_pretrained(save_directory, **kwargs)
        self.processor.save_pretrained(save_directory, **kwargs)

    def _sanitize_parameters(self, timeout: float | None = None, **kwargs):
        if kwargs:
            raise TypeError(f"Unknown arguments of the visual-grounding pipeline: {sorted(kwargs)}.")
        preprocess_params = {} if timeout is None else {"timeout": timeout}
        return preprocess_params, {}, {}

    def preprocess(self, inputs: dict, timeout: float | None = None):
        if not isinstance(inputs, dict) or "image" not in inputs:
            raise ValueError(
                "Each input must be an image or a dict {'image': ..., 'expressions': ...}; got "
                f"{type(inputs).__name__}."
            )
        expressions = inputs.get("expressions", inputs.get("text"))
        single = isinstance(expressions, str)
        try:
            texts = self.processor.check_text(expressions)
        except ValueError as error:
            raise ValueError(f"{error} (the expressions of image {inputs['image']!r:.200})") from error
        image = load_grounding_image(inputs["image"], timeout=timeout)
        # the image once, whatever its number of expressions; the processor pads the texts to the model's slots
        pixels = self.processor(images=image, return_tensors="pt")
        pixels["pixel_values"] = pixels["pixel_values"].to(self.dtype)
        tokens = self.processor(text=texts, return_tensors="pt")
        target_size = torch.tensor([[image.height, image.width]])
        for index, text in enumerate(texts):
            yield {
                "is_last": index == len(texts) - 1,
                "single": single,
                "expression": text,
                "target_size": target_size,
                **pixels,
                **{key: value[index : index + 1] for key, value in tokens.items()},
            }

    def _forward(self, model_inputs: dict) -> dict:
        extras = {key: model_inputs.pop(key) for key in ("target_size", "expression", "single", "is_last")}
        outputs = self.model(**model_inputs)
        # pred_boxes first: the batch unpacker reads the batch size from the first entry
        return {"pred_boxes": outputs.pred_boxes, **extras}

    def postprocess(self, model_outputs: list[dict]) -> dict | list[dict]:
        pred_boxes = torch.cat([output["pred_boxes"] for output in model_outputs]).float()
        target_sizes = torch.cat([output["target_size"] for output in model_outputs])
        results = self.image_processor.post_process_visual_grounding(pred_boxes, target_sizes=target_sizes)
        grounded = [
            {
                "box": dict(zip(("xmin", "ymin", "xmax", "ymax"), result["boxes"][0].tolist())),
                "score": result["scores"][0].item(),
                "expression": output["expression"],
            }
            for result, output in zip(results, model_outputs)
        ]
        return grounded[0] if model_outputs[0]["single"] else grounded


__all__ = ["VisualGroundingPipeline", "load_grounding_image"]
