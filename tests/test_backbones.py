"""Backbone padding (``model.padding``): what each reading promises, checked directly."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from lcreg.config import load_config
from lcreg.errors import LcregError
from lcreg.methods import create_model
from lcreg.models.backbones import create_backbone, pad_borders


@pytest.mark.parametrize("mode", ["circular", "reflect"])
def test_border_padding_is_torchs_own(mode):
    x = torch.randn(2, 3, 9, 7)
    assert torch.equal(pad_borders(x, 2, mode), F.pad(x, (2, 2, 2, 2), mode=mode))


def test_circular_resnet32_is_equivariant_to_shifts_by_its_stride():
    """With circular padding no position is special: shifting the image by 4 px (ResNet-32's
    stride) shifts its 8 x 8 feature map by one position, exactly; zero padding does not."""
    torch.manual_seed(0)
    x = torch.randn(2, 3, 32, 32)
    for shift, dims in ((4, -1), (8, -2)):
        circular = create_backbone("resnet32", padding="circular").eval()
        with torch.no_grad():
            moved, then_moved = (
                circular(torch.roll(x, shift, dims=dims)),
                torch.roll(circular(x), shift // 4, dims=dims),
            )
        assert torch.allclose(moved, then_moved, atol=1e-4)
    zeros = create_backbone("resnet32").eval()
    with torch.no_grad():
        assert not torch.allclose(zeros(torch.roll(x, 4, dims=-1)), torch.roll(zeros(x), 1, dims=-1), atol=1e-2)


def test_padding_is_a_config_key_every_method_reads():
    cfg = load_config("cifar10_lt_if100", ["model.padding=reflect", "method=mislas"])
    model = create_model(cfg, 10)
    convs = [m for m in model.backbone.modules() if type(m).__name__ == "BorderPaddedConv2d"]
    assert len(convs) == 31 and all(c.mode == "reflect" and c.padding == (0, 0) for c in convs)
    assert model(torch.randn(2, 3, 32, 32)).logits.shape == (2, 10)
    with pytest.raises(LcregError, match="model.padding"):
        load_config("demo", ["model.padding=replicate"])
