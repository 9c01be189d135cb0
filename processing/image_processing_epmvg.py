# Copyright 2026 The epmvg authors. Licensed under the Apache License, Version 2.0.
"""Image processor class for EpmVG: letterbox into a square canvas, and boxes to and from the canvas frame."""

from collections.abc import Sequence

import numpy as np
import PIL.Image
import torch
from transformers.image_processing_backends import PilBackend
from transformers.image_processing_utils import BatchFeature, get_size_dict
from transformers.image_transforms import convert_to_rgb
from transformers.image_utils import (
    IMAGENET_DEFAULT_MEAN,
    IMAGENET_DEFAULT_STD,
    ChannelDimension,
    ImageInput,
    PILImageResampling,
    SizeDict,
    is_pil_image,
    is_valid_image,
)
from transformers.processing_utils import ImagesKwargs, Unpack
from transformers.utils import TensorType, logging


logger = logging.get_logger(__name__)


# Boxes computed as x + w in floating point may overshoot the image border a little: tolerate and clip that.
BOX_TOLERANCE = 1.0


def get_letterbox_geometry(
    image_size: tuple[int, int], canvas_size: int, do_resize: bool = True, offset: tuple[int, int] | None = None
) -> tuple[float, int, int, int, int]:
    """
    Where an image lands in the square canvas. The one place that defines the letterbox: images, labels and
    post-processing all use it, so boxes round-trip exactly.

    Args:
        image_size (`tuple[int, int]`):
            `(height, width)` of the image given to the processor.
        canvas_size (`int`):
            Side of the square canvas.
        do_resize (`bool`, *optional*, defaults to `True`):
            Whether the long side is resized to `canvas_size` (aspect ratio kept). If `False`, the image keeps its
            size and must fit in the canvas.
        offset (`tuple[int, int]`, *optional*):
            `(top, left)` position of the image in the canvas. Defaults to the centred position.

    Returns:
        `tuple[float, int, int, int, int]`: `(scale, new_height, new_width, top, left)`: the image is resized by
        `scale` to `(new_height, new_width)` and pasted with its top-left corner at canvas pixel `(top, left)`.
    """
    height, width = image_size
    if do_resize:
        scale = canvas_size / max(height, width)
        # an extreme aspect ratio must not round a side down to zero pixels
        new_height, new_width = max(1, round(height * scale)), max(1, round(width * scale))
    elif height > canvas_size or width > canvas_size:
        raise ValueError(
            f"An image of height {height} and width {width} does not fit in the {canvas_size}x{canvas_size} canvas "
            f"with do_resize=False: resize it so that its long side is at most {canvas_size}, or use do_resize=True."
        )
    else:
        scale, new_height, new_width = 1.0, height, width

    if offset is None:
        return scale, new_height, new_width, (canvas_size - new_height) // 2, (canvas_size - new_width) // 2
    top, left = offset
    if not (0 <= top <= canvas_size - new_height and 0 <= left <= canvas_size - new_width):
        raise ValueError(
            f"The offset (top={top}, left={left}) does not fit: an image of height {new_height} and width {new_width} "
            f"in the {canvas_size}x{canvas_size} canvas needs 0 <= top <= {canvas_size - new_height} and "
            f"0 <= left <= {canvas_size - new_width}."
        )
    return scale, new_height, new_width, top, left


def _as_rows(values, name: str, width: int, meaning: str) -> np.ndarray:
    """`values` (list, array or tensor, one row per image; a single row may be given flat) as a float64 (N, width)."""
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu()
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        array = None
    if array is not None and array.ndim == 1:
        array = array[None]
    if array is None or array.ndim != 2 or array.shape[1] != width or len(array) == 0:
        shape = getattr(array, "shape", "ragged")
        raise ValueError(
            f"`{name}` must hold one {meaning} per image, as a list of {width} numbers per image or an array of shape "
            f"(num_images, {width}); got {type(values).__name__} of shape {shape}."
        )
    return array


def _as_integer_rows(values, name: str, meaning: str) -> np.ndarray:
    """Like `_as_rows` for integer pairs such as `(height, width)` or `(top, left)`."""
    array = _as_rows(values, name, 2, meaning)
    if not np.array_equal(array, np.round(array)):
        raise ValueError(f"`{name}` must hold whole numbers of pixels; got {array.tolist()}.")
    return array.astype(np.int64)


def _as_image_sizes(image_sizes) -> np.ndarray:
    """`image_sizes` as an int64 (N, 2) array of positive `(height, width)` pairs."""
    image_sizes = _as_integer_rows(image_sizes, "image_sizes", "(height, width) pair")
    if (image_sizes <= 0).any():
        raise ValueError(f"Image sizes must be positive (height, width) pairs; got {image_sizes.tolist()}.")
    return image_sizes


def _pil_to_rgb_array(image: PIL.Image.Image) -> np.ndarray:
    """
    A PIL image of any mode as an (H, W, 3) RGB array on the 0-255 scale: the one place that decides how each mode
    becomes RGB (the image processor reads it as is; [`to_rgb_image`] rounds it to 8 bits for PIL code).
    """
    if image.mode.startswith("I"):
        # 16-bit (and 32-bit integer) grey: PIL's own conversion would clip everything above 255 to white
        grey = np.clip(np.asarray(image, dtype=np.float32), 0, 65535) / 257.0
        return np.repeat(grey[..., None], 3, axis=-1)
    if image.mode == "F":
        return np.repeat(np.asarray(image, dtype=np.float32)[..., None], 3, axis=-1)
    # alpha (RGBA, LA, PA, P with transparency) is composited on white; CMYK, L, P, ... are converted by PIL
    return convert_to_rgb(image, return_numpy=True)


def to_rgb_image(image: PIL.Image.Image) -> PIL.Image.Image:
    """
    A PIL image of any mode as an 8-bit RGB image, converted as the image processor converts it: 16-bit grey is
    scaled (PIL's `convert("RGB")` turns it white), transparency is composited on white. Augmentation, drawing and
    the CLIP teacher use it, so they see the pixels the model sees.
    """
    if image.mode == "RGB":
        return image
    pixels = np.clip(np.round(_pil_to_rgb_array(image)), 0, 255).astype(np.uint8)
    return PIL.Image.fromarray(pixels)


def _affine_normalization(
    do_rescale: bool, rescale_factor: float, do_normalize: bool, image_mean, image_std
) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel `(scale, shift)` with `x * scale - shift == normalize(rescale(x))`, as (3, 1, 1) float32 arrays."""
    rescale = rescale_factor if do_rescale else 1.0
    mean = np.broadcast_to(np.asarray(image_mean if do_normalize else 0.0, dtype=np.float64), (3,))
    std = np.broadcast_to(np.asarray(image_std if do_normalize else 1.0, dtype=np.float64), (3,))
    return (rescale / std).astype(np.float32)[:, None, None], (mean / std).astype(np.float32)[:, None, None]


class EpmVGImageProcessor(PilBackend):
    r"""
    Constructs an EpmVG image processor (TransVG's evaluation transform): the image is resized so that its long side
    equals the canvas side (aspect ratio kept; new height and width are `round(height * s)` and `round(width * s)`
    with `s = size / max(height, width)`), normalized with the ImageNet mean and standard deviation, and pasted into
    a square canvas, centred unless `offsets` are given. The rest of the canvas is 0 after normalization, i.e. the
    mean colour. `pixel_mask` is 1 on image pixels and 0 on padding.

    Boxes go in as `(x1, y1, x2, y2)` pixels of the original image and come out as `labels`: normalized
    `(center_x, center_y, width, height)` in the padded canvas, the frame the model predicts in.
    [`~EpmVGImageProcessor.post_process_visual_grounding`] maps predictions back to original-image pixels.

    Inputs may be PIL images of any mode, numpy arrays `(H, W)`, `(H, W, C)` or `(C, H, W)` and torch tensors
    `(C, H, W)`, with 1, 3 or 4 channels; they are always converted to RGB. Transparency is composited on white.
    16-bit PIL images (modes `I;16`, `I`) are scaled to the 8-bit range. Arrays and tensors are read on the 0-255
    scale, like PIL images: pass `do_rescale=False` for float images already in [0, 1].

    Args:
        do_resize (`bool`, *optional*, defaults to `True`):
            Whether to resize the long side of each image to the canvas side. With `False` (e.g. when augmentation
            already resized the image) the image keeps its size and must fit in the canvas.
        size (`int` or `dict[str, int]`, *optional*, defaults to `{"height": 640, "width": 640}`):
            The square canvas: an int or a dict with equal `height` and `width`.
        resample (`PILImageResampling`, *optional*, defaults to `PILImageResampling.BILINEAR`):
            Resampling filter used when resizing.
        do_rescale (`bool`, *optional*, defaults to `True`):
            Whether to rescale pixel values by `rescale_factor`.
        rescale_factor (`float`, *optional*, defaults to `1/255`):
            Rescaling factor.
        do_normalize (`bool`, *optional*, defaults to `True`):
            Whether to normalize with `image_mean` and `image_std`.
        image_mean (`list[float]`, *optional*, defaults to the ImageNet mean):
            Mean of each channel.
        image_std (`list[float]`, *optional*, defaults to the ImageNet standard deviation):
            Standard deviation of each channel.

    Examples:

    ```python
    >>> from PIL import Image
    >>> from processing import EpmVGImageProcessor

    >>> image_processor = EpmVGImageProcessor()
    >>> image = Image.new("RGB", (800, 600))
    >>> inputs = image_processor(image, boxes=[[100, 50, 300, 250]], return_tensors="pt")
    >>> inputs["pixel_values"].shape, inputs["pixel_mask"].shape, inputs["labels"]
    (torch.Size([1, 3, 640, 640]), torch.Size([1, 640, 640]), tensor([[0.2500, 0.3125, 0.2500, 0.2500]]))
    >>> image_processor.post_process_visual_grounding(inputs["labels"], target_sizes=[(600, 800)])[0]["boxes"]
    tensor([[100.,  50., 300., 250.]])
    ```
    """

    resample = PILImageResampling.BILINEAR
    image_mean = IMAGENET_DEFAULT_MEAN
    image_std = IMAGENET_DEFAULT_STD
    size = {"height": 640, "width": 640}
    do_resize = True
    do_rescale = True
    do_normalize = True
    model_input_names = ["pixel_values", "pixel_mask"]

    def __init__(self, **kwargs: Unpack[ImagesKwargs]):
        super().__init__(**kwargs)
        self._canvas_size(self.size)

    @staticmethod
    def _canvas_size(size: int | dict | SizeDict) -> int:
        """The side of the square canvas described by `size`."""
        size = get_size_dict(size)
        if size.get("height") is None or size["height"] != size.get("width"):
            raise ValueError(
                f"EpmVG letterboxes images into a square canvas: `size` must be an int or a dict with equal 'height' "
                f"and 'width' (e.g. size=640); got {dict(size)}."
            )
        return size["height"]

    def _prepare_images_structure(self, images: ImageInput, expected_ndims: int = 3) -> list:
        """One image, a batched array / tensor, or a sequence of images, as a flat list of images."""
        if not is_valid_image(images) and isinstance(images, Sequence) and not isinstance(images, str):
            # e.g. a `datasets` column, which is a sequence but not a list
            images = list(images)
        images = self.fetch_images(images)
        if is_valid_image(images):
            return [images] if is_pil_image(images) or images.ndim <= 3 else list(images)
        if not (isinstance(images, (list, tuple)) and len(images) > 0 and all(map(is_valid_image, images))):
            got = "an empty list" if isinstance(images, (list, tuple)) and not images else type(images).__name__
            raise ValueError(
                "`images` must be an image (PIL.Image, numpy array or torch tensor) or a non-empty list of images; "
                f"got {got}."
            )
        return list(images)

    def process_image(
        self, image: ImageInput, input_data_format: str | ChannelDimension | None = None, **kwargs
    ) -> np.ndarray:
        """One image of any supported type and mode as an RGB `(3, H, W)` array on the 0-255 scale."""
        if is_pil_image(image):
            image, input_data_format = _pil_to_rgb_array(image), ChannelDimension.LAST
        elif isinstance(image, torch.Tensor):
            image = image.detach().cpu().numpy()
        if image.ndim == 2:
            image, input_data_format = image[None], ChannelDimension.FIRST
        if image.ndim != 3:
            raise ValueError(
                f"Got an image of shape {image.shape}: images must be arrays of shape (H, W), (H, W, C) or (C, H, W) "
                "with 1, 3 or 4 channels, or a list of such images."
            )
        if image.size == 0:
            raise ValueError(
                f"Got an empty image of shape {image.shape}: images need a height and a width of 1 or more."
            )
        return super().process_image(image, do_convert_rgb=True, input_data_format=input_data_format)

    def resize(
        self, image: np.ndarray, size: SizeDict, resample: PILImageResampling | None = None, **kwargs
    ) -> np.ndarray:
        """
        Resize a `(C, H, W)` array to `(size.height, size.width)` with PIL, one 32-bit float channel at a time, so
        that any value range (uint8, 16-bit, float) is resized without clipping or rounding.
        """
        resample = self.resample if resample is None else resample
        channels = [
            PIL.Image.fromarray(channel.astype(np.float32)).resize((size.width, size.height), resample)
            for channel in image
        ]
        return np.stack([np.asarray(channel) for channel in channels])

    def preprocess(
        self,
        images: ImageInput,
        boxes: list | np.ndarray | torch.Tensor | None = None,
        offsets: list | np.ndarray | torch.Tensor | None = None,
        **kwargs: Unpack[ImagesKwargs],
    ) -> BatchFeature:
        r"""
        Letterbox a batch of images (and their boxes) into the square canvas.

        Args:
            images (`ImageInput`):
                One image or a list of images (PIL, numpy or torch; see the class docstring).
            boxes (`list`, `np.ndarray` or `torch.Tensor` of shape `(num_images, 4)`, *optional*):
                One `(x1, y1, x2, y2)` box per image, in pixels of the image as given. A single image's box may be
                a flat list of 4 numbers. Converted to `labels`.
            offsets (`list`, `np.ndarray` or `torch.Tensor` of shape `(num_images, 2)`, *optional*):
                `(top, left)` canvas position of each (resized) image, e.g. drawn at random by training
                augmentation. Defaults to the centred position.
            do_resize, size, resample, do_rescale, rescale_factor, do_normalize, image_mean, image_std:
                Override the processor's settings for this call.
            return_tensors (`str` or [`~utils.TensorType`], *optional*):
                `"pt"` for torch tensors, `"np"` or `None` for numpy arrays.

        Returns:
            [`BatchFeature`]: with
            - **pixel_values** (`(num_images, 3, size, size)`, float32) -- the canvases.
            - **pixel_mask** (`(num_images, size, size)`, int64) -- 1 on image pixels, 0 on padding.
            - **labels** (`(num_images, 4)`, float32) -- normalized canvas `(center_x, center_y, width, height)`;
              only when `boxes` are given.
        """
        return super().preprocess(images, boxes, offsets, **kwargs)

    def _preprocess(
        self,
        images: list[np.ndarray],
        boxes: list | np.ndarray | torch.Tensor | None,
        offsets: list | np.ndarray | torch.Tensor | None,
        do_resize: bool,
        size: SizeDict,
        resample: PILImageResampling | None,
        do_rescale: bool,
        rescale_factor: float,
        do_normalize: bool,
        image_mean: float | list[float] | None,
        image_std: float | list[float] | None,
        return_tensors: str | TensorType | None,
        **kwargs,
    ) -> BatchFeature:
        canvas_size = self._canvas_size(size)
        image_sizes = np.array([image.shape[-2:] for image in images])
        # boxes first: bad boxes or offsets fail before any pixel work
        data = {}
        if boxes is not None:
            data["labels"] = self.boxes_to_canvas(boxes, image_sizes, offsets, do_resize, canvas_size)
        geometries = self._letterbox_geometries(image_sizes, canvas_size, offsets, do_resize)

        scale, shift = _affine_normalization(do_rescale, rescale_factor, do_normalize, image_mean, image_std)
        pixel_values = np.zeros((len(images), 3, canvas_size, canvas_size), dtype=np.float32)
        pixel_mask = np.zeros((len(images), canvas_size, canvas_size), dtype=np.int64)
        for index, (image, (_, new_height, new_width, top, left)) in enumerate(zip(images, geometries)):
            if do_resize:
                image = self.resize(image, SizeDict(height=new_height, width=new_width), resample)
            # rescale and normalize as one affine map written straight into the canvas: no intermediate copies
            region = pixel_values[index, :, top : top + new_height, left : left + new_width]
            np.multiply(image, scale, out=region, casting="unsafe")
            region -= shift
            pixel_mask[index, top : top + new_height, left : left + new_width] = 1
        data.update(pixel_values=pixel_values, pixel_mask=pixel_mask)
        return BatchFeature(data=data, tensor_type=return_tensors)

    def _letterbox_geometries(
        self, image_sizes: np.ndarray, canvas_size: int, offsets=None, do_resize: bool | None = None
    ) -> list[tuple[float, int, int, int, int]]:
        """[`get_letterbox_geometry`] of every image, after checking that there is one offset per image."""
        if offsets is None:
            offsets = [None] * len(image_sizes)
        else:
            offsets = _as_integer_rows(offsets, "offsets", "(top, left) pair").tolist()
            if len(offsets) != len(image_sizes):
                raise ValueError(
                    f"Got {len(offsets)} offsets for {len(image_sizes)} images: give one (top, left) pair per image, "
                    "or offsets=None to centre every image."
                )
        do_resize = self.do_resize if do_resize is None else do_resize
        return [
            get_letterbox_geometry(tuple(image_size), canvas_size, do_resize, offset)
            for image_size, offset in zip(image_sizes.tolist(), offsets)
        ]

    def _box_transform(
        self, num_boxes: int, image_sizes, offsets, do_resize: bool | None, size: int | dict | None
    ) -> tuple[int, np.ndarray, np.ndarray, np.ndarray]:
        """
        `(canvas_size, scale, shift, limits)` such that a box in image pixels is `box * scale + shift` in canvas
        pixels, and `limits` = `(width, height, width, height)` of each image.
        """
        canvas_size = self._canvas_size(self.size if size is None else size)
        image_sizes = _as_image_sizes(image_sizes)
        if num_boxes != len(image_sizes):
            raise ValueError(
                f"Got {num_boxes} boxes for {len(image_sizes)} images: give one box and one image per expression."
            )
        scale, _, _, top, left = np.array(self._letterbox_geometries(image_sizes, canvas_size, offsets, do_resize)).T
        heights, widths = image_sizes.T
        limits = np.stack([widths, heights, widths, heights], axis=1)
        return canvas_size, scale[:, None], np.stack([left, top, left, top], axis=1), limits

    def boxes_to_canvas(
        self,
        boxes: list | np.ndarray | torch.Tensor,
        image_sizes: list | np.ndarray | torch.Tensor,
        offsets: list | np.ndarray | torch.Tensor | None = None,
        do_resize: bool | None = None,
        size: int | dict | None = None,
    ) -> np.ndarray:
        """
        Convert `(x1, y1, x2, y2)` boxes in image pixels to normalized canvas `(center_x, center_y, width, height)`,
        the frame of the model's labels. Inverse of [`~EpmVGImageProcessor.boxes_from_canvas`].

        Args:
            boxes (`list`, `np.ndarray` or `torch.Tensor` of shape `(num_images, 4)`):
                One `(x1, y1, x2, y2)` box per image, in pixels. Boxes may overshoot the image by up to 1 pixel
                (they are clipped); farther out, or with `x2 <= x1` or `y2 <= y1`, they are an error.
            image_sizes (`list`, `np.ndarray` or `torch.Tensor` of shape `(num_images, 2)`):
                `(height, width)` of each image as given to the processor.
            offsets (`list`, `np.ndarray` or `torch.Tensor` of shape `(num_images, 2)`, *optional*):
                `(top, left)` canvas position of each image. Defaults to the centred position.
            do_resize (`bool`, *optional*, defaults to `self.do_resize`):
                Whether the images are resized to the canvas (see [`get_letterbox_geometry`]).
            size (`int` or `dict[str, int]`, *optional*, defaults to `self.size`):
                The square canvas.

        Returns:
            `np.ndarray` of shape `(num_images, 4)`, float32: the labels.
        """
        boxes = _as_rows(boxes, "boxes", 4, "(x1, y1, x2, y2) box")
        canvas_size, scale, shift, limits = self._box_transform(len(boxes), image_sizes, offsets, do_resize, size)
        for index, (box, limit) in enumerate(zip(boxes, limits)):
            if not (np.isfinite(box).all() and (box >= -BOX_TOLERANCE).all() and (box <= limit + BOX_TOLERANCE).all()):
                raise ValueError(
                    f"Box {index} {box.tolist()} lies outside its image (width {limit[0]}, height {limit[1]}): boxes "
                    "must be (x1, y1, x2, y2) in pixels of the image as given (not normalized to [0, 1])."
                )
        boxes = np.clip(boxes, 0, limits)
        looks_normalized = (boxes <= 1).all(axis=1) & (limits > 2).any(axis=1)
        if looks_normalized.any():
            logger.warning_once(
                "A box has every coordinate <= 1 on an image larger than 2 pixels: boxes are (x1, y1, x2, y2) in "
                "pixels; multiply normalized boxes by the image width and height first."
            )
        for index, (x1, y1, x2, y2) in enumerate(boxes.tolist()):
            if x2 <= x1 or y2 <= y1:
                raise ValueError(
                    f"Box {index} {[x1, y1, x2, y2]} is empty (x2 <= x1 or y2 <= y1 inside the image): boxes must be "
                    "(x1, y1, x2, y2) corners; convert COCO (x, y, width, height) boxes with x2 = x + width, "
                    "y2 = y + height."
                )
        corners = boxes * scale + shift
        centers, extents = (corners[:, :2] + corners[:, 2:]) / 2, corners[:, 2:] - corners[:, :2]
        return (np.concatenate([centers, extents], axis=1) / canvas_size).astype(np.float32)

    def boxes_from_canvas(
        self,
        labels: list | np.ndarray | torch.Tensor,
        image_sizes: list | np.ndarray | torch.Tensor,
        offsets: list | np.ndarray | torch.Tensor | None = None,
        do_resize: bool | None = None,
        size: int | dict | None = None,
    ) -> np.ndarray:
        """
        Convert normalized canvas `(center_x, center_y, width, height)` boxes (labels or predictions) to
        `(x1, y1, x2, y2)` pixels of the image, clipped to the image. Inverse of
        [`~EpmVGImageProcessor.boxes_to_canvas`]; the arguments are the same.

        Returns:
            `np.ndarray` of shape `(num_images, 4)`, float64: the boxes in image pixels.
        """
        labels = _as_rows(labels, "labels", 4, "(center_x, center_y, width, height) box")
        canvas_size, scale, shift, limits = self._box_transform(len(labels), image_sizes, offsets, do_resize, size)
        centers, extents = labels[:, :2] * canvas_size, labels[:, 2:] * canvas_size
        corners = np.concatenate([centers - extents / 2, centers + extents / 2], axis=1)
        return np.clip((corners - shift) / scale, 0, limits)

    def post_process_visual_grounding(
        self, outputs, target_sizes: list[tuple[int, int]] | np.ndarray | torch.Tensor
    ) -> list[dict[str, torch.Tensor]]:
        """
        Convert the predictions of [`EpmVGForVisualGrounding`] to boxes in original-image pixels, in
        `(top_left_x, top_left_y, bottom_right_x, bottom_right_y)` format, for images processed with the default
        centred placement.

        Args:
            outputs ([`EpmVGVisualGroundingOutput`] or `torch.Tensor` of shape `(batch_size, 4)`):
                The model output (its `pred_boxes` are used) or the predicted boxes themselves, normalized canvas
                `(center_x, center_y, width, height)`.
            target_sizes (`list[tuple[int, int]]`, `np.ndarray` or `torch.Tensor` of shape `(batch_size, 2)`):
                `(height, width)` of each original image.

        Returns:
            `list[dict[str, torch.Tensor]]`: one dict per image with
            - **boxes** (`(1, 4)`, float32) -- the box in image pixels, clipped to the image.
            - **scores** (`(1,)`, float32) -- always 1: EpmVG regresses exactly one box per expression and has no
              confidence output. The key is kept so that the output has the format of the detection
              post-processors.
        """
        pred_boxes = torch.as_tensor(getattr(outputs, "pred_boxes", outputs))
        boxes = self.boxes_from_canvas(pred_boxes, target_sizes)
        boxes = torch.as_tensor(boxes, dtype=torch.float32, device=pred_boxes.device)
        return [{"scores": torch.ones(1, device=pred_boxes.device), "boxes": box[None]} for box in boxes]


__all__ = ["EpmVGImageProcessor", "get_letterbox_geometry", "to_rgb_image"]
