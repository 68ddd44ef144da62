"""Backbones that return the final feature map (B, D, H, W) before pooling.

- ``resnet32``: the CIFAR ResNet of LDAM/MiSLAS: 3 stages x 5 basic blocks, widths
  16/32/64, zero-padding ("option A") shortcuts, Kaiming-normal init. 0.46M parameters,
  D = 64, an 8 x 8 map for 32 x 32 inputs.
- ``resnet50/101/152``: torchvision's ResNets without avgpool and fc, D = 2048.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from lcreg.errors import LcregError
from lcreg.registry import BACKBONES


class _ShortcutA(nn.Module):
    """Option A: subsample by 2 and zero-pad the extra channels (no parameters)."""

    def __init__(self, pad: int) -> None:
        super().__init__()
        self.pad = pad

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, self.pad, self.pad))


class BasicBlock(nn.Module):
    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_planes != planes:
            self.shortcut = _ShortcutA((planes - in_planes) // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class CifarResNet(nn.Module):
    def __init__(self, blocks_per_stage: int = 5, widths: tuple[int, int, int] = (16, 32, 64)) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, widths[0], 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        layers, in_planes = [], widths[0]
        for i, w in enumerate(widths):
            for j in range(blocks_per_stage):
                layers.append(BasicBlock(in_planes, w, stride=2 if (i > 0 and j == 0) else 1))
                in_planes = w
        self.layers = nn.Sequential(*layers)
        self.num_features = widths[-1]
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(F.relu(self.bn1(self.conv1(x))))


class TorchvisionResNet(nn.Module):
    """torchvision ResNet trunk (conv1 .. layer4), returning the feature map."""

    def __init__(self, name: str, pretrained: bool = False) -> None:
        super().__init__()
        import torchvision

        weights = "DEFAULT" if pretrained else None
        try:
            net = getattr(torchvision.models, name)(weights=weights)
        except Exception as e:  # offline without cached weights
            raise LcregError(
                f"cannot load pretrained {name} weights ({type(e).__name__}); "
                "put them in the torch hub cache or set model.pretrained=false"
            ) from None
        self.stem = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool)
        self.layers = nn.Sequential(net.layer1, net.layer2, net.layer3, net.layer4)
        self.num_features = net.fc.in_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(self.stem(x))


@BACKBONES.register("resnet32")
def resnet32(pretrained: bool = False) -> nn.Module:
    """ResNet-32 for 32 px images (CIFAR), 64 channels out."""
    if pretrained:
        raise LcregError("no pretrained weights exist for resnet32")
    return CifarResNet()


@BACKBONES.register("resnet50")
def resnet50(pretrained: bool = False) -> nn.Module:
    return TorchvisionResNet("resnet50", pretrained)


@BACKBONES.register("resnet101")
def resnet101(pretrained: bool = False) -> nn.Module:
    return TorchvisionResNet("resnet101", pretrained)


@BACKBONES.register("resnet152")
def resnet152(pretrained: bool = False) -> nn.Module:
    return TorchvisionResNet("resnet152", pretrained)


PADDINGS = ("zeros", "reflect", "circular")


def pad_borders(x: torch.Tensor, p: int, mode: str) -> torch.Tensor:
    """Pad the last two axes by ``p`` with copies of the borders, written as concatenations
    (cheap under torch.compile, where a convolution's own circular padding lowered to masked
    slice-scatters at about 200 images/s against 900). ``circular``: the opposite border, so
    no position is special; ``reflect``: the mirror image, so borders keep their content."""
    for dim in (-1, -2):
        n = x.shape[dim]
        if mode == "circular":
            parts = (x.narrow(dim, n - p, p), x, x.narrow(dim, 0, p))
        else:
            parts = (x.narrow(dim, 1, p).flip(dim), x, x.narrow(dim, n - p - 1, p).flip(dim))
        x = torch.cat(parts, dim=dim)
    return x


class BorderPaddedConv2d(nn.Conv2d):
    """A convolution whose padding copies the borders (``model.padding``) instead of zeros: a
    zero border tells the filters near it where they are, so the features can carry absolute
    position (Islam et al. 2020; Kayhan and van Gemert 2020). With ``circular`` the backbone
    is exactly equivariant to circular shifts by multiples of its stride."""

    def __init__(self, conv: nn.Conv2d, mode: str) -> None:
        pad = conv.padding[0]
        super().__init__(
            conv.in_channels,
            conv.out_channels,
            conv.kernel_size,
            conv.stride,
            0,
            conv.dilation,
            conv.groups,
            conv.bias is not None,
        )
        self.border, self.mode = pad, mode
        self.load_state_dict(conv.state_dict())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(pad_borders(x, self.border, self.mode))


def set_padding(module: nn.Module, mode: str) -> nn.Module:
    """Every padded convolution of ``module`` pads with ``mode`` (zeros: unchanged)."""
    if mode not in PADDINGS:
        raise LcregError(f"model.padding must be one of {', '.join(PADDINGS)}, got {mode!r}")
    if mode == "zeros":
        return module
    for name, child in module.named_children():
        if isinstance(child, nn.Conv2d) and child.padding != (0, 0):
            if len(set(child.padding)) != 1 or child.padding_mode != "zeros":
                raise LcregError(f"cannot change the padding of {name}: {child}")
            setattr(module, name, BorderPaddedConv2d(child, mode))
        else:
            set_padding(child, mode)
    return module


def create_backbone(name: str, pretrained: bool = False, padding: str = "zeros") -> nn.Module:
    return set_padding(BACKBONES.get(name)(pretrained), padding)
