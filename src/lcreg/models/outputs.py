"""The one contract between heads and losses: every head returns a ``HeadOutput``."""

from __future__ import annotations

from typing import NamedTuple, Optional

import torch


class HeadOutput(NamedTuple):
    """What a head returns: logits, plus the latent tensors the losses and analysis need
    (None for a plain linear head)."""

    logits: torch.Tensor
    sim: Optional[torch.Tensor] = None  # S      (B, M, N)
    weights: Optional[torch.Tensor] = None  # S_hat  (B, M, N)
    recon: Optional[torch.Tensor] = None  # f_hat  (B, D, N)
    keys: Optional[torch.Tensor] = None  # K      (D, M)
    pooled: Optional[torch.Tensor] = None  # the vector the classifier sees (B, D): forward_head(pre_logits=True)
