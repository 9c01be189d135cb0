# Copyright 2026 The epmvg authors. Licensed under the Apache License, Version 2.0.
"""EpmVG: visual grounding with cross-modal CLIP distillation, as transformers classes.

Importing this package registers `EpmVGConfig` with `AutoConfig`, `EpmVGForVisualGrounding` with `AutoModel` and
`EpmVGForVisualPretraining` (the visual branch's dense pretraining) with `AutoModelForPreTraining`, so saved
checkpoints load without `trust_remote_code` when the package is installed.
"""

from transformers import AutoConfig, AutoModel, AutoModelForPreTraining

from .configuration_epmvg import EpmVGConfig
from .modeling_epmvg import (
    EpmVGForVisualGrounding,
    EpmVGForVisualPretraining,
    EpmVGModel,
    EpmVGModelOutput,
    EpmVGPreTrainedModel,
    EpmVGVisionModel,
    EpmVGVisualGroundingOutput,
    EpmVGVisualPretrainingOutput,
)


__version__ = "0.1.0"

AutoConfig.register(EpmVGConfig.model_type, EpmVGConfig, exist_ok=True)
AutoModel.register(EpmVGConfig, EpmVGForVisualGrounding, exist_ok=True)
AutoModelForPreTraining.register(EpmVGConfig, EpmVGForVisualPretraining, exist_ok=True)
# save_pretrained writes auto_map and copies the code, so the Hub folder loads with trust_remote_code=True
EpmVGConfig.register_for_auto_class()
EpmVGForVisualGrounding.register_for_auto_class("AutoModel")
EpmVGForVisualPretraining.register_for_auto_class("AutoModelForPreTraining")

__all__ = [
    "EpmVGConfig",
    "EpmVGForVisualGrounding",
    "EpmVGForVisualPretraining",
    "EpmVGModel",
    "EpmVGModelOutput",
    "EpmVGPreTrainedModel",
    "EpmVGVisionModel",
    "EpmVGVisualGroundingOutput",
    "EpmVGVisualPretrainingOutput",
    "__version__",
]
