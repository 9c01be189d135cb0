# Copyright 2026 The epmvg authors. Licensed under the Apache License, Version 2.0.
"""Everything between raw data and the EpmVG model.

Importing this package registers `EpmVGImageProcessor` with `AutoImageProcessor` and `EpmVGProcessor` with
`AutoProcessor` for `EpmVGConfig`, so saved processors load without `trust_remote_code` when the package is installed.
"""

from transformers import AutoImageProcessor, AutoProcessor

from modeling_epmvg import EpmVGConfig

from .image_processing_epmvg import EpmVGImageProcessor, get_letterbox_geometry, to_rgb_image
from .processing_epmvg import EpmVGProcessor


AutoImageProcessor.register(EpmVGConfig, image_processor_classes={"pil": EpmVGImageProcessor}, exist_ok=True)
AutoProcessor.register(EpmVGConfig, EpmVGProcessor, exist_ok=True)
# save_pretrained writes auto_map and copies the code, so the Hub folder loads with trust_remote_code=True
EpmVGImageProcessor.register_for_auto_class()
EpmVGProcessor.register_for_auto_class()

__all__ = ["EpmVGImageProcessor", "EpmVGProcessor", "get_letterbox_geometry", "to_rgb_image"]

# the "visual-grounding" task for models given as objects: pipeline("visual-grounding", model=model, processor=...)
# (a saved folder names its own pipeline file in config.custom_pipelines)
from transformers import AutoModel  # noqa: E402
from transformers.pipelines import PIPELINE_REGISTRY  # noqa: E402

from .pipeline_epmvg import VisualGroundingPipeline  # noqa: E402


if "visual-grounding" not in PIPELINE_REGISTRY.get_supported_tasks():
    PIPELINE_REGISTRY.register_pipeline(
        "visual-grounding", pipeline_class=VisualGroundingPipeline, pt_model=AutoModel, type="multimodal"
    )
__all__ += ["VisualGroundingPipeline"]
