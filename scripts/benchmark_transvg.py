# Copyright 2026 The epmvg authors. Licensed under the Apache License, Version 2.0.
"""
TransVG's own code (a checkout of djiajunustc/TransVG, given as `--transvg-source DIR`) as the benchmark's reference:
its model is built by its own `models.build_model` from the defaults of its own `train.py` argument parser, with
random weights, and trained as its `engine.train_one_epoch` does. Nothing of it is copied into this project.

Two things stand in for what its code cannot get here, in the benchmark's subprocess only:

- torchvision: TransVG's model code imports `torchvision.models.resnet50` (built with its `FrozenBatchNorm2d`),
  `torchvision.models._utils.IntermediateLayerGetter`, `torchvision.ops.boxes.box_area`, `torchvision._is_tracing`
  and `torchvision.ops.misc.interpolate`, and its `utils/misc.py` only imports with torchvision 0.7-0.9 (it compares
  `float(torchvision.__version__[:3])`); torchvision does not import beside this torch. `install_torchvision_stand_in`
  puts small `sys.modules` entries with those symbols in its place: the ResNet is torchvision's layout (bottlenecks
  with the stride on the 3x3 convolution, one in-place ReLU per block) and runs the same convolutions.
- bert-base-uncased's weights (offline): `pytorch_pretrained_bert`'s `BertModel.from_pretrained` builds the model from
  bert-base-uncased's configuration with random weights. TransVG's code needs `pytorch-pretrained-bert` installed
  (`pip install pytorch-pretrained-bert==0.6.2`, its own dependency).
"""

import argparse
import ast
import importlib.util
import sys
import types
from collections import OrderedDict
from pathlib import Path


# the layout of torchvision's ResNets: blocks per stage
RESNET_DEPTHS = {"resnet50": (3, 4, 6, 3), "resnet101": (3, 4, 23, 3)}
# bert-base-uncased's configuration (its config.json)
BERT_BASE_UNCASED = {
    "vocab_size_or_config_json_file": 30522,
    "hidden_size": 768,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "intermediate_size": 3072,
    "max_position_embeddings": 512,
    "type_vocab_size": 2,
}
# TransVG's own files that the reference runs
REQUIRED_FILES = ("train.py", "models/trans_vg.py", "utils/loss_utils.py")


def check_source(folder: str) -> str | None:
    """Why `folder` cannot serve as the TransVG reference (None when it can)."""
    path = Path(folder)
    missing = [name for name in REQUIRED_FILES if not (path / name).is_file()]
    if missing:
        return (
            f"--transvg-source {folder} is not a checkout of djiajunustc/TransVG (it lacks {', '.join(missing)}): "
            "git clone https://github.com/djiajunustc/TransVG and pass its folder."
        )
    if importlib.util.find_spec("pytorch_pretrained_bert") is None:
        return (
            "TransVG's code needs its text encoder package: pip install pytorch-pretrained-bert==0.6.2 "
            "(or drop --transvg-source)."
        )
    return None


def _resnet_module():
    """`torchvision.models` with torchvision's ResNet-50 / ResNet-101 (no pretrained weights)."""
    from torch import nn

    class Bottleneck(nn.Module):
        expansion = 4

        def __init__(self, inplanes: int, planes: int, stride: int, norm_layer):
            super().__init__()
            self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
            self.bn1 = norm_layer(planes)
            self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
            self.bn2 = norm_layer(planes)
            self.conv3 = nn.Conv2d(planes, planes * self.expansion, 1, bias=False)
            self.bn3 = norm_layer(planes * self.expansion)
            self.relu = nn.ReLU(inplace=True)
            self.downsample = None
            if stride != 1 or inplanes != planes * self.expansion:
                self.downsample = nn.Sequential(
                    nn.Conv2d(inplanes, planes * self.expansion, 1, stride=stride, bias=False),
                    norm_layer(planes * self.expansion),
                )

        def forward(self, x):
            identity = x if self.downsample is None else self.downsample(x)
            out = self.relu(self.bn1(self.conv1(x)))
            out = self.relu(self.bn2(self.conv2(out)))
            return self.relu(self.bn3(self.conv3(out)) + identity)

    class ResNet(nn.Module):
        def __init__(self, depths, norm_layer):
            super().__init__()
            self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
            self.bn1 = norm_layer(64)
            self.relu = nn.ReLU(inplace=True)
            self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
            inplanes = 64
            for index, (planes, depth) in enumerate(zip((64, 128, 256, 512), depths)):
                blocks = []
                for block in range(depth):
                    stride = 2 if index > 0 and block == 0 else 1
                    blocks.append(Bottleneck(inplanes, planes, stride, norm_layer))
                    inplanes = planes * Bottleneck.expansion
                setattr(self, f"layer{index + 1}", nn.Sequential(*blocks))
            self.avgpool = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(inplanes, 1000)
            for module in self.modules():
                if isinstance(module, nn.Conv2d):
                    nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def builder(name: str):
        def build(pretrained=False, replace_stride_with_dilation=None, norm_layer=nn.BatchNorm2d, **kwargs):
            if pretrained or any(replace_stride_with_dilation or ()):
                raise ValueError(f"The benchmark's torchvision stand-in builds {name} without weights or dilation.")
            return ResNet(RESNET_DEPTHS[name], norm_layer)

        return build

    module = types.ModuleType("torchvision.models")
    for name in RESNET_DEPTHS:
        setattr(module, name, builder(name))
    return module


def install_torchvision_stand_in() -> None:
    """`sys.modules` entries for the torchvision symbols that TransVG's model and loss code import."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    class IntermediateLayerGetter(nn.ModuleDict):
        """torchvision's: the model's children up to the last returned one; their outputs by the new names."""

        def __init__(self, model: nn.Module, return_layers: dict[str, str]):
            wanted, layers = dict(return_layers), OrderedDict()
            for name, child in model.named_children():
                layers[name] = child
                wanted.pop(name, None)
                if not wanted:
                    break
            super().__init__(layers)
            self.return_layers = dict(return_layers)

        def forward(self, x):
            out = OrderedDict()
            for name, child in self.items():
                x = child(x)
                if name in self.return_layers:
                    out[self.return_layers[name]] = x
            return out

    torchvision = types.ModuleType("torchvision")
    torchvision.__version__ = "0.9.0"  # the branch of TransVG's utils/misc.py for torchvision >= 0.7
    torchvision._is_tracing = torch.jit.is_tracing
    models = _resnet_module()
    models._utils = types.ModuleType("torchvision.models._utils")
    models._utils.IntermediateLayerGetter = IntermediateLayerGetter
    ops = types.ModuleType("torchvision.ops")
    ops.boxes = types.ModuleType("torchvision.ops.boxes")
    ops.boxes.box_area = lambda boxes: (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    ops.misc = types.ModuleType("torchvision.ops.misc")
    ops.misc.interpolate = F.interpolate
    torchvision.models, torchvision.ops = models, ops
    for module in (torchvision, models, models._utils, ops, ops.boxes, ops.misc):
        sys.modules[module.__name__] = module


def _random_bert_base_uncased() -> None:
    """`BertModel.from_pretrained("bert-base-uncased")` with random weights (no download)."""
    from pytorch_pretrained_bert import modeling

    def from_pretrained(cls, name, *args, **kwargs):
        if name != "bert-base-uncased":
            raise ValueError(f"The benchmark builds TransVG's default text encoder bert-base-uncased, not {name}.")
        return cls(modeling.BertConfig(**BERT_BASE_UNCASED))

    modeling.BertModel.from_pretrained = classmethod(from_pretrained)


def default_arguments(source: str) -> argparse.Namespace:
    """The defaults of TransVG's own `train.py` parser, read from its `get_args_parser` (train.py's other imports
    need its datasets' dependencies, so only that function is compiled from the file)."""
    tree = ast.parse(Path(source, "train.py").read_text())
    function = next(node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name == "get_args_parser")
    namespace = {"argparse": argparse}
    exec(compile(ast.Module(body=[function], type_ignores=[]), str(Path(source, "train.py")), "exec"), namespace)
    return namespace["get_args_parser"]().parse_args([])


def build(source: str, batch_size: int, image_size: int, device, train: bool):
    """TransVG's model at its defaults (random weights) on `device`, a random batch and, to train, its AdamW."""
    import torch

    install_torchvision_stand_in()
    _random_bert_base_uncased()
    sys.path.insert(0, str(Path(source).resolve()))
    from models import build_model
    from utils.misc import NestedTensor

    args = default_arguments(source)
    args.imsize, args.device = image_size, str(device)
    model = build_model(args).to(device).train(train)
    generator = torch.Generator().manual_seed(0)
    # a 4:3 image letterboxed into the canvas (TransVG's mask is True on padding) and 12 real tokens of 20
    image_mask = torch.ones(batch_size, image_size, image_size, dtype=torch.bool)
    image_mask[:, image_size // 8 : image_size - image_size // 8] = False
    pixels = torch.randn(batch_size, 3, image_size, image_size, generator=generator) * (~image_mask)[:, None]
    tokens = torch.randint(1000, 30000, (batch_size, args.max_query_len), generator=generator)
    token_mask = (torch.arange(args.max_query_len) < 12).long().expand(batch_size, -1).clone()
    image = NestedTensor(pixels.to(device), image_mask.to(device))
    text = NestedTensor(tokens.to(device), token_mask.to(device))
    target = torch.cat([0.3 + 0.4 * torch.rand(batch_size, 2), 0.1 + 0.3 * torch.rand(batch_size, 2)], -1).to(device)
    optimizer = _optimizer(model, args) if train else None
    return model, (image, text, target), optimizer


def _optimizer(model, args):
    """TransVG's train.py AdamW: the rest at --lr, the CNN, the visual transformer and BERT at their own rates."""
    import torch

    def named(keep):
        return [parameter for name, parameter in model.named_parameters() if parameter.requires_grad and keep(name)]

    groups = [
        {"params": named(lambda name: "visumodel" not in name and "textmodel" not in name)},
        {"params": named(lambda name: "visumodel" in name and "backbone" in name), "lr": args.lr_visu_cnn},
        {"params": named(lambda name: "visumodel" in name and "backbone" not in name), "lr": args.lr_visu_tra},
        {"params": named(lambda name: "textmodel" in name), "lr": args.lr_bert},
    ]
    return torch.optim.AdamW(groups, lr=args.lr, weight_decay=args.weight_decay)


def forward_step(model, batch):
    """TransVG's evaluation forward (eval.py runs it under torch.no_grad)."""
    import torch

    image, text, _ = batch
    with torch.no_grad():
        return model(image, text)


def train_step(model, batch, optimizer):
    """One step of TransVG's engine.train_one_epoch: forward, its loss, the finite-loss check, backward, AdamW."""
    import math

    from utils import loss_utils

    image, text, target = batch
    loss_dict = loss_utils.trans_vg_loss(model(image, text), target)
    losses = sum(loss_dict[key] for key in loss_dict)
    if not math.isfinite(losses.item()):
        raise FloatingPointError(f"TransVG's loss is {losses.item()}")
    optimizer.zero_grad()
    losses.backward()
    optimizer.step()
