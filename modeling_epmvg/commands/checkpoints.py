# Copyright 2026 The epmvg authors. Licensed under the Apache License, Version 2.0.
"""
The one way the command lines load a saved EpmVG checkpoint (a local folder or Hub id): its config (refusing a
checkpoint of another model type by name), the model, its processor, or the `"visual-grounding"` pipeline over both.
The code is this package's, or the checkpoint's own with `trust_remote_code`.
"""

from transformers import AutoConfig, AutoModel, AutoProcessor, PretrainedConfig, PreTrainedModel, pipeline
from transformers.dynamic_module_utils import get_class_from_dynamic_module

from modeling_epmvg.configuration_epmvg import check_model_type


def load_grounding_config(
    name_or_path: str, revision: str | None = None, trust_remote_code: bool = False
) -> PretrainedConfig:
    """
    The EpmVG config of a checkpoint.

    Raises:
        ValueError: when the folder or Hub id holds no model, or a model of another type (a BERT or DETR checkpoint
            would otherwise load as that model and fail later with a deep traceback).
    """
    try:
        config = AutoConfig.from_pretrained(name_or_path, revision=revision, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as error:
        raise ValueError(f"Could not load a model config from {name_or_path!r}: {error}") from error
    check_model_type(config.model_type, name_or_path)
    return config


def load_grounding_model(
    name_or_path: str, revision: str | None = None, trust_remote_code: bool = False
) -> PreTrainedModel:
    """An EpmVG model through `AutoModel`, in eval mode (see `load_grounding_config` for what it refuses)."""
    config = load_grounding_config(name_or_path, revision, trust_remote_code)
    try:
        model = AutoModel.from_pretrained(
            name_or_path, config=config, revision=revision, trust_remote_code=trust_remote_code
        )
    except OSError as error:  # e.g. a config without its weights file
        raise ValueError(f"Could not load an EpmVG model from {name_or_path!r}: {error}") from error
    return model.eval()


def load_grounding_processor(
    model: str, processor: str | None = None, revision: str | None = None, trust_remote_code: bool = False
):
    """
    The EpmVG processor saved with `model`, or the one in `processor` (another folder or Hub id).

    Raises:
        ValueError: when there is none, saying how to save one or where to point.
    """
    import processing  # noqa: F401 - registers EpmVGProcessor with AutoProcessor

    source = processor or model
    try:
        return AutoProcessor.from_pretrained(source, revision=revision, trust_remote_code=trust_remote_code)
    except (OSError, ValueError, TypeError) as error:
        raise ValueError(
            f"Could not load an EpmVG processor from {source!r} ({error}). Save one next to the model (EpmVGProcessor"
            ".from_model_config(model.config, tokenizer).save_pretrained(folder)) or pass --processor PATH."
        ) from error


def load_grounding_checkpoint(
    model: str, processor: str | None = None, revision: str | None = None, trust_remote_code: bool = False
) -> tuple[PreTrainedModel, object]:
    """The model (eval mode) and its processor, checked against each other (vocabulary, image size, text length)."""
    loaded_model = load_grounding_model(model, revision, trust_remote_code)
    loaded_processor = load_grounding_processor(model, processor, revision, trust_remote_code)
    loaded_processor.check_model_config(loaded_model.config)
    return loaded_model, loaded_processor


def load_grounding_pipeline(
    model: str,
    processor: str | None = None,
    device: str | None = None,
    trust_remote_code: bool = False,
    revision: str | None = None,
):
    """The `"visual-grounding"` pipeline of a checkpoint, on `device` (default: the first GPU if any, else the CPU)."""
    from processing.pipeline_epmvg import VisualGroundingPipeline

    # loaded here rather than by pipeline(), which would bury a refusal (e.g. weights that do not fit config.json)
    # under its own "Could not load model ... with any of the following classes"
    loaded_model = load_grounding_model(model, revision, trust_remote_code)
    loaded_processor = load_grounding_processor(model, processor, revision, trust_remote_code)
    pipeline_class = VisualGroundingPipeline
    if trust_remote_code:
        # the checkpoint's own pipeline file, as pipeline(model=<folder>, trust_remote_code=True) would load it
        impl = loaded_model.config.custom_pipelines["visual-grounding"]["impl"]
        pipeline_class = get_class_from_dynamic_module(impl, model, revision=revision)
    return pipeline(
        "visual-grounding",
        model=loaded_model,
        processor=loaded_processor,
        pipeline_class=pipeline_class,
        device=device,
    )


__all__ = [
    "load_grounding_checkpoint",
    "load_grounding_config",
    "load_grounding_model",
    "load_grounding_pipeline",
    "load_grounding_processor",
]
