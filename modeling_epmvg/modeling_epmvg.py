# Copyright 2026 The epmvg authors. Licensed under the Apache License, Version 2.0.
"""PyTorch EpmVG: TransVG-style visual grounding (ResNet + DETR encoder, BERT, fusion encoder, [REG] box head)."""

import math
import re
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint
from transformers import AutoConfig, AutoModel, PreTrainedConfig, PreTrainedModel
from transformers import initialization as init
from transformers.activations import ACT2FN
from transformers.backbone_utils import load_backbone
from transformers.masking_utils import create_bidirectional_mask
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
from transformers.models.auto.modeling_auto import MODEL_FOR_BACKBONE_MAPPING
from transformers.models.resnet.modeling_resnet import ResNetConvLayer, ResNetShortCut
from transformers.processing_utils import Unpack
from transformers.utils import ModelOutput, TransformersKwargs, logging
from transformers.utils.generic import can_return_tuple, merge_with_config_defaults
from transformers.utils.output_capturing import OutputRecorder, capture_outputs

from .configuration_epmvg import EpmVGConfig, with_eager_backbone
from .detr_weights_epmvg import ConversionResult, load_detr_visual_branch
from .loss_epmvg import dense_prediction_loss, grounding_loss, target_token_loss


logger = logging.get_logger(__name__)


@dataclass
class EpmVGModelOutput(ModelOutput):
    r"""
    Output of [`EpmVGModel`]. The fusion sequence is laid out as TransVG's: `[REG, text slots, visual tokens]`.

    Args:
        last_hidden_state (`torch.FloatTensor` of shape `(batch_size, 1 + max_text_len + num_visual_tokens, d_model)`):
            Output of the last fusion layer.
        reg_embeds (`torch.FloatTensor` of shape `(batch_size, d_model)`):
            Fusion output at the [REG] slot, fed to the box head.
        image_embeds (`torch.FloatTensor` of shape `(batch_size, d_model)`):
            Fusion output at the first visual slot (the paper's global visual feature `p'_v1`), distilled towards
            the CLIP image embedding during training.
        text_embeds (`torch.FloatTensor` of shape `(batch_size, d_model)`):
            Fusion output at the first text slot ([CLS], the paper's `p'_l1`), distilled towards the CLIP text
            embedding during training.
        hidden_states (`tuple(torch.FloatTensor)`, *optional*, returned when `output_hidden_states=True`):
            Fusion input and the output of every fusion layer, each `(batch_size, sequence_length, d_model)`.
        attentions (`tuple(torch.FloatTensor)`, *optional*, returned when `output_attentions=True`):
            Attention weights of every fusion layer, each `(batch_size, num_heads, sequence_length, sequence_length)`.
    """

    last_hidden_state: torch.FloatTensor | None = None
    reg_embeds: torch.FloatTensor | None = None
    image_embeds: torch.FloatTensor | None = None
    text_embeds: torch.FloatTensor | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None
    attentions: tuple[torch.FloatTensor, ...] | None = None


@dataclass
class EpmVGVisualGroundingOutput(ModelOutput):
    r"""
    Output of [`EpmVGForVisualGrounding`].

    Args:
        loss (`torch.FloatTensor` of shape `()`, *optional*, returned when `labels` are given):
            `bbox_loss_coefficient * box loss + giou_loss_coefficient * GIoU loss`, plus the weighted training-only
            auxiliary terms when the config turns them on (the distillation terms are added by the trainer, which
            owns the teacher).
        loss_dict (`dict`, *optional*, returned when `labels` are given):
            The unweighted terms `loss_bbox` and `loss_giou`, and `loss_aux_dense` / `loss_aux_target_token` when
            those auxiliary terms are on.
        pred_boxes (`torch.FloatTensor` of shape `(batch_size, 4)`):
            One box per expression, normalized (center_x, center_y, width, height) in [0, 1] relative to the padded
            square canvas. Use [`EpmVGImageProcessor.post_process_visual_grounding`] to get pixel boxes.
        image_embeds (`torch.FloatTensor` of shape `(batch_size, d_model)`):
            Fusion output at the first visual slot (distillation target: CLIP image embedding).
        text_embeds (`torch.FloatTensor` of shape `(batch_size, d_model)`):
            Fusion output at the [CLS] slot (distillation target: CLIP text embedding).
        last_hidden_state (`torch.FloatTensor` of shape `(batch_size, sequence_length, d_model)`):
            Output of the last fusion layer.
        hidden_states (`tuple(torch.FloatTensor)`, *optional*, returned when `output_hidden_states=True`):
            Fusion input and the output of every fusion layer.
        attentions (`tuple(torch.FloatTensor)`, *optional*, returned when `output_attentions=True`):
            Attention weights of every fusion layer.
    """

    loss: torch.FloatTensor | None = None
    loss_dict: dict | None = None
    pred_boxes: torch.FloatTensor | None = None
    image_embeds: torch.FloatTensor | None = None
    text_embeds: torch.FloatTensor | None = None
    last_hidden_state: torch.FloatTensor | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None
    attentions: tuple[torch.FloatTensor, ...] | None = None


@dataclass
class EpmVGVisualPretrainingOutput(ModelOutput):
    r"""
    Output of [`EpmVGForVisualPretraining`].

    Args:
        loss (`torch.FloatTensor` of shape `()`, *optional*, returned when `dense_labels` are given):
            The dense objective: objectness + attribute cross-entropies + 5 x box L1.
        loss_dict (`dict`, *optional*, returned when `dense_labels` are given):
            The unweighted terms `loss_objectness`, `loss_attributes` and `loss_box`.
        logits (`torch.FloatTensor` of shape `(batch_size, num_visual_tokens, 1 + sum(dense_attribute_classes) + 4)`):
            Per visual token: objectness logit, the logits of each attribute, box logits (sigmoid gives cxcywh).
        last_hidden_state (`torch.FloatTensor` of shape `(batch_size, num_visual_tokens, d_model)`):
            The visual tokens (the fusion encoder's visual input in [`EpmVGForVisualGrounding`]).
    """

    loss: torch.FloatTensor | None = None
    loss_dict: dict | None = None
    logits: torch.FloatTensor | None = None
    last_hidden_state: torch.FloatTensor | None = None


# Adapted from transformers.models.detr.modeling_detr.DetrFrozenBatchNorm2d: keeps the BatchNorm's own eps
class EpmVGFrozenBatchNorm2d(nn.Module):
    """BatchNorm2d whose statistics and affine parameters are buffers (DETR / TransVG), so they never train."""

    def __init__(self, num_features: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Buffer(torch.ones(num_features))
        self.bias = nn.Buffer(torch.zeros(num_features))
        self.running_mean = nn.Buffer(torch.zeros(num_features))
        self.running_var = nn.Buffer(torch.ones(num_features))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # checkpoints of regular BatchNorm2d carry a counter this module does not need
        state_dict.pop(prefix + "num_batches_tracked", None)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def scale_and_shift(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The per-channel affine map this BatchNorm applies: `hidden_states * scale + shift`."""
        scale = self.weight * (self.running_var + self.eps).rsqrt()
        return scale, self.bias - self.running_mean * scale

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        scale, shift = self.scale_and_shift()
        # one fused pass (and one new feature map) instead of a multiply and an add
        return torch.addcmul(shift[None, :, None, None], hidden_states, scale[None, :, None, None])


class EpmVGFoldedBatchNorm2d(EpmVGFrozenBatchNorm2d):
    """A frozen BatchNorm that the convolution before it applies ([`fold_batch_norms`]): it keeps the statistics
    (and their checkpoint names) and passes its input through."""

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return hidden_states


class EpmVGConv2dWithFrozenBatchNorm(nn.Conv2d):
    """
    A bias-free convolution followed by a frozen BatchNorm as one convolution: the weights scaled per output channel
    and the shift as the bias, so the feature map is written once instead of twice (forward and backward).
    """

    def __init__(self, convolution: nn.Conv2d, normalization: EpmVGFoldedBatchNorm2d):
        super().__init__(
            convolution.in_channels, convolution.out_channels, convolution.kernel_size, convolution.stride,
            convolution.padding, convolution.dilation, convolution.groups, bias=False,
            padding_mode=convolution.padding_mode, device="meta",
        )  # fmt: skip
        self.weight = convolution.weight
        # a reference, not a submodule: the statistics keep their place (and name) in the BatchNorm
        object.__setattr__(self, "normalization", normalization)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        scale, shift = self.normalization.scale_and_shift()
        return self._conv_forward(hidden_states, self.weight * scale[:, None, None, None], shift)


# Adapted from transformers.models.detr.modeling_detr.replace_batch_norm: keeps each BatchNorm's eps
def replace_batch_norm(module: nn.Module) -> None:
    """Replaces every `nn.BatchNorm2d` below `module` by an [`EpmVGFrozenBatchNorm2d`] with the same statistics."""
    for name, child in module.named_children():
        if isinstance(child, nn.BatchNorm2d):
            frozen = EpmVGFrozenBatchNorm2d(child.num_features, child.eps)
            if child.weight.device != torch.device("meta"):
                for key in ("weight", "bias", "running_mean", "running_var"):
                    getattr(frozen, key).copy_(getattr(child, key).detach())
            module._modules[name] = frozen
        else:
            replace_batch_norm(child)


def fold_batch_norms(module: nn.Module) -> None:
    """
    Folds each frozen BatchNorm of a transformers ResNet into the convolution before it
    ([`EpmVGConv2dWithFrozenBatchNorm`]); the state dict keeps its keys and values.
    """
    for child in module.modules():
        if not isinstance(child, (ResNetConvLayer, ResNetShortCut)):
            continue
        convolution, normalization = child.convolution, child.normalization
        foldable = type(normalization) is EpmVGFrozenBatchNorm2d and type(convolution) is nn.Conv2d
        if foldable and convolution.bias is None:
            folded = EpmVGFoldedBatchNorm2d(len(normalization.weight), normalization.eps)
            folded._buffers = normalization._buffers  # the same statistics
            child.normalization = folded
            child.convolution = EpmVGConv2dWithFrozenBatchNorm(convolution, folded)


class EpmVGConvEncoder(nn.Module):
    """
    The CNN backbone (any `AutoBackbone`, ResNet-50 by default) with frozen BatchNorm and frozen early stages.

    A transformers ResNet is run block by block up to its output stage (later stages are not computed), and with
    gradient checkpointing on, each residual block that trains is checkpointed (non-reentrant) except those of the
    output stage: the ResNet's activations are most of the training memory, and every block costs about the same
    FLOPs to recompute, but the output stage's low resolution makes its blocks hold the least memory.
    """

    def __init__(self, config: EpmVGConfig):
        super().__init__()
        self.model = load_backbone(config)
        with torch.no_grad():
            replace_batch_norm(self.model)
        fold_batch_norms(self.model)
        self.num_channels = self.model.channels[-1]
        self.freeze_stages(config.freeze_backbone_stages)
        self.gradient_checkpointing = False
        # the module structure is fixed: the block list is built once, not on every forward
        self.blocks, self.num_recomputable_blocks = self._resnet_blocks()
        if self.blocks is not None:
            # a ResNet's ReLUs follow a BatchNorm or a residual sum, whose outputs nothing else reads: in place is safe
            for module in self.model.modules():
                if isinstance(module, nn.ReLU):
                    module.inplace = True

    def freeze_stages(self, num_stages: int) -> None:
        """
        Freezes the stem and the first `num_stages` stages, by the backbone's own `stage_names` (TransVG: 1, the
        stem and ResNet's layer1); 0 freezes nothing. Parameters the output feature map never reads (the stages after
        the output one, a Swin's final layer norm) are frozen too: they would never get a gradient.
        """
        stem, stages = self._stem_and_stages()
        if stages is None and num_stages > 0:
            raise ValueError(
                f"EpmVG cannot find the stem and the stages of this {self.model.config.model_type!r} backbone (it "
                "knows transformers' ResNet, Swin and ConvNeXt layouts): set freeze_backbone_stages=0 and freeze its "
                "parameters yourself."
            )
        stages = stages or []
        if num_stages > len(stages):
            raise ValueError(
                f"freeze_backbone_stages={num_stages}, but the backbone has {len(stages)} stages "
                f"({self.model.stage_names[1:]}): pick at most {len(stages)}."
            )
        last_output_stage = self.model.stage_names.index(self.model.out_features[-1])
        frozen = ([stem, *stages[:num_stages]] if num_stages > 0 else []) + list(stages[last_output_stage:])
        for module in frozen + self._unread_modules():
            module.requires_grad_(False)

    def _stem_and_stages(self) -> tuple[nn.Module | None, list[nn.Module] | None]:
        """
        The backbone's stem (`embedder` / `embeddings`) and its stages (`encoder.stages` / `encoder.layers`), one per
        name after "stem" in `stage_names`: the layout of transformers' ResNet, Swin, ConvNeXt and their kin.
        `(None, None)` for another layout.
        """
        modules = dict(self.model.named_modules())
        num_stages = len(self.model.stage_names) - 1
        stem = next((modules[name] for name in modules if name.split(".")[-1] in ("embedder", "embeddings")), None)
        stages = next(
            (
                list(modules[name])
                for name in modules
                if name.endswith(("encoder.stages", "encoder.layers")) and len(modules[name]) == num_stages
            ),
            None,
        )
        return (stem, stages) if stem is not None and stages is not None else (None, None)

    def _unread_modules(self) -> list[nn.Module]:
        """Modules the backbone computes but its feature maps do not read (a Swin's final layer norm)."""
        inner = getattr(self.model, self.model.base_model_prefix, None)
        return [inner.layernorm] if isinstance(getattr(inner, "layernorm", None), nn.LayerNorm) else []

    def _resnet_blocks(self) -> tuple[list[nn.Module] | None, int]:
        """
        The stem and residual blocks of a transformers ResNet up to its last output stage, and how many of them
        precede that stage (those gradient checkpointing may recompute); (None, 0) for other backbones.
        """
        stages = getattr(getattr(self.model, "encoder", None), "stages", None)
        if self.model.config.model_type != "resnet" or stages is None:
            return None, 0
        last_stage = self.model.stage_names.index(self.model.out_features[-1])
        blocks = [self.model.embedder] + [block for stage in stages[:last_stage] for block in stage.layers]
        return blocks, len(blocks) - len(stages[last_stage - 1].layers)

    def forward(self, pixel_values: torch.Tensor, pixel_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.blocks is None:
            feature_map = self.model(pixel_values).feature_maps[-1]
        else:
            checkpointing = self.gradient_checkpointing and self.training and torch.is_grad_enabled()
            feature_map = pixel_values
            for index, block in enumerate(self.blocks):
                recompute = checkpointing and index < self.num_recomputable_blocks
                if recompute and (feature_map.requires_grad or _has_trainable_parameters(block)):
                    # non-reentrant: the first trainable block's input comes from frozen stages (no grad)
                    feature_map = checkpoint(block, feature_map, use_reentrant=False)
                else:
                    feature_map = block(feature_map)
        # nearest downsampling of the mask, as DETR and TransVG do
        mask = F.interpolate(pixel_mask[:, None].float(), size=feature_map.shape[-2:])[:, 0].to(torch.bool)
        return feature_map, mask


def _has_trainable_parameters(module: nn.Module) -> bool:
    return any(parameter.requires_grad for parameter in module.parameters())


# Adapted from transformers.models.detr.modeling_detr.DetrSinePositionEmbedding: always normalized, from the mask of
# real pixels, flattened to tokens
class EpmVGSinePositionEmbedding(nn.Module):
    """
    DETR's normalized sine position encoding (y then x, sin/cos interleaved), computed by cumulative sums over the
    real pixels so that it spans the image rather than the padded canvas.
    """

    def __init__(self, embedding_dim: int, temperature: float = 10000):
        super().__init__()
        self.num_position_features = embedding_dim // 2
        self.temperature = temperature
        self.scale = 2 * math.pi

    def forward(self, mask: torch.Tensor) -> torch.Tensor:
        """`mask` (batch, height, width) True on real tokens -> (batch, height * width, embedding_dim)."""
        y_embed = mask.cumsum(1, dtype=torch.float32)
        x_embed = mask.cumsum(2, dtype=torch.float32)
        eps = 1e-6
        y_embed = y_embed / (y_embed[:, -1:, :] + eps) * self.scale
        x_embed = x_embed / (x_embed[:, :, -1:] + eps) * self.scale
        dim_t = torch.arange(self.num_position_features, dtype=torch.float32, device=mask.device)
        dim_t = self.temperature ** (2 * torch.div(dim_t, 2, rounding_mode="floor") / self.num_position_features)
        pos_x = x_embed[..., None] / dim_t
        pos_y = y_embed[..., None] / dim_t
        pos_x = torch.stack((pos_x[..., 0::2].sin(), pos_x[..., 1::2].cos()), dim=4).flatten(3)
        pos_y = torch.stack((pos_y[..., 0::2].sin(), pos_y[..., 1::2].cos()), dim=4).flatten(3)
        return torch.cat((pos_y, pos_x), dim=3).flatten(1, 2)


# Copied from transformers.models.bert.modeling_bert.eager_attention_forward
def eager_attention_forward(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float | None = None,
    dropout: float = 0.0,
    **kwargs: Unpack[TransformersKwargs],
):
    if scaling is None:
        scaling = query.size(-1) ** -0.5

    # Take the dot product between "query" and "key" to get the raw attention scores.
    attn_weights = torch.matmul(query, key.transpose(2, 3)) * scaling

    if attention_mask is not None:
        attn_weights = attn_weights + attention_mask

    attn_weights = nn.functional.softmax(attn_weights, dim=-1)
    attn_weights = nn.functional.dropout(attn_weights, p=dropout, training=module.training)

    attn_output = torch.matmul(attn_weights, value)
    attn_output = attn_output.transpose(1, 2).contiguous()

    return attn_output, attn_weights


# Copied from transformers.models.detr.modeling_detr.DetrSelfAttention with Detr->EpmVG
class EpmVGSelfAttention(nn.Module):
    """
    Multi-headed self-attention from 'Attention Is All You Need' paper.

    In DETR, position embeddings are added to both queries and keys (but not values) in self-attention.
    """

    def __init__(
        self,
        config: EpmVGConfig,
        hidden_size: int,
        num_attention_heads: int,
        dropout: float = 0.0,
        bias: bool = True,
    ):
        super().__init__()
        self.config = config
        self.head_dim = hidden_size // num_attention_heads
        self.scaling = self.head_dim**-0.5
        self.attention_dropout = dropout
        self.is_causal = False

        self.k_proj = nn.Linear(hidden_size, hidden_size, bias=bias)
        self.v_proj = nn.Linear(hidden_size, hidden_size, bias=bias)
        self.q_proj = nn.Linear(hidden_size, hidden_size, bias=bias)
        self.o_proj = nn.Linear(hidden_size, hidden_size, bias=bias)

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        position_embeddings: torch.Tensor | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """
        Position embeddings are added to both queries and keys (but not values).
        """
        input_shape = hidden_states.shape[:-1]
        hidden_shape = (*input_shape, -1, self.head_dim)

        query_key_input = hidden_states + position_embeddings if position_embeddings is not None else hidden_states

        query_states = self.q_proj(query_key_input).view(hidden_shape).transpose(1, 2)
        key_states = self.k_proj(query_key_input).view(hidden_shape).transpose(1, 2)
        value_states = self.v_proj(hidden_states).view(hidden_shape).transpose(1, 2)

        attention_interface: Callable = ALL_ATTENTION_FUNCTIONS.get_interface(
            self.config._attn_implementation, eager_attention_forward
        )

        attn_output, attn_weights = attention_interface(
            self,
            query_states,
            key_states,
            value_states,
            attention_mask,
            dropout=0.0 if not self.training else self.attention_dropout,
            scaling=self.scaling,
            **kwargs,
        )

        attn_output = attn_output.reshape(*input_shape, -1).contiguous()
        attn_output = self.o_proj(attn_output)
        return attn_output, attn_weights


class EpmVGMLP(nn.Module):
    """The feed-forward block of an encoder layer: Linear, activation, dropout, Linear."""

    def __init__(self, config: EpmVGConfig, ffn_dim: int):
        super().__init__()
        self.fc1 = nn.Linear(config.d_model, ffn_dim)
        self.fc2 = nn.Linear(ffn_dim, config.d_model)
        self.activation_fn = ACT2FN[config.activation_function]
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.dropout(self.activation_fn(self.fc1(hidden_states))))


class EpmVGEncoderLayer(GradientCheckpointingLayer):
    """
    A post-norm transformer encoder layer (DETR / TransVG): attention, add & norm, FFN, add & norm. Parameter names
    match transformers' `DetrEncoderLayer`, so DETR encoders load as they are.
    """

    def __init__(self, config: EpmVGConfig, num_heads: int, ffn_dim: int):
        super().__init__()
        self.self_attn = EpmVGSelfAttention(config, config.d_model, num_heads, dropout=config.dropout)
        self.self_attn_layer_norm = nn.LayerNorm(config.d_model, eps=config.layer_norm_eps)
        self.mlp = EpmVGMLP(config, ffn_dim)
        self.final_layer_norm = nn.LayerNorm(config.d_model, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.dropout)

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None,
        position_embeddings: torch.Tensor,
        **kwargs: Unpack[TransformersKwargs],
    ) -> torch.Tensor:
        attended, _ = self.self_attn(hidden_states, attention_mask, position_embeddings, **kwargs)
        hidden_states = self.self_attn_layer_norm(hidden_states + self.dropout(attended))
        return self.final_layer_norm(hidden_states + self.dropout(self.mlp(hidden_states)))


class EpmVGEncoder(nn.Module):
    """A stack of [`EpmVGEncoderLayer`] sharing one position encoding and one key-padding mask."""

    def __init__(self, config: EpmVGConfig, num_layers: int, num_heads: int, ffn_dim: int):
        super().__init__()
        self.config = config
        self.layers = nn.ModuleList([EpmVGEncoderLayer(config, num_heads, ffn_dim) for _ in range(num_layers)])

    def forward(
        self,
        hidden_states: torch.Tensor,
        position_embeddings: torch.Tensor,
        padding_mask: torch.Tensor,
        **kwargs: Unpack[TransformersKwargs],
    ) -> torch.Tensor:
        """`padding_mask` (batch, seq) is True on real tokens."""
        # in the form the configured attention implementation takes, on the device of the hidden states
        attention_mask = create_bidirectional_mask(self.config, hidden_states, padding_mask)
        for layer in self.layers:
            # the input goes first and positionally: the output recorder reads it as the initial hidden state
            hidden_states = layer(hidden_states, attention_mask, position_embeddings, **kwargs)
        return hidden_states


# Copied from transformers.models.detr.modeling_detr.DetrMLPPredictionHead with Detr->EpmVG
class EpmVGMLPPredictionHead(nn.Module):
    """
    Very simple multi-layer perceptron (MLP, also called FFN), used to predict the normalized center coordinates,
    height and width of a bounding box w.r.t. an image.

    """

    def __init__(self, input_dim, hidden_dim, output_dim, num_layers):
        super().__init__()
        self.num_layers = num_layers
        h = [hidden_dim] * (num_layers - 1)
        self.layers = nn.ModuleList(nn.Linear(n, k) for n, k in zip([input_dim] + h, h + [output_dim]))

    def forward(self, x):
        for i, layer in enumerate(self.layers):
            x = nn.functional.relu(layer(x)) if i < self.num_layers - 1 else layer(x)
        return x


class EpmVGDenseHead(nn.Module):
    """
    A linear dense-prediction head on visual tokens: objectness, one logit set per attribute, and a box per token.
    Training-only: it teaches the visual branch what a COCO-trained DETR gives TransVG (objects, their kinds, boxes).
    """

    def __init__(self, config: EpmVGConfig):
        super().__init__()
        self.attribute_classes = list(config.dense_attribute_classes)
        self.projection = nn.Linear(config.d_model, 1 + sum(self.attribute_classes) + 4)

    def forward(self, visual_tokens: torch.Tensor) -> torch.Tensor:
        return self.projection(visual_tokens)


class EpmVGPreTrainedModel(PreTrainedModel):
    config: EpmVGConfig
    config_class = EpmVGConfig
    base_model_prefix = "model"
    main_input_name = "pixel_values"
    input_modalities = ("image", "text")
    supports_gradient_checkpointing = True
    _no_split_modules = ["EpmVGConvEncoder", "EpmVGEncoderLayer"]
    _supports_sdpa = True
    _supports_flash_attn = True
    _supports_attention_backend = True
    _supports_flex_attn = True  # the masks come from create_bidirectional_mask

    @classmethod
    def from_pretrained(cls, *args, **kwargs):
        r"""
        [`PreTrainedModel.from_pretrained`], then the stem and the first `config.freeze_backbone_stages` backbone
        stages frozen again: loading re-creates every parameter it reads as a trainable one.
        """
        loaded = super().from_pretrained(*args, **kwargs)
        model = loaded[0] if isinstance(loaded, tuple) else loaded  # with output_loading_info=True
        for module in model.modules():
            if isinstance(module, EpmVGConvEncoder):
                module.freeze_stages(model.config.freeze_backbone_stages)
        return loaded

    @staticmethod
    def _finalize_model_loading(model, load_config, loading_info):
        """
        [`PreTrainedModel._finalize_model_loading`], refusing weights whose shapes differ from the config's with a
        `ValueError` that names the config field behind them (transformers would raise a bare `RuntimeError`).
        """
        if loading_info.mismatched_keys and not load_config.ignore_mismatched_sizes:
            raise ValueError(
                _mismatched_weights_message(
                    model.config, loading_info.mismatched_keys, load_config.pretrained_model_name_or_path
                )
            )
        return PreTrainedModel._finalize_model_loading(model, load_config, loading_info)

    def set_attn_implementation(self, attn_implementation: str | dict, allow_all_kernels: bool = False):
        """[`PreTrainedModel.set_attn_implementation`], the convolutional backbone staying on eager (no attention)."""
        super().set_attn_implementation(with_eager_backbone(attn_implementation), allow_all_kernels)

    @torch.no_grad()
    def _init_weights(self, module: nn.Module):
        """TransVG's init: N(0, init_std) tables, Xavier on encoder matrices, PyTorch defaults for projections."""
        if isinstance(module, EpmVGModel):
            init.normal_(module.reg_token, std=self.config.init_std)
            init.normal_(module.fusion_position_embeddings.weight, std=self.config.init_std)
        elif isinstance(module, EpmVGEncoderLayer):
            for parameter in module.parameters():
                if parameter.dim() > 1:
                    init.xavier_uniform_(parameter)
        elif isinstance(module, EpmVGFrozenBatchNorm2d):
            init.ones_(module.weight)
            init.zeros_(module.bias)
            init.zeros_(module.running_mean)
            init.ones_(module.running_var)
        elif isinstance(module, (nn.Linear, nn.Conv2d)):
            # encoder layers are visited after their Linear children and overwrite them with Xavier
            _torch_default_init(module)
        elif isinstance(module, nn.LayerNorm):
            init.ones_(module.weight)
            init.zeros_(module.bias)


def _torch_default_init(module: nn.Module) -> None:
    """PyTorch's own `reset_parameters` for Linear / Conv2d, through transformers' init guards."""
    init.kaiming_uniform_(module.weight, a=math.sqrt(5))
    if module.bias is not None:
        fan_in = module.weight[0].numel()
        bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
        init.uniform_(module.bias, -bound, bound)


# (tensor name pattern, axis, what sizes it) for naming the config field behind a checkpoint's mismatched shape
SHAPE_FIELDS = (
    (r"(^|\.)vision_projection\.weight$", 0, "`d_model` is {config} in the config but {weights} in the weights"),
    (
        r"(^|\.)vision_encoder\.layers\.\d+\.mlp\.fc1\.weight$",
        0,
        "`vision_encoder_ffn_dim` is {config} in the config but {weights} in the weights",
    ),
    (
        r"(^|\.)fusion_encoder\.layers\.\d+\.mlp\.fc1\.weight$",
        0,
        "`fusion_ffn_dim` is {config} in the config but {weights} in the weights",
    ),
    (
        r"(^|\.)fusion_position_embeddings\.weight$",
        0,
        "the fusion position table (1 [REG] + `max_text_len` + (`image_size` / `backbone_stride`)^2 visual tokens) "
        "has {config} rows in the config (max_text_len {max_text_len}, image_size {image_size}) but {weights} in the "
        "weights (max_text_len {weights_text_len} at this image_size)",
    ),
    (
        r"(^|\.)input_projection\.weight$",
        1,
        "the backbone (`backbone_config`) gives {config} channels in the config but {weights} in the weights",
    ),
    (
        r"(^|\.)word_embeddings\.weight$",
        0,
        "`text_config.vocab_size` is {config} in the config but {weights} in the weights",
    ),
    (
        r"(^|\.)word_embeddings\.weight$",
        1,
        "`text_config.hidden_size` is {config} in the config but {weights} in the weights",
    ),
    (
        r"(^|\.)text_backbone\.embeddings\.position_embeddings\.weight$",
        0,
        "`text_config.max_position_embeddings` is {config} in the config but {weights} in the weights",
    ),
    (
        r"(^|\.)dense_head\.projection\.weight$",
        0,
        "`dense_attribute_classes` {dense_attribute_classes} give {config} dense outputs in the config but the "
        "weights have {weights}",
    ),
)


def _mismatched_weights_message(config: EpmVGConfig, mismatched_keys, source) -> str:
    """What differs between a checkpoint's weights and the model its config builds, named by config field."""
    mismatched = sorted(mismatched_keys)
    reasons = []
    for pattern, axis, reason in SHAPE_FIELDS:
        for name, weights_shape, model_shape in mismatched:
            if re.search(pattern, name) and weights_shape[axis] != model_shape[axis]:
                sizes = {"config": model_shape[axis], "weights": weights_shape[axis]}
                sizes["weights_text_len"] = sizes["weights"] - 1 - config.num_visual_tokens
                reasons.append(reason.format(**sizes, **config.to_dict()))
                break
    shown = [
        f"{name} {tuple(weights)} in the weights vs {tuple(model)} for the config"
        for name, weights, model in mismatched
    ]
    more = f" and {len(shown) - 3} more" if len(shown) > 3 else ""
    return (
        f"The weights in {source} do not fit the model its config describes: "
        f"{'; '.join(reasons) or 'no config field explains it'}. Tensors that differ in shape ({len(shown)}): "
        f"{', '.join(shown[:3])}{more}. Set the config (config.json) back to the values the weights were trained "
        "with, or pass ignore_mismatched_sizes=True to from_pretrained to initialize those tensors anew (then train "
        "them)."
    )


class EpmVGVisualBranchMixin:
    """
    The visual branch (CNN backbone, input projection, sine positions, transformer encoder, output projection), built
    on the model itself so its weights keep one set of names in every EpmVG model and checkpoint.
    """

    def _build_visual_branch(self, config: EpmVGConfig) -> None:
        self.backbone = EpmVGConvEncoder(config)
        self.input_projection = nn.Conv2d(self.backbone.num_channels, config.d_model, kernel_size=1)
        self.vision_position_embedding = EpmVGSinePositionEmbedding(
            config.d_model, config.position_embedding_temperature
        )
        self.vision_encoder = EpmVGEncoder(
            config, config.vision_encoder_layers, config.vision_encoder_attention_heads, config.vision_encoder_ffn_dim
        )
        self.vision_projection = nn.Linear(config.d_model, config.d_model)

    def _check_pixel_values(self, pixel_values: torch.Tensor) -> None:
        size = self.config.image_size
        if pixel_values.dim() != 4 or pixel_values.shape[1] != 3 or tuple(pixel_values.shape[-2:]) != (size, size):
            raise ValueError(
                f"`pixel_values` must have shape (batch_size, 3, {size}, {size}) for this model (image_size={size}), "
                f"got {tuple(pixel_values.shape)}: prepare images with EpmVGProcessor / EpmVGImageProcessor "
                f"using size={size}."
            )

    def encode_image(self, pixel_values: torch.Tensor, pixel_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Visual branch: (batch, num_visual_tokens, d_model) tokens and their (batch, num_visual_tokens) mask."""
        feature_map, mask = self.backbone(pixel_values, pixel_mask)
        if feature_map.shape[-2:].numel() != self.config.num_visual_tokens:
            raise ValueError(
                f"The backbone gives a {tuple(feature_map.shape[-2:])} feature map, but the config expects "
                f"{self.config.num_visual_tokens} visual tokens (image_size {self.config.image_size} / "
                f"backbone_stride {self.config.backbone_stride}): set `backbone_stride` to the backbone's real "
                "output stride."
            )
        tokens = self.input_projection(feature_map).flatten(2).transpose(1, 2)
        positions = self.vision_position_embedding(mask)
        mask = mask.flatten(1)
        return self.vision_projection(self.vision_encoder(tokens, positions, mask)), mask


class EpmVGVisionModel(EpmVGVisualBranchMixin, EpmVGPreTrainedModel):
    r"""
    EpmVG's visual branch alone (what TransVG initializes from a COCO-trained DETR): CNN backbone, transformer
    encoder and projection, giving the visual tokens the fusion encoder reads.
    """

    def __init__(self, config: EpmVGConfig):
        super().__init__(config)
        self._build_visual_branch(config)
        # Initialize weights and apply final processing
        self.post_init()

    def forward(
        self, pixel_values: torch.FloatTensor, pixel_mask: torch.LongTensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """`(batch, num_visual_tokens, d_model)` visual tokens and their `(batch, num_visual_tokens)` mask."""
        self._check_pixel_values(pixel_values)
        if pixel_mask is None:
            pixel_mask = torch.ones_like(pixel_values[:, 0], dtype=torch.long)
        return self.encode_image(pixel_values, pixel_mask)


class EpmVGModel(EpmVGVisualBranchMixin, EpmVGPreTrainedModel):
    r"""
    The EpmVG/TransVG encoder without the box head: visual branch (CNN backbone + transformer encoder), linguistic
    branch (BERT), and the visual-linguistic fusion encoder over `[REG, text slots, visual tokens]`.
    """

    # the fusion encoder's layers only: the visual encoder is built from the same classes
    _can_record_outputs = {
        "hidden_states": OutputRecorder(
            EpmVGEncoderLayer, layer_name="fusion_encoder", num_hidden_layers_key="fusion_layers"
        ),
        "attentions": OutputRecorder(EpmVGSelfAttention, index=1, layer_name="fusion_encoder"),
    }

    def __init__(self, config: EpmVGConfig):
        super().__init__(config)
        self._build_visual_branch(config)
        # the pooler is never used: TransVG reads every slot of the last layer
        self.text_backbone = AutoModel.from_config(config.text_config, add_pooling_layer=False)
        self.text_projection = nn.Linear(config.text_config.hidden_size, config.d_model)
        self.reg_token = nn.Parameter(torch.zeros(1, config.d_model))
        self.fusion_position_embeddings = nn.Embedding(config.num_fusion_tokens, config.d_model)
        self.fusion_encoder = EpmVGEncoder(
            config, config.fusion_layers, config.fusion_attention_heads, config.fusion_ffn_dim
        )
        # Initialize weights and apply final processing
        self.post_init()

    def freeze_backbone(self) -> None:
        """Freezes the whole CNN backbone."""
        self.backbone.requires_grad_(False)

    def unfreeze_backbone(self) -> None:
        """Unfreezes the backbone except the stages the config keeps frozen."""
        self.backbone.requires_grad_(True)
        self.backbone.freeze_stages(self.config.freeze_backbone_stages)

    def freeze_text_encoder(self) -> None:
        """Freezes the BERT text encoder."""
        self.text_backbone.requires_grad_(False)

    def unfreeze_text_encoder(self) -> None:
        """Unfreezes the BERT text encoder."""
        self.text_backbone.requires_grad_(True)

    def _check_inputs(self, pixel_values: torch.Tensor, input_ids: torch.Tensor) -> None:
        self._check_pixel_values(pixel_values)
        if input_ids is None or input_ids.dim() != 2:
            raise ValueError("`input_ids` of shape (batch_size, sequence_length) are required: tokenize the text.")
        if input_ids.shape[1] > self.config.max_text_len:
            raise ValueError(
                f"`input_ids` has {input_ids.shape[1]} tokens but the model has {self.config.max_text_len} text "
                f"slots: tokenize with max_length={self.config.max_text_len}, truncation=True (EpmVGProcessor does)."
            )
        if input_ids.shape[0] != pixel_values.shape[0]:
            raise ValueError(
                f"Got {pixel_values.shape[0]} images but {input_ids.shape[0]} texts: pass one expression per image."
            )

    def _check_attention_outputs(self, output_attentions: bool | None) -> None:
        if output_attentions and self.config._attn_implementation != "eager":
            raise ValueError(
                f"output_attentions=True needs the eager attention, but this model uses "
                f'{self.config._attn_implementation!r}: load it with attn_implementation="eager" or call '
                'model.set_attn_implementation("eager").'
            )

    def _check_text_hidden_states(self, text_hidden_states: torch.Tensor, input_ids: torch.Tensor) -> None:
        expected = (*input_ids.shape, self.config.text_config.hidden_size)
        if tuple(text_hidden_states.shape) != expected:
            raise ValueError(
                f"`text_hidden_states` has shape {tuple(text_hidden_states.shape)} but `input_ids` of shape "
                f"{tuple(input_ids.shape)} need {expected}: pass the text encoder's last hidden state for these "
                "input_ids (e.g. from an EpmVGTextStateCache), or leave it out to run the text encoder."
            )
        if self.training and _has_trainable_parameters(self.text_backbone):
            raise ValueError(
                "`text_hidden_states` skips the text encoder, which is training (not frozen): freeze it with "
                "model.freeze_text_encoder(), or leave `text_hidden_states` out."
            )

    def encode_text(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
        text_hidden_states: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """
        Linguistic branch: (batch, max_text_len, d_model) tokens and their mask, padded to every text slot. Given
        `text_hidden_states` (the frozen text encoder's output for `input_ids`, computed beforehand), the text
        encoder is skipped.
        """
        missing = self.config.max_text_len - input_ids.shape[1]
        if text_hidden_states is None:
            states = self.text_backbone(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state
        else:
            self._check_text_hidden_states(text_hidden_states, input_ids)
            states = text_hidden_states
        # shorter (dynamically padded) text fills the remaining slots as padding, so every slot keeps its position
        states = F.pad(states, (0, 0, 0, missing))
        mask = F.pad(attention_mask.bool(), (0, missing), value=False)
        return self.text_projection(states), mask

    @merge_with_config_defaults
    @capture_outputs
    def forward(
        self,
        pixel_values: torch.FloatTensor,
        pixel_mask: torch.LongTensor | None = None,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.LongTensor | None = None,
        token_type_ids: torch.LongTensor | None = None,
        text_hidden_states: torch.FloatTensor | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> tuple | EpmVGModelOutput:
        r"""
        pixel_mask (`torch.LongTensor` of shape `(batch_size, height, width)`, *optional*):
            1 on real pixels, 0 on canvas padding. Defaults to all ones.
        attention_mask (`torch.LongTensor` of shape `(batch_size, sequence_length)`, *optional*):
            1 on real tokens, 0 on padding. Defaults to all ones.
        text_hidden_states (`torch.FloatTensor` of shape `(batch_size, sequence_length, text_dim)`, *optional*):
            The text encoder's last hidden state for `input_ids` (`text_dim` is `text_config.hidden_size`), computed
            beforehand: the text encoder is then skipped (a frozen one, e.g. cached once for training by an
            `EpmVGTextStateCache`).

        `output_hidden_states=True` returns the fusion encoder's input and every fusion layer's output;
        `output_attentions=True` (with `attn_implementation="eager"`) every fusion layer's attention weights.
        """
        self._check_inputs(pixel_values, input_ids)
        self._check_attention_outputs(kwargs.get("output_attentions"))
        if pixel_mask is None:
            pixel_mask = torch.ones_like(pixel_values[:, 0], dtype=torch.long)
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        visual_tokens, visual_mask = self.encode_image(pixel_values, pixel_mask)
        text_tokens, text_mask = self.encode_text(input_ids, attention_mask, token_type_ids, text_hidden_states)

        batch_size = pixel_values.shape[0]
        reg_token = self.reg_token.expand(batch_size, -1, -1)
        sequence = torch.cat([reg_token, text_tokens, visual_tokens], dim=1)
        mask = torch.cat([visual_mask.new_ones(batch_size, 1), text_mask, visual_mask], dim=1)
        positions = self.fusion_position_embeddings.weight[None]
        hidden_states = self.fusion_encoder(sequence, positions, mask, **kwargs)
        first_visual_slot = 1 + self.config.max_text_len
        return EpmVGModelOutput(
            last_hidden_state=hidden_states,
            reg_embeds=hidden_states[:, 0],
            image_embeds=hidden_states[:, first_visual_slot],
            text_embeds=hidden_states[:, 1],
        )


class EpmVGForVisualGrounding(EpmVGPreTrainedModel):
    r"""
    EpmVG for visual grounding: [`EpmVGModel`] plus a 3-layer MLP on the [REG] output predicting one box per
    (image, expression) pair.
    """

    def __init__(self, config: EpmVGConfig):
        super().__init__(config)
        self.model = EpmVGModel(config)
        self.bbox_predictor = EpmVGMLPPredictionHead(config.d_model, config.d_model, 4, num_layers=3)
        # training-only auxiliary heads, built only when their terms are on (the paper's model has neither)
        self.dense_head = EpmVGDenseHead(config) if config.auxiliary_dense_loss_coefficient else None
        self.target_token_scorer = (
            nn.Linear(config.d_model, 1) if config.auxiliary_target_token_loss_coefficient else None
        )
        # Initialize weights and apply final processing
        self.post_init()

    @classmethod
    def from_backbone_text_pretrained(
        cls,
        backbone_model_name_or_path: str | None,
        text_model_name_or_path: str,
        pretrained_kwargs: dict | None = None,
        text_config_kwargs: dict | None = None,
        backbone_pretrained_kwargs: dict | None = None,
        **config_kwargs,
    ) -> "EpmVGForVisualGrounding":
        r"""
        Builds a model whose visual and linguistic branches start from pretrained checkpoints (TransVG's recipe);
        the fusion encoder, projections, [REG] token and box head start from TransVG's random init.

        Args:
            backbone_model_name_or_path (`str`, *optional*):
                Hub id or local folder of an `AutoBackbone`-loadable vision model (a ResNet, Swin, ConvNeXt, ...; its
                last stage is used), of a transformers DETR checkpoint (timm or no_timm layout, e.g.
                `facebook/detr-resnet-50`), whose ResNet, encoder and input projection then initialize the whole
                visual branch (TransVG's initialization; its decoder and heads are left out), or of an
                [`EpmVGForVisualPretraining`] checkpoint (the whole visual branch, and the dense head when the
                config turns the dense auxiliary term on). `None` keeps the visual branch random (built from
                `backbone_config` in `config_kwargs`, or ResNet-50).
            text_model_name_or_path (`str`):
                Hub id or local folder of a BERT-family encoder (e.g. `bert-base-uncased`).
            pretrained_kwargs (`dict`, *optional*):
                Passed to every `from_pretrained` call (`revision`, `cache_dir`, `local_files_only`, ...).
            text_config_kwargs (`dict`, *optional*):
                Overrides of the text encoder's config, e.g. `{"num_hidden_layers": 2}` keeps its first two layers.
            backbone_pretrained_kwargs (`dict`, *optional*):
                Passed to the visual checkpoint's loading only, over `pretrained_kwargs`: e.g. `{"revision":
                "no_timm"}` picks a revision of the DETR repo without asking the text encoder's repo for it.
            config_kwargs:
                Other [`EpmVGConfig`] fields (`image_size`, `max_text_len`, `fusion_layers`, ...).

        Examples:

        ```python
        >>> model = EpmVGForVisualGrounding.from_backbone_text_pretrained(
        ...     "facebook/detr-resnet-50", "google-bert/bert-base-uncased", max_text_len=20
        ... )  # doctest: +SKIP
        ```
        """
        pretrained_kwargs = pretrained_kwargs or {}
        text_model = AutoModel.from_pretrained(
            text_model_name_or_path, add_pooling_layer=False, **pretrained_kwargs, **(text_config_kwargs or {})
        )
        weights = {f"model.text_backbone.{k}": v for k, v in text_model.state_dict().items()}
        vision = ConversionResult()
        if backbone_model_name_or_path is not None:
            vision, vision_config_kwargs = _pretrained_visual_branch(
                backbone_model_name_or_path, pretrained_kwargs | (backbone_pretrained_kwargs or {})
            )
            config_kwargs = vision_config_kwargs | config_kwargs
        vision_weights = vision.state_dict
        model = cls(EpmVGConfig(text_config=text_model.config, **config_kwargs))
        if model.dense_head is None:
            # a pretraining checkpoint's dense head is only wanted by the dense auxiliary term
            vision_weights = {k: v for k, v in vision_weights.items() if not k.startswith("dense_head.")}
        missing, unexpected = model.load_state_dict(weights | vision_weights, strict=False)
        if unexpected:
            raise ValueError(f"Pretrained weights that fit nowhere in EpmVG: {unexpected[:10]}")
        left_out = ", ".join(f"{reason} ({count} tensors)" for reason, count in vision.skipped_by_reason().items())
        logger.warning(
            "EpmVG built from pretrained parts; from %s: %s (left out: %s); from %s: text_backbone; newly initialized "
            "(train them): %s",
            backbone_model_name_or_path or "nowhere (random visual branch)",
            ", ".join(_module_names(vision_weights)) or "-",
            left_out or "nothing",
            text_model_name_or_path,
            ", ".join(_module_names(missing)),
        )
        return model

    def freeze_backbone(self) -> None:
        """Freezes the whole CNN backbone."""
        self.model.freeze_backbone()

    def freeze_text_encoder(self) -> None:
        """Freezes the BERT text encoder."""
        self.model.freeze_text_encoder()

    @can_return_tuple
    def forward(
        self,
        pixel_values: torch.FloatTensor,
        pixel_mask: torch.LongTensor | None = None,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.LongTensor | None = None,
        token_type_ids: torch.LongTensor | None = None,
        labels: torch.FloatTensor | None = None,
        dense_labels: torch.FloatTensor | None = None,
        text_hidden_states: torch.FloatTensor | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> tuple | EpmVGVisualGroundingOutput:
        r"""
        pixel_mask (`torch.LongTensor` of shape `(batch_size, height, width)`, *optional*):
            1 on real pixels, 0 on canvas padding. Defaults to all ones.
        text_hidden_states (`torch.FloatTensor` of shape `(batch_size, sequence_length, text_dim)`, *optional*):
            The frozen text encoder's last hidden state for `input_ids`, computed beforehand; skips the text
            encoder (see [`EpmVGModel.forward`]).
        labels (`torch.FloatTensor` of shape `(batch_size, 4)`, *optional*):
            Ground-truth boxes, normalized (center_x, center_y, width, height) in the padded canvas, as produced by
            [`EpmVGProcessor`] when given `boxes=`.
        dense_labels (`torch.FloatTensor` of shape `(batch_size, num_visual_tokens, 4 + num_attributes)`, *optional*):
            Per-token targets of the dense auxiliary term (see [`~loss_epmvg.dense_prediction_loss`]); needed with
            `labels` when `auxiliary_dense_loss_coefficient` is non-zero.

        Examples:

        ```python
        >>> import torch
        >>> from PIL import Image
        >>> from transformers import BertTokenizer, BertConfig, ResNetConfig
        >>> from modeling_epmvg import EpmVGConfig, EpmVGForVisualGrounding
        >>> from processing import EpmVGImageProcessor, EpmVGProcessor

        >>> config = EpmVGConfig(
        ...     backbone_config=ResNetConfig(embedding_size=8, hidden_sizes=[8, 8, 8, 16], depths=[1, 1, 1, 1],
        ...                                  layer_type="basic", out_features=["stage4"]),
        ...     text_config=BertConfig(vocab_size=16, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
        ...                            intermediate_size=32),
        ...     d_model=16, vision_encoder_layers=1, vision_encoder_attention_heads=2, vision_encoder_ffn_dim=32,
        ...     fusion_layers=1, fusion_attention_heads=2, fusion_ffn_dim=32, image_size=64, max_text_len=8)
        >>> model = EpmVGForVisualGrounding(config).eval()
        >>> vocab = {t: i for i, t in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "the", "red", "box"])}
        >>> processor = EpmVGProcessor.from_model_config(config, BertTokenizer(vocab=vocab))
        >>> image = Image.new("RGB", (120, 80), "white")
        >>> inputs = processor(images=image, text="the red box", return_tensors="pt")
        >>> with torch.inference_mode():
        ...     outputs = model(**inputs)
        >>> result = processor.post_process_visual_grounding(outputs, target_sizes=[(80, 120)])[0]
        >>> result["boxes"].shape
        torch.Size([1, 4])
        ```
        """
        auxiliary = labels is not None and (self.dense_head is not None or self.target_token_scorer is not None)
        # the auxiliary terms read the fusion input and an intermediate fusion layer
        recorded_for_auxiliary = auxiliary and not kwargs.get("output_hidden_states", self.config.output_hidden_states)
        if recorded_for_auxiliary:
            kwargs["output_hidden_states"] = True
        outputs = self.model(
            pixel_values,
            pixel_mask=pixel_mask,
            input_ids=input_ids,
            attention_mask=attention_mask,
            token_type_ids=token_type_ids,
            text_hidden_states=text_hidden_states,
            **kwargs,
        )
        pred_boxes = self.bbox_predictor(outputs.reg_embeds).sigmoid()
        loss, loss_dict = None, None
        if labels is not None:
            labels = _check_labels(labels, pred_boxes)
            loss, loss_dict = grounding_loss(pred_boxes, labels, self.config)
            for name, (coefficient, term) in self._auxiliary_terms(
                outputs.hidden_states, labels, dense_labels
            ).items():
                loss = loss + coefficient * term
                loss_dict[name] = term
        return EpmVGVisualGroundingOutput(
            loss=loss,
            loss_dict=loss_dict,
            pred_boxes=pred_boxes,
            image_embeds=outputs.image_embeds,
            text_embeds=outputs.text_embeds,
            last_hidden_state=outputs.last_hidden_state,
            hidden_states=None if recorded_for_auxiliary else outputs.hidden_states,
            attentions=outputs.attentions,
        )

    def _auxiliary_terms(
        self, hidden_states: tuple[torch.Tensor, ...], labels: torch.Tensor, dense_labels: torch.Tensor | None
    ) -> dict[str, tuple[float, torch.Tensor]]:
        """`{name: (coefficient, unweighted term)}` of the training-only auxiliary terms that are on."""
        terms = {}
        first_visual_slot = 1 + self.config.max_text_len
        if self.dense_head is not None:
            if dense_labels is None:
                raise ValueError(
                    "auxiliary_dense_loss_coefficient is non-zero but the batch has no `dense_labels`: give the data "
                    "collator a dense labeler (scene annotations), or set the coefficient to 0."
                )
            visual_inputs = hidden_states[0][:, first_visual_slot:]
            dense_loss, _ = dense_prediction_loss(
                self.dense_head(visual_inputs), dense_labels, self.config.dense_attribute_classes
            )
            terms["loss_aux_dense"] = (self.config.auxiliary_dense_loss_coefficient, dense_loss)
        if self.target_token_scorer is not None:
            layer = self.config.auxiliary_target_token_layer
            # hidden_states holds the fusion input, then the output of every layer
            layer_output = hidden_states[layer + 1 if layer >= 0 else layer][:, first_visual_slot:]
            scores = self.target_token_scorer(layer_output).squeeze(-1)
            term = target_token_loss(scores, labels, self.config.visual_grid_size)
            terms["loss_aux_target_token"] = (self.config.auxiliary_target_token_loss_coefficient, term)
        return terms


class EpmVGForVisualPretraining(EpmVGPreTrainedModel):
    r"""
    EpmVG's visual branch with a dense per-token head, for pretraining the visual branch on scenes whose objects are
    annotated (the synthetic benchmark gives every object's box and attributes): the counterpart of TransVG starting
    its visual branch from a COCO-trained DETR. Load the result into a grounding model with
    [`EpmVGForVisualGrounding.from_backbone_text_pretrained`] (its weights keep the grounding model's names).
    """

    def __init__(self, config: EpmVGConfig):
        super().__init__(config)
        if config.dense_attribute_classes is None:
            raise ValueError(
                "EpmVGForVisualPretraining needs `dense_attribute_classes` in the config (class counts of the "
                "annotated attributes, e.g. [5, 5, 2] for colours, shapes and sizes)."
            )
        self.model = EpmVGVisionModel(config)
        self.dense_head = EpmVGDenseHead(config)
        # Initialize weights and apply final processing
        self.post_init()

    @can_return_tuple
    def forward(
        self,
        pixel_values: torch.FloatTensor,
        pixel_mask: torch.LongTensor | None = None,
        dense_labels: torch.FloatTensor | None = None,
    ) -> tuple | EpmVGVisualPretrainingOutput:
        r"""
        pixel_mask (`torch.LongTensor` of shape `(batch_size, height, width)`, *optional*):
            1 on real pixels, 0 on canvas padding. Defaults to all ones.
        dense_labels (`torch.FloatTensor` of shape `(batch_size, num_visual_tokens, 4 + num_attributes)`, *optional*):
            Per-token targets (see [`~loss_epmvg.dense_prediction_loss`]).
        """
        tokens, _ = self.model(pixel_values, pixel_mask)
        logits = self.dense_head(tokens)
        loss = loss_dict = None
        if dense_labels is not None:
            loss, terms = dense_prediction_loss(logits, dense_labels, self.config.dense_attribute_classes)
            loss_dict = {f"loss_{name}": value for name, value in terms.items()}
        return EpmVGVisualPretrainingOutput(loss=loss, loss_dict=loss_dict, logits=logits, last_hidden_state=tokens)


# the config fields that shape the visual branch (and its dense head) of an EpmVG checkpoint
VISUAL_BRANCH_FIELDS = (
    "backbone_config",
    "backbone_stride",
    "d_model",
    "vision_encoder_layers",
    "vision_encoder_attention_heads",
    "vision_encoder_ffn_dim",
    "dense_attribute_classes",
)


def _module_names(parameter_names) -> list[str]:
    """The modules of `EpmVGForVisualGrounding` (below `model.` for the encoder's) that `parameter_names` fall in."""
    return sorted({name.removeprefix("model.").split(".")[0] for name in parameter_names})


def _pretrained_visual_branch(name_or_path: str, pretrained_kwargs: dict) -> tuple[ConversionResult, dict]:
    """
    Weights (named inside `EpmVGForVisualGrounding`, with the tensors left out and why) and config fields of a
    pretrained backbone, DETR checkpoint or [`EpmVGForVisualPretraining`] checkpoint.
    """
    # read as a dict: a DETR config with a timm backbone would make transformers build a timm one
    config_dict, _ = PreTrainedConfig.get_config_dict(name_or_path, **pretrained_kwargs)
    if config_dict.get("model_type") == "detr":
        return load_detr_visual_branch(name_or_path, **pretrained_kwargs)
    if config_dict.get("model_type") == EpmVGConfig.model_type:
        pretrained = EpmVGForVisualPretraining.from_pretrained(name_or_path, **pretrained_kwargs)
        fields = {name: getattr(pretrained.config, name) for name in VISUAL_BRANCH_FIELDS}
        return ConversionResult(state_dict=pretrained.state_dict()), fields
    vision_config = AutoConfig.from_pretrained(name_or_path, **pretrained_kwargs)
    backbone = _backbone_class(vision_config).from_pretrained(
        name_or_path, out_features=[vision_config.stage_names[-1]], **pretrained_kwargs
    )
    weights = {f"model.backbone.model.{k}": v for k, v in backbone.state_dict().items()}
    return ConversionResult(state_dict=weights), {"backbone_config": backbone.config}


def _backbone_class(vision_config) -> type[PreTrainedModel]:
    """The backbone class of a vision config (AutoBackbone.from_pretrained asks the Hub even for local folders)."""
    if type(vision_config) not in MODEL_FOR_BACKBONE_MAPPING:
        raise ValueError(
            f"A {vision_config.model_type!r} checkpoint has no transformers backbone class: pass a backbone "
            "checkpoint (e.g. a ResNet such as microsoft/resnet-50, or a Swin) or a DETR checkpoint."
        )
    return MODEL_FOR_BACKBONE_MAPPING[type(vision_config)]


def _check_labels(labels: torch.Tensor, pred_boxes: torch.Tensor) -> torch.Tensor:
    if tuple(labels.shape) != tuple(pred_boxes.shape):
        raise ValueError(
            f"`labels` must have shape {tuple(pred_boxes.shape)} (one normalized cxcywh box per example), got "
            f"{tuple(labels.shape)}: pass `boxes=` to EpmVGProcessor to build them."
        )
    return labels


__all__ = [
    "EpmVGForVisualGrounding",
    "EpmVGForVisualPretraining",
    "EpmVGModel",
    "EpmVGPreTrainedModel",
    "EpmVGVisionModel",
    "EpmVGVisualGroundingOutput",
    "EpmVGVisualPretrainingOutput",
]
