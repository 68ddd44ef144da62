"""MiSLAS (Zhong et al. 2021): mixup in stage 1; classifier re-training with label-aware
smoothing, a learnable logit scale and class-balanced sampling in stage 2. The baseline
LCReg builds on (its latent head off)."""

from __future__ import annotations

from typing import Optional, Sequence

from lcreg.config import Config
from lcreg.methods.base import MISLAS_STAGE2, Method, Stage2Recipe, mislas_stage2
from lcreg.registry import METHODS


@METHODS.register()
class MiSLAS(Method):
    name = "mislas"
    paper = "Zhong et al., Improving Calibration for Long-Tailed Recognition (CVPR 2021)"
    summary = "mixup stage 1, label-aware smoothing + logit scale + class-balanced stage 2"
    has_stage2 = True
    reads = MISLAS_STAGE2

    def stage2_recipe(self, cfg: Config, counts: Sequence[int]) -> Optional[Stage2Recipe]:
        return mislas_stage2(cfg, counts)
