# Copyright 2026 The epmvg authors. Licensed under the Apache License, Version 2.0.
"""Processor class for EpmVG: the image processor and a BERT-family tokenizer."""

import numpy as np
import torch
from transformers.image_processing_utils import BatchFeature
from transformers.image_utils import ImageInput
from transformers.processing_utils import ProcessingKwargs, ProcessorMixin, Unpack
from transformers.tokenization_utils_base import TextInput
from transformers.utils import logging

# the pipeline ships with the processor: save_pretrained copies the files this one imports, so a saved folder holds
# pipeline_epmvg.py, which config.custom_pipelines names for transformers.pipeline(..., trust_remote_code=True)
from .image_processing_epmvg import EpmVGImageProcessor
from .pipeline_epmvg import VisualGroundingPipeline  # noqa: F401


logger = logging.get_logger(__name__)


class EpmVGProcessor(ProcessorMixin):
    r"""
    Constructs an EpmVG processor: an [`EpmVGImageProcessor`] (letterbox, normalization, boxes to labels) and a
    BERT-family tokenizer (referring expressions padded and truncated to `max_text_len` tokens).

    Args:
        image_processor ([`EpmVGImageProcessor`]):
            The image processor.
        tokenizer ([`PreTrainedTokenizerBase`]):
            Any BERT-family tokenizer (the text encoder's).
        max_text_len (`int`):
            Number of text slots of the model (`EpmVGConfig.max_text_len`): every expression is padded or truncated
            to this many tokens. [`~EpmVGProcessor.from_model_config`] reads it (and the canvas size) from the
            model's config.

    Examples:

    ```python
    >>> from PIL import Image
    >>> from transformers import AutoTokenizer
    >>> from modeling_epmvg import EpmVGConfig
    >>> from processing import EpmVGProcessor

    >>> tokenizer = AutoTokenizer.from_pretrained("bert-base-uncased")
    >>> processor = EpmVGProcessor.from_model_config(EpmVGConfig(), tokenizer)  # 640x640 canvas, 20 text slots
    >>> image = Image.new("RGB", (800, 600))
    >>> inputs = processor(images=image, text="the man on the left", boxes=[[100, 50, 300, 250]], return_tensors="pt")
    >>> sorted(inputs.keys())
    ['attention_mask', 'input_ids', 'labels', 'pixel_mask', 'pixel_values', 'token_type_ids']
    >>> inputs["input_ids"].shape
    torch.Size([1, 20])
    ```
    """

    # every expression fills the model's text slots: padded or truncated to `max_length=max_text_len` (see __call__)
    text_kwargs = {"padding": "max_length", "truncation": True}

    def __init__(self, image_processor=None, tokenizer=None, max_text_len: int | None = None, **kwargs):
        if max_text_len is None:
            raise ValueError(
                "EpmVGProcessor needs `max_text_len`, the model's number of text slots: build it with "
                "EpmVGProcessor.from_model_config(model.config, tokenizer)."
            )
        super().__init__(image_processor, tokenizer, **kwargs)
        self.max_text_len = max_text_len
        self._truncation_reported = False

    @classmethod
    def from_model_config(cls, config, tokenizer, **image_processor_kwargs) -> "EpmVGProcessor":
        """
        The processor that feeds a model with `config` (an [`EpmVGConfig`]): its canvas (`image_size`) and its text
        slots (`max_text_len`), with `tokenizer` (the text encoder's). `image_processor_kwargs` go to
        [`EpmVGImageProcessor`] (e.g. `image_mean`).
        """
        image_processor = EpmVGImageProcessor(size=config.image_size, **image_processor_kwargs)
        return cls(image_processor, tokenizer, max_text_len=config.max_text_len)

    def __call__(
        self,
        images: ImageInput | None = None,
        text: TextInput | list[TextInput] | None = None,
        boxes: list | np.ndarray | torch.Tensor | None = None,
        offsets: list | np.ndarray | torch.Tensor | None = None,
        **kwargs: Unpack[ProcessingKwargs],
    ) -> BatchFeature:
        r"""
        Prepare model inputs from images, referring expressions and (for training or evaluation) boxes.

        Args:
            images (`ImageInput`, *optional*):
                One image or a list of images (see [`EpmVGImageProcessor`]).
            text (`str` or `list[str]`, *optional*):
                One referring expression per image.
            boxes (`list`, `np.ndarray` or `torch.Tensor` of shape `(num_images, 4)`, *optional*):
                One `(x1, y1, x2, y2)` pixel box per image, converted to `labels`.
            offsets (`list`, `np.ndarray` or `torch.Tensor` of shape `(num_images, 2)`, *optional*):
                `(top, left)` canvas position of each image (training augmentation). Defaults to centred.
            kwargs:
                Tokenizer and image processor options (e.g. `return_tensors="pt"`, `max_length`, `do_resize`).

        Returns:
            [`BatchFeature`]: `input_ids`, `attention_mask` (and `token_type_ids` if the tokenizer returns them)
            when `text` is given; `pixel_values`, `pixel_mask` when `images` are given; `labels` when `boxes` are.
        """
        if images is None and text is None:
            raise ValueError("Nothing to process: pass `images`, `text` or both.")
        if boxes is not None and images is None:
            raise ValueError("`boxes` are in pixels of their images: pass the `images` together with the `boxes`.")
        # the model's text slots win over a max_length saved with the tokenizer (sentence-transformers save 128)
        kwargs.setdefault("max_length", self.max_text_len)
        output_kwargs = self._merge_kwargs(tokenizer_init_kwargs=self.tokenizer.init_kwargs, **kwargs)

        data = {}
        if images is not None:
            data.update(self.image_processor(images, boxes, offsets, **output_kwargs["images_kwargs"]))
        if text is not None:
            texts = self.check_text(text, num_images=len(data["pixel_values"]) if images is not None else None)
            tokens = self.tokenizer(texts, **output_kwargs["text_kwargs"])
            self._warn_if_truncated(texts, tokens, output_kwargs["text_kwargs"].get("max_length"))
            data.update(tokens)
        return BatchFeature(data=data, tensor_type=output_kwargs["text_kwargs"].get("return_tensors"))

    def _warn_if_truncated(self, texts: list[str], tokens, max_length: int | None) -> None:
        """Warns (once) when an expression has more tokens than the text slots and so lost its end."""
        if self._truncation_reported or max_length is None or "attention_mask" not in tokens:
            return
        # only a row that fills every slot can have been cut: tokenize just those again, untruncated
        full = np.asarray(tokens["attention_mask"]).sum(-1) >= max_length
        for text in (text for text, is_full in zip(texts, full) if is_full):
            if len(self.tokenizer(text, truncation=False)["input_ids"]) > max_length:
                self._truncation_reported = True
                logger.warning(
                    f"An expression is longer than the {max_length} text slots (max_text_len, [CLS] and [SEP] "
                    "included) and was truncated, e.g. %r; later ones are truncated without a warning. Use a model "
                    "with a larger max_text_len (TransVG uses 40 for RefCOCOg) to keep whole expressions.",
                    text,
                )
                return

    def check_model_config(self, config) -> None:
        """
        Checks that this processor can feed a model with `config` (an [`EpmVGConfig`]).

        Raises:
            ValueError: when the tokenizer's vocabulary is larger than the text encoder's embedding table (its extra
                token ids would fail inside the embedding lookup), or when the canvas size or the number of text
                slots differs from the model's (a shape error deep in the model otherwise), naming both values.
        """
        canvas = self.image_processor._canvas_size(self.image_processor.size)
        for name, ours, model_value in (
            ("image size", canvas, config.image_size),
            ("text length (max_text_len)", self.max_text_len, config.max_text_len),
        ):
            if ours != model_value:
                raise ValueError(
                    f"The processor's {name} is {ours} but the model's is {model_value}: use the processor saved with "
                    "the model, or build one from the model's config with "
                    "EpmVGProcessor.from_model_config(model.config, tokenizer)."
                )
        vocab_size = config.text_config.vocab_size
        if len(self.tokenizer) > vocab_size:
            raise ValueError(
                f"The tokenizer has {len(self.tokenizer)} tokens but the model's text encoder embeds only "
                f"{vocab_size}: use the tokenizer of the model's text encoder (its checkpoint's tokenizer), or build "
                "the model from that text encoder (--text_model_name_or_path)."
            )

    @staticmethod
    def check_text(text: TextInput | list[TextInput], num_images: int | None = None) -> list[str]:
        """`text` as a list of non-empty expressions (one per image when `num_images` is given); else a ValueError."""
        texts = [text] if isinstance(text, str) else text
        if not (isinstance(texts, (list, tuple)) and len(texts) > 0 and all(isinstance(t, str) for t in texts)):
            raise ValueError(f"`text` must be a string or a non-empty list of strings; got {type(text).__name__}.")
        for index, expression in enumerate(texts):
            if not expression.strip():
                raise ValueError(
                    f"Expression {index} is empty ({expression!r}): every expression must name an object in its image."
                )
        if num_images is not None and len(texts) != num_images:
            raise ValueError(
                f"Got {len(texts)} texts for {num_images} images: give exactly one referring expression per image "
                "(repeat an image to ground several expressions in it)."
            )
        return list(texts)

    def post_process_visual_grounding(
        self, outputs, target_sizes: list[tuple[int, int]] | np.ndarray | torch.Tensor
    ) -> list[dict[str, torch.Tensor]]:
        """
        Convert model predictions to boxes in original-image pixels. Forwards all arguments to
        [`EpmVGImageProcessor.post_process_visual_grounding`]; see its docstring.
        """
        return self.image_processor.post_process_visual_grounding(outputs, target_sizes=target_sizes)


__all__ = ["EpmVGProcessor"]
