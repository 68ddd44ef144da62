"""Mixup alone (Zhang et al. 2018): MiSLAS's stage 1 without its stage 2; Table 1's "mixup"."""

from __future__ import annotations

from lcreg.methods.base import Method
from lcreg.registry import METHODS


@METHODS.register()
class Mixup(Method):
    name = "mixup"
    paper = "Zhang et al., mixup: Beyond Empirical Risk Minimization (ICLR 2018)"
    summary = "mixup cross-entropy, one stage"
