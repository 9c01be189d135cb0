# Copyright 2026 The epmvg authors. Licensed under the Apache License, Version 2.0.
"""EpmVG model configuration."""

import copy
import functools
from dataclasses import field

from huggingface_hub.dataclasses import strict
from huggingface_hub.errors import StrictDataclassClassValidationError, StrictDataclassFieldValidationError
from transformers import AutoConfig
from transformers.activations import ACT2FN
from transformers.configuration_utils import PreTrainedConfig, SubConfigSpec
from transformers.utils import logging


logger = logging.get_logger(__name__)

BBOX_LOSSES = ("smooth_l1", "l1")
DISTILLATION_LOSSES = ("cosine", "l1")
POSITIVE_SIZES = (
    "d_model",
    "vision_encoder_attention_heads",
    "vision_encoder_ffn_dim",
    "fusion_layers",
    "fusion_attention_heads",
    "fusion_ffn_dim",
    "image_size",
    "backbone_stride",
)
LOSS_COEFFICIENTS = (
    "bbox_loss_coefficient",
    "giou_loss_coefficient",
    "distillation_image_coefficient",
    "distillation_text_coefficient",
    "auxiliary_dense_loss_coefficient",
    "auxiliary_target_token_loss_coefficient",
)
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

    A config is checked whole when it is built (and again before it is saved): a value of the wrong type, a size
    below its minimum, a number of heads that does not divide `d_model`, an unknown loss name or a negative loss
    weight raises a `ValueError` naming the field, its value and a valid one. Float fields take integers (`2`).

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
    layer_norm_eps: float | int = 1e-5
    image_size: int = 640
    backbone_stride: int = 32
    max_text_len: int = 20
    freeze_backbone_stages: int = 1
    position_embedding_temperature: float | int = 10000
    init_std: float | int = 1.0
    bbox_loss: str = "smooth_l1"
    smooth_l1_beta: float | int = 1.0
    bbox_loss_coefficient: float | int = 1.0
    giou_loss_coefficient: float | int = 1.0
    distillation_loss: str = "cosine"
    distillation_image_coefficient: float | int = 1.5
    distillation_text_coefficient: float | int = 2.0
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

    # `@strict` runs every `validate_*` method when a config is built and before it is saved
    def validate_architecture(self):
        """Checks the sizes of the model; every message names the field, its value and a valid value."""
        for name in POSITIVE_SIZES:
            _check_at_least(self, name, 1)
        for name in ("vision_encoder_layers", "freeze_backbone_stages"):
            _check_at_least(self, name, 0)
        _check_at_least(self, "max_text_len", 2, "([CLS] and [SEP] take two text slots)")
        for heads_name in ("vision_encoder_attention_heads", "fusion_attention_heads"):
            heads = getattr(self, heads_name)
            if self.d_model % heads != 0:
                divisors = [h for h in range(1, self.d_model + 1) if self.d_model % h == 0]
                nearest = [max(h for h in divisors if h < heads)] + [h for h in divisors if h > heads][:1]
                raise _invalid(
                    heads_name,
                    heads,
                    f"it must divide `d_model` ({self.d_model}) so that every head gets d_model / heads channels: "
                    f"use e.g. {' or '.join(map(str, nearest))}, or change `d_model`",
                )
        if self.image_size % self.backbone_stride != 0:
            raise _invalid(
                "image_size",
                self.image_size,
                f"it must be a multiple of `backbone_stride` ({self.backbone_stride}) so that the feature map tiles "
                f"the canvas: use e.g. {self.image_size // self.backbone_stride * self.backbone_stride or 640}",
            )
        text_positions = getattr(self.text_config, "max_position_embeddings", None)
        if text_positions is not None and self.max_text_len > text_positions:
            raise _invalid(
                "max_text_len",
                self.max_text_len,
                f"the text encoder has only {text_positions} positions (`text_config.max_position_embeddings`): use "
                f"at most {text_positions}",
            )
        if self.activation_function not in ACT2FN:
            raise _invalid("activation_function", self.activation_function, f"use one of {sorted(ACT2FN)}")
        if not 0 <= self.dropout < 1:
            raise _invalid("dropout", self.dropout, "it is a probability: use a value in [0, 1), e.g. 0.1")
        for name in ("layer_norm_eps", "position_embedding_temperature", "init_std"):
            if not getattr(self, name) > 0:
                raise _invalid(
                    name, getattr(self, name), f"it must be positive, e.g. {self.__dataclass_fields__[name].default}"
                )

    def validate_losses(self):
        """Checks the loss options: known names, non-negative weights."""
        for name, choices in (("bbox_loss", BBOX_LOSSES), ("distillation_loss", DISTILLATION_LOSSES)):
            if getattr(self, name) not in choices:
                raise _invalid(name, getattr(self, name), f"use one of {list(choices)}")
        if not self.smooth_l1_beta >= 0:
            raise _invalid("smooth_l1_beta", self.smooth_l1_beta, "use a threshold >= 0, e.g. 1.0 (0 is the L1 loss)")
        for name in LOSS_COEFFICIENTS:
            if not getattr(self, name) >= 0:
                raise _invalid(name, getattr(self, name), "a loss weight must be >= 0 (0 switches the term off)")

    def validate_auxiliary_terms(self):
        """Checks the training-only auxiliary terms against the heads they need."""
        if self.dense_attribute_classes is not None and (
            not self.dense_attribute_classes or min(self.dense_attribute_classes) < 2
        ):
            raise _invalid(
                "dense_attribute_classes",
                self.dense_attribute_classes,
                "list at least 2 classes per attribute, e.g. [5, 5, 2] for 5 colours, 5 shapes and 2 sizes",
            )
        if self.auxiliary_dense_loss_coefficient and self.dense_attribute_classes is None:
            raise _invalid(
                "auxiliary_dense_loss_coefficient",
                self.auxiliary_dense_loss_coefficient,
                "the dense term needs `dense_attribute_classes`: give the attributes' class counts (e.g. [5, 5, 2]) "
                "or set the coefficient to 0",
            )
        layer = self.auxiliary_target_token_layer
        if self.auxiliary_target_token_loss_coefficient and not -self.fusion_layers <= layer < self.fusion_layers:
            raise _invalid(
                "auxiliary_target_token_layer",
                layer,
                f"it must index one of the {self.fusion_layers} fusion layers (from {-self.fusion_layers} to "
                f"{self.fusion_layers - 1}); -2 is the penultimate one",
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


def _invalid(name: str, value, fix: str) -> ValueError:
    return ValueError(f"Invalid EpmVGConfig: `{name}` is {value!r}: {fix}.")


def _check_at_least(config: EpmVGConfig, name: str, lowest: int, why: str = "") -> None:
    if getattr(config, name) < lowest:
        default = config.__dataclass_fields__[name].default
        raise _invalid(
            name, getattr(config, name), f"it must be at least {lowest}{' ' + why if why else ''}, e.g. {default}"
        )


def _refusals_as_value_errors(init):
    """
    `init` raising what `@strict` refuses (a value of the wrong type, a failed `validate_*` check) as one `ValueError`
    naming the field, which is what a command reports as a bad input rather than as a crash.
    """

    @functools.wraps(init)
    def __init__(self, *args, **kwargs):
        try:
            init(self, *args, **kwargs)
        except StrictDataclassFieldValidationError as error:
            raise ValueError(
                f"Invalid EpmVGConfig: {error.__cause__}: give the field a value of its type (a whole number such as "
                "2 for an int field; 2 or 2.5 for a float field; the documented strings for a choice)."
            ) from error
        except StrictDataclassClassValidationError as error:
            raise ValueError(str(error.__cause__)) from error

    return __init__


EpmVGConfig.__init__ = _refusals_as_value_errors(EpmVGConfig.__init__)


__all__ = ["EpmVGConfig", "check_model_type"]
