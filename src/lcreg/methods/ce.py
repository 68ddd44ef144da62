"""Plain cross-entropy, one stage, no mixup: Table 1's "CE" row."""

from __future__ import annotations

from lcreg.methods.base import Method
from lcreg.registry import METHODS


@METHODS.register()
class CrossEntropy(Method):
    name = "ce"
    paper = "cross-entropy baseline"
    summary = "instance-balanced cross-entropy, no mixup, one stage"
    mixup = False
