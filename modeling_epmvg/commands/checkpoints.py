# Copyright 2026 The epmvg authors. Licensed under the Apache License, Version 2.0.
"""Loading a saved EpmVG model for the command lines, refusing a checkpoint of another model type by name."""

from transformers import AutoConfig, AutoModel, PreTrainedModel

from modeling_epmvg import EpmVGConfig


def load_grounding_model(
    name_or_path: str, revision: str | None = None, trust_remote_code: bool = False
) -> PreTrainedModel:
    """
    An EpmVG model through `AutoModel` (this package's class, or the checkpoint's own code with
    `trust_remote_code`), in eval mode.

    Raises:
        ValueError: when the folder or Hub id holds no model, or a model of another type (a BERT or DETR checkpoint
            would otherwise load as that model and fail later with a deep traceback).
    """
    kwargs = {"revision": revision, "trust_remote_code": trust_remote_code}
    try:
        config = AutoConfig.from_pretrained(name_or_path, **kwargs)
    except (OSError, ValueError) as error:
        raise ValueError(f"Could not load a model config from {name_or_path!r}: {error}") from error
    if config.model_type != EpmVGConfig.model_type:
        raise ValueError(
            f"{name_or_path!r} holds a {config.model_type!r} checkpoint, not an EpmVG one: give the folder or Hub id "
            "of a model saved by epmvg-train, the TransVG converter or EpmVGForVisualGrounding.save_pretrained."
        )
    return AutoModel.from_pretrained(name_or_path, config=config, **kwargs).eval()


__all__ = ["load_grounding_model"]
