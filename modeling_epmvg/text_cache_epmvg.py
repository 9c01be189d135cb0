# Copyright 2026 The epmvg authors. Licensed under the Apache License, Version 2.0.
"""
The frozen text encoder's outputs, computed once per distinct expression and kept in memory, so that training with
a frozen text encoder skips it at every step. Not shipped to the Hub: a training tool.
"""

from collections.abc import Iterable

import numpy as np
import torch

from .modeling_epmvg import EpmVGForVisualGrounding, _has_trainable_parameters


# the batch key of the cached states, the name of the model's input
TEXT_HIDDEN_STATES = "text_hidden_states"
# BERT-family dropout settings: a cache holds the states without them
TEXT_DROPOUT_FIELDS = ("hidden_dropout_prob", "attention_probs_dropout_prob")


class EpmVGTextStateCache:
    r"""
    The frozen text encoder's last hidden state of each distinct expression, at its real tokens only
    (`(num_tokens, text_config.hidden_size)` float32), tokenized by the student's processor as the data collator
    tokenizes it. [`EpmVGDataCollator`] given one adds `text_hidden_states` to each batch, and the model then skips
    its text encoder: the same outputs as running it (the padding slots, which attention masks out, hold zeros).

    The expressions must be what the model reads at training time: do not combine the cache with an augmentation
    that rewrites them (TransVG's flip swaps "left" and "right").

    Args:
        states (`dict[str, np.ndarray]`): expression -> its states at its real tokens.

    Example:

    ```python
    >>> from modeling_epmvg.text_cache_epmvg import EpmVGTextStateCache
    >>> model.freeze_text_encoder()  # doctest: +SKIP
    >>> cache = EpmVGTextStateCache.from_texts(train_dataset["expression"], model, processor)  # doctest: +SKIP
    >>> collator = EpmVGDataCollator(processor, text_states=cache)  # doctest: +SKIP
    ```
    """

    def __init__(self, states: dict[str, np.ndarray]):
        self.states = states

    def __len__(self) -> int:
        return len(self.states)

    @classmethod
    def from_texts(
        cls, texts: Iterable[str], model: EpmVGForVisualGrounding, processor, batch_size: int = 256
    ) -> "EpmVGTextStateCache":
        r"""
        Runs the model's frozen text encoder once on each distinct text.

        Args:
            texts (`Iterable[str]`): the expressions (repeats are encoded once).
            model ([`EpmVGForVisualGrounding`]): the student, its text encoder frozen.
            processor ([`EpmVGProcessor`]): the student's processor.
            batch_size (`int`, *optional*, defaults to 256): texts per forward.

        Raises:
            `ValueError`: when the text encoder is trainable (its states would change at every step) or has dropout.
        """
        encoder = model.model.text_backbone
        if _has_trainable_parameters(encoder):
            raise ValueError(
                "The text encoder is trainable, so its states change at every step and cannot be cached: freeze it "
                "first (model.freeze_text_encoder(), or --freeze_text_encoder true), or do not cache them."
            )
        dropout = {name: getattr(encoder.config, name, 0.0) for name in TEXT_DROPOUT_FIELDS}
        if any(dropout.values()):
            raise ValueError(
                f"The text encoder has dropout {dropout}, which training applies even to a frozen encoder and a cache "
                "cannot: set it to 0 (e.g. --text_config_overrides "
                '\'{"hidden_dropout_prob": 0, "attention_probs_dropout_prob": 0}\'), or do not cache the states.'
            )
        device = next(encoder.parameters()).device
        distinct = list(dict.fromkeys(texts))
        states = {}
        was_training = encoder.training
        encoder.eval()
        for start in range(0, len(distinct), batch_size):
            chunk = distinct[start : start + batch_size]
            tokens = processor(text=chunk, return_tensors="pt")
            inputs = {key: tokens[key].to(device) for key in ("input_ids", "attention_mask", "token_type_ids")
                      if key in tokens}  # fmt: skip
            with torch.inference_mode():
                hidden = encoder(**inputs).last_hidden_state.float().cpu().numpy()
            for text, state, mask in zip(chunk, hidden, tokens["attention_mask"].bool().numpy()):
                states[text] = state[mask]
        encoder.train(was_training)
        return cls(states)

    def _state(self, text: str, mask: np.ndarray) -> np.ndarray:
        state = self.states.get(text)
        if state is None:
            raise ValueError(
                f"The expression {text!r} is not in the text-state cache: build the cache from the expressions of "
                "every split it serves (EpmVGTextStateCache.from_texts)."
            )
        if len(state) != mask.sum():
            raise ValueError(
                f"The cached states of {text!r} cover {len(state)} tokens but the processor gives it {mask.sum()}: "
                "the cache was made with another tokenizer or max_text_len. Build it again with this model's "
                "processor."
            )
        return state

    def __call__(self, texts: list[str], attention_mask: torch.Tensor) -> torch.Tensor:
        """
        The texts' states at their real tokens (`attention_mask`), zeros at the padding: `(batch_size,
        sequence_length, hidden_size)`.
        """
        masks = attention_mask.bool().numpy()
        states = [self._state(text, mask) for text, mask in zip(texts, masks)]
        padded = np.zeros((*masks.shape, states[0].shape[-1]), dtype=np.float32)
        for index, (state, mask) in enumerate(zip(states, masks)):
            padded[index, mask] = state
        return torch.from_numpy(padded)


__all__ = ["TEXT_HIDDEN_STATES", "EpmVGTextStateCache"]
