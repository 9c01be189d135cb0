# Copyright 2026 The epmvg authors. Licensed under the Apache License, Version 2.0.
"""EpmVG model configuration."""

import copy
from dataclasses import field

from huggingface_hub.dataclasses import strict
from transformers import AutoConfig
from transformers.configuration_utils import PreTrainedConfig, SubConfigSpec
from transformers.utils import logging


logger = logging.get_logger(__name__)

BBOX_LOSSES = ("smooth_l1", "l1")
DISTILLATION_LOSSES = ("cosine", "l1")
# what `transformers.pipeline(model=<saved folder>, trust_remote_code=True)` reads to build the "visual-grounding"
# task; EpmVGProcessor.save_pretrained puts pipeline_epmvg.py beside the code
CUSTOM_PIPELINES = {
    "visual-grounding": {"impl": "pipeline_epmvg.VisualGroundingPipeline", "pt": ["AutoModel"], "type": "multimodal"}
}


def with_eager_backbone(attn_implementation: str | dict | None) -> dict:
    """
    An `attn_implementation` request as transformers' per-sub-config dict, with the convolutional backbone on
    `"eager"`: it has no attention, and transformers' backbones refuse any other implementation.
    """
    if not isinstance(attn_implementation, dict):
        attn_implementation = {"": attn_implementation, "text_config": attn_implementation}
    return {**attn_implementation, "backbone_config": "eager"}


@strict
class EpmVGConfig(PreTrainedConfig):
    r"""
    Configuration of an [`EpmVGForVisualGrounding`] model. The defaults reproduce TransVG's ResNet-50 model at
    640x640 with queries of 20 tokens (149.2M parameters without BERT's unused pooler), trained with EpmVG's loss
    (smooth-L1 + GIoU, cosine cross-modal distillation with alpha 1.5 and beta 2).

    Building a config never touches the network: the sub-configs default to a ResNet-50 [`ResNetConfig`] and a
    BERT-base [`BertConfig`], with random weights. Load pretrained parts with
    [`EpmVGForVisualGrounding.from_backbone_text_pretrained`].

    Args:
        backbone_config (`dict` or [`PreTrainedConfig`], *optional*):
            Config of the convolutional backbone (any [`AutoBackbone`] config; only its last feature map is used,
            which must have stride 32). Defaults to ResNet-50.
        text_config (`dict` or [`PreTrainedConfig`], *optional*):
            Config of the BERT-family text encoder. Defaults to BERT-base.
        d_model (`int`, *optional*, defaults to 256):
            Width of the visual encoder, the fusion encoder and the box head.
        vision_encoder_layers (`int`, *optional*, defaults to 6):
            Number of (post-norm) transformer layers on top of the backbone (DETR's encoder).
        vision_encoder_attention_heads (`int`, *optional*, defaults to 8):
            Attention heads of the visual encoder.
        vision_encoder_ffn_dim (`int`, *optional*, defaults to 2048):
            Feed-forward width of the visual encoder.
        fusion_layers (`int`, *optional*, defaults to 6):
            Number of (post-norm) layers of the visual-linguistic fusion encoder.
        fusion_attention_heads (`int`, *optional*, defaults to 8):
            Attention heads of the fusion encoder.
        fusion_ffn_dim (`int`, *optional*, defaults to 2048):
            Feed-forward width of the fusion encoder.
        dropout (`float`, *optional*, defaults to 0.1):
            Dropout in the attention outputs and feed-forward layers of both encoders.
        activation_function (`str`, *optional*, defaults to `"relu"`):
            Activation of the feed-forward layers of both encoders.
        layer_norm_eps (`float`, *optional*, defaults to 1e-5):
            Epsilon of the layer norms of both encoders.
        image_size (`int`, *optional*, defaults to 640):
            Side of the square canvas the image is letterboxed into. Fixes the number of visual tokens.
        backbone_stride (`int`, *optional*, defaults to 32):
            Output stride of the backbone's feature map (32 for a ResNet's last stage, 16 for its third).
        max_text_len (`int`, *optional*, defaults to 20):
            Number of text slots (the tokenizer pads or truncates to it). TransVG uses 40 for RefCOCOg.
        freeze_backbone_stages (`int`, *optional*, defaults to 1):
            Number of backbone stages kept frozen together with the stem, by the backbone's own `stage_names` (stem =
            the embeddings, then stage1, ...; TransVG: 1, i.e. ResNet's conv1 and layer1, or a Swin's patch
            embedding and first stage); 0 trains the whole backbone (e.g. when it starts from random weights).
        position_embedding_temperature (`float`, *optional*, defaults to 10000):
            Temperature of the sine position encoding of the visual tokens.
        init_std (`float`, *optional*, defaults to 1.0):
            Standard deviation of the normal init of the [REG] token and the fusion position table (TransVG: 1.0).
        bbox_loss (`str`, *optional*, defaults to `"smooth_l1"`):
            Box regression loss: `"smooth_l1"` (EpmVG paper) or `"l1"` (TransVG code).
        smooth_l1_beta (`float`, *optional*, defaults to 1.0):
            Threshold at which the smooth-L1 loss turns from quadratic to linear.
        bbox_loss_coefficient (`float`, *optional*, defaults to 1.0):
            Weight of the box regression loss.
        giou_loss_coefficient (`float`, *optional*, defaults to 1.0):
            Weight of the GIoU loss (the paper's lambda).
        distillation_loss (`str`, *optional*, defaults to `"cosine"`):
            Distance used by the distillation trainer: `"cosine"` (paper) or `"l1"` (ablation).
        distillation_image_coefficient (`float`, *optional*, defaults to 1.5):
            Weight of the image distillation term (the paper's alpha); 0 turns it off.
        distillation_text_coefficient (`float`, *optional*, defaults to 2.0):
            Weight of the text distillation term (the paper's beta); 0 turns it off.
        dense_attribute_classes (`list[int]`, *optional*):
            Number of classes of each per-object attribute predicted by the dense visual head (e.g. `[5, 5, 2]` for
            the synthetic benchmark's colours, shapes and sizes). Needed by [`EpmVGForVisualPretraining`] and by the
            dense auxiliary term; `None` builds no dense head.
        auxiliary_dense_loss_coefficient (`float`, *optional*, defaults to 0.0):
            Training-only deviation from the paper (which trains without it): weight of the dense visual objective on
            the visual slots of the fusion input while grounding, so the visual branch keeps what its pretraining
            taught it. 0 (the paper) builds no dense head.
        auxiliary_target_token_loss_coefficient (`float`, *optional*, defaults to 0.0):
            Training-only deviation from the paper: weight of a cross-entropy over the visual slots of the output of
            fusion layer `auxiliary_target_token_layer` towards the slot whose cell holds the target box's centre.
            It makes small models learn to ground within a CPU budget. 0 (the paper) builds no scorer.
        auxiliary_target_token_layer (`int`, *optional*, defaults to -2):
            Fusion layer (Python index) whose output the target-token term scores. The penultimate layer works: the
            [REG] slot reads the marked token in the layer after it; on the last layer nothing reads the mark.
        custom_pipelines (`dict`, *optional*):
            The `"visual-grounding"` pipeline, as `transformers.pipeline` reads it from a saved folder (with
            `trust_remote_code=True`, or `pipeline_class=VisualGroundingPipeline` when the package is installed).

    Examples:

    ```python
    >>> from modeling_epmvg import EpmVGConfig, EpmVGForVisualGrounding

    >>> # TransVG R-50 at 640x640, random weights
    >>> configuration = EpmVGConfig()
    >>> configuration.num_visual_tokens
    400
    ```"""

    model_type = "epmvg"
    sub_configs_defaults = {
        "backbone_config": SubConfigSpec(
            config_class=AutoConfig, model_type="resnet", init_kwargs={"out_features": ["stage4"]}
        ),
        "text_config": SubConfigSpec(config_class=AutoConfig, model_type="bert"),
    }
    attribute_map = {"hidden_size": "d_model"}
    keys_to_ignore_at_inference = ["loss_dict", "image_embeds", "text_embeds", "last_hidden_state"]

    backbone_config: dict | PreTrainedConfig | None = None
    text_config: dict | PreTrainedConfig | None = None
    d_model: int = 256
    vision_encoder_layers: int = 6
    vision_encoder_attention_heads: int = 8
    vision_encoder_ffn_dim: int = 2048
    fusion_layers: int = 6
    fusion_attention_heads: int = 8
    fusion_ffn_dim: int = 2048
    dropout: float | int = 0.1
    activation_function: str = "relu"
    layer_norm_eps: float = 1e-5
    image_size: int = 640
    backbone_stride: int = 32
    max_text_len: int = 20
    freeze_backbone_stages: int = 1
    position_embedding_temperature: float | int = 10000
    init_std: float = 1.0
    bbox_loss: str = "smooth_l1"
    smooth_l1_beta: float = 1.0
    bbox_loss_coefficient: float = 1.0
    giou_loss_coefficient: float = 1.0
    distillation_loss: str = "cosine"
    distillation_image_coefficient: float = 1.5
    distillation_text_coefficient: float = 2.0
    dense_attribute_classes: list[int] | None = None
    auxiliary_dense_loss_coefficient: float | int = 0.0
    auxiliary_target_token_loss_coefficient: float | int = 0.0
    auxiliary_target_token_layer: int = -2

    @property
    def _attn_implementation(self) -> str | None:
        return self._attn_implementation_internal

    @_attn_implementation.setter
    def _attn_implementation(self, value: str | dict | None):
        # from_pretrained(..., attn_implementation="sdpa") sets it here, before the backbone is built
        PreTrainedConfig._attn_implementation.fset(self, with_eager_backbone(value))

    custom_pipelines: dict | None = field(default_factory=lambda: copy.deepcopy(CUSTOM_PIPELINES))

    @property
    def num_visual_tokens(self) -> int:
        """Number of visual tokens: the backbone's feature map of the square canvas, flattened."""
        return self.visual_grid_size**2

    @property
    def visual_grid_size(self) -> int:
        """Side of the square grid of visual tokens."""
        return self.image_size // self.backbone_stride

    @property
    def num_fusion_tokens(self) -> int:
        """Length of the fusion sequence: [REG] + text slots + visual tokens."""
        return 1 + self.max_text_len + self.num_visual_tokens

    @classmethod
    def get_config_dict(cls, pretrained_model_name_or_path, **kwargs) -> tuple[dict, dict]:
        """Reads a saved config and refuses checkpoints of another model type instead of building a random model."""
        config_dict, kwargs = super().get_config_dict(pretrained_model_name_or_path, **kwargs)
        check_model_type(config_dict.get("model_type", cls.model_type), pretrained_model_name_or_path)
        return config_dict, kwargs

    def validate_architecture(self):
        """Checks the architecture fields; every message names the field and a valid value."""
        for width_name, heads_name in (
            ("d_model", "vision_encoder_attention_heads"),
            ("d_model", "fusion_attention_heads"),
        ):
            if getattr(self, width_name) % getattr(self, heads_name) != 0:
                raise ValueError(
                    f"`{width_name}` ({getattr(self, width_name)}) must be divisible by `{heads_name}` "
                    f"({getattr(self, heads_name)}): pick a number of heads that divides the width."
                )
        if self.image_size <= 0 or self.backbone_stride <= 0 or self.image_size % self.backbone_stride != 0:
            raise ValueError(
                f"`image_size` ({self.image_size}) must be a positive multiple of `backbone_stride` "
                f"({self.backbone_stride}), e.g. 640 or 320 for stride 32."
            )
        if self.max_text_len < 2:
            raise ValueError(f"`max_text_len` ({self.max_text_len}) must be at least 2 ([CLS] and [SEP]).")
        if self.bbox_loss not in BBOX_LOSSES:
            raise ValueError(f"`bbox_loss` must be one of {BBOX_LOSSES}, got {self.bbox_loss!r}.")
        if self.distillation_loss not in DISTILLATION_LOSSES:
            raise ValueError(
                f"`distillation_loss` must be one of {DISTILLATION_LOSSES}, got {self.distillation_loss!r}."
            )
        self._validate_auxiliary_terms()

    def _validate_auxiliary_terms(self):
        if self.dense_attribute_classes is not None and (
            not self.dense_attribute_classes or min(self.dense_attribute_classes) < 2
        ):
            raise ValueError(
                f"`dense_attribute_classes` must list at least 2 classes per attribute, got "
                f"{self.dense_attribute_classes}: e.g. [5, 5, 2] for 5 colours, 5 shapes and 2 sizes."
            )
        if self.auxiliary_dense_loss_coefficient and self.dense_attribute_classes is None:
            raise ValueError(
                "`auxiliary_dense_loss_coefficient` is non-zero but `dense_attribute_classes` is not set: give the "
                "attributes' class counts (e.g. [5, 5, 2]) or set the coefficient to 0."
            )
        layer = self.auxiliary_target_token_layer
        if self.auxiliary_target_token_loss_coefficient and not -self.fusion_layers <= layer < self.fusion_layers:
            raise ValueError(
                f"`auxiliary_target_token_layer` ({layer}) must index one of the {self.fusion_layers} fusion layers "
                f"(from {-self.fusion_layers} to {self.fusion_layers - 1}); -2 is the penultimate one."
            )


def check_model_type(model_type: str, name_or_path) -> None:
    """
    Refuses a checkpoint of another model type by name: transformers only warns, then builds a random EpmVG (or,
    through the Auto classes, that other model, which fails later with a deep traceback).
    """
    if model_type != EpmVGConfig.model_type:
        raise ValueError(
            f"{str(name_or_path)!r} holds a {model_type!r} checkpoint, not an EpmVG one: give the folder or Hub id "
            "of a model saved by epmvg-train, epmvg-convert-transvg or save_pretrained, or build EpmVG from "
            "pretrained parts with EpmVGForVisualGrounding.from_backbone_text_pretrained(...)."
        )


__all__ = ["EpmVGConfig", "check_model_type"]
