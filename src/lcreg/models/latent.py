"""The latent category head of LCReg (paper §3.1-3.2, eq. 1-3, and the decoder of Fig. 3).

Shapes: f (B, D, H, W) from the backbone; M latent categories; N = H * W positions.

    K     = FC(f')                   (D, M)   FC is a 1x1 convolution over the M latent features
    A     = sim(K, f) / tau          (B, M, N) the similarity logits (``similarity=dot``: K^T f;
                                              ``cosine``: cos(K_m, f_n))
    S     = sigmoid(A)               (B, M, N) eq. 1, one similarity map per latent category
    S_hat = softmax_M(S / tau_w)     (B, M, N) eq. 2, weights over categories at each position
    f_hat = K S_hat                  (B, D, N) eq. 3, the reconstruction of f

The decoder turns (f, S) or (f, f_hat) into class logits; the paper does not pin it down,
so three readings are offered (``decoder=``):

- ``concat_sim`` (default): [f; S] -> 1x1 conv + BN + ReLU back to D -> GAP -> linear.
  Fig. 3 feeds the similarity maps and the image features to the decoder.
- ``sum_recon``: f + f_hat -> GAP -> linear.
- ``concat_recon``: [f; f_hat] -> 1x1 conv + BN + ReLU -> GAP -> linear.

Eq. 2 applies the softmax to the sigmoid maps S (``weights="sigmoid"``, as written). Since S
lies in (0, 1), those weights can differ by at most a factor e^(1/tau_w) at a position: with
M = 40 and tau_w = 1 they stay within [0.009, 0.066]. ``weights="logits"`` takes the softmax
of A instead, which can concentrate on one category; S (for the decoder) is unchanged.
docs/method.md lists the readings and what each does to the latent categories.
"""

from __future__ import annotations

from typing import NamedTuple, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from lcreg.models.outputs import HeadOutput

DECODERS = ("concat_sim", "sum_recon", "concat_recon")
WEIGHTS = ("sigmoid", "logits")
SIMILARITIES = ("dot", "cosine")


class LatentMaps(NamedTuple):
    """Eq. 1-3 on one feature map (positions flattened)."""

    keys: torch.Tensor  # K      (D, M)
    logits: torch.Tensor  # A      (B, M, N), before the sigmoid of eq. 1
    sim: torch.Tensor  # S      (B, M, N)
    weights: torch.Tensor  # S_hat  (B, M, N)
    recon: torch.Tensor  # f_hat  (B, D, N)
    uncentred: Optional[torch.Tensor] = None  # A before model.latent.centre's centring (None: not centred)


def similarity_logits(
    keys: torch.Tensor, x: torch.Tensor, similarity: str = "dot", temperature: float = 1.0
) -> torch.Tensor:
    """A[b, m, n] = sim(K[:, m], x[b, :, n]) / temperature, for K (D, M) and x (B, D, N)."""
    if similarity == "cosine":
        keys = F.normalize(keys, dim=0)
        x = F.normalize(x, dim=1)
    elif similarity != "dot":
        raise ValueError(f"similarity must be one of {SIMILARITIES}, got {similarity!r}")
    logits = torch.einsum("dm,bdn->bmn", keys, x)
    return logits / temperature if temperature != 1.0 else logits


class LatentCategoryHead(nn.Module):
    def __init__(
        self,
        in_features: int,
        num_classes: int,
        num_latents: int = 40,
        decoder: str = "concat_sim",
        weights: str = "sigmoid",
        similarity: str = "dot",
        temperature: float = 1.0,
        weight_temperature: float = 1.0,
        centre: bool = False,
        centre_momentum: float = 0.1,
    ) -> None:
        super().__init__()
        if decoder not in DECODERS:
            raise ValueError(f"decoder must be one of {DECODERS}, got {decoder!r}")
        if weights not in WEIGHTS:
            raise ValueError(f"weights must be one of {WEIGHTS}, got {weights!r}")
        if similarity not in SIMILARITIES:
            raise ValueError(f"similarity must be one of {SIMILARITIES}, got {similarity!r}")
        if temperature <= 0 or weight_temperature <= 0:
            raise ValueError("temperatures must be > 0")
        self.in_features, self.num_latents, self.decoder_kind = in_features, num_latents, decoder
        self.weights_from, self.similarity = weights, similarity
        self.temperature, self.weight_temperature = temperature, weight_temperature
        self.centre, self.centre_momentum = centre, centre_momentum
        # the running mean of the logits at each (category, position): sized by set_positions
        # (or by a loaded state dict), since the head does not know the feature map's size
        self.register_buffer("position_mean", torch.zeros(num_latents, 0) if centre else None)
        self.latents = nn.Parameter(torch.randn(in_features, num_latents) * in_features**-0.5)
        self.encoder = nn.Conv1d(in_features, in_features, kernel_size=1)  # FC of eq. 1
        self.latent_bias = nn.Parameter(torch.zeros(num_latents))  # b of eq. 9 (used by the loss)
        if decoder == "sum_recon":
            self.decoder = nn.Identity()
        else:
            extra = num_latents if decoder == "concat_sim" else in_features
            self.decoder = nn.Sequential(
                nn.Conv2d(in_features + extra, in_features, 1, bias=False),
                nn.BatchNorm2d(in_features),
                nn.ReLU(inplace=True),
            )
        self.fc = nn.Linear(in_features, num_classes)

    def set_positions(self, n: int) -> None:
        """Size the running mean for N positions (centring only)."""
        if self.centre and self.position_mean.shape[1] != n:
            self.position_mean = torch.zeros(self.num_latents, n, device=self.latents.device)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        key = prefix + "position_mean"
        if self.centre and key in state_dict and state_dict[key].shape != self.position_mean.shape:
            self.position_mean = torch.zeros_like(state_dict[key], device=self.latents.device)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def centred(self, logits: torch.Tensor) -> torch.Tensor:
        """A minus its mean over the batch at each (category, position) in training, minus the
        running mean in evaluation."""
        if self.training:
            mean = logits.mean(0)
            with torch.no_grad():
                self.position_mean.lerp_(mean.detach().to(self.position_mean.dtype), self.centre_momentum)
        else:
            mean = self.position_mean.to(logits.dtype)
        return logits - mean

    def encoded_latents(self) -> torch.Tensor:
        """K = FC(f'), shape (D, M)."""
        return self.encoder(self.latents.unsqueeze(0)).squeeze(0)

    def compared_latents(self) -> torch.Tensor:
        """K as eq. 1 compares it with the features: unit columns under cosine similarity
        (their norms never reach S), as encoded under the dot product. Shape (D, M)."""
        keys = self.encoded_latents()
        return F.normalize(keys, dim=0) if self.similarity == "cosine" else keys

    def latent_maps(self, features: torch.Tensor) -> LatentMaps:
        """Eq. 1-3 on a feature map (B, D, H, W) or (B, D, N)."""
        x = features.flatten(2)  # (B, D, N)
        keys = self.encoded_latents().to(x.dtype)
        logits = similarity_logits(keys, x, self.similarity, self.temperature)
        uncentred = logits if self.centre else None
        if self.centre:
            logits = self.centred(logits)
        sim = torch.sigmoid(logits)
        src = sim if self.weights_from == "sigmoid" else logits
        if self.weight_temperature != 1.0:
            src = src / self.weight_temperature
        weights = torch.softmax(src, dim=1)
        recon = torch.einsum("dm,bmn->bdn", keys, weights)
        return LatentMaps(keys, logits, sim, weights, recon, uncentred)

    def decode(self, features: torch.Tensor, sim: torch.Tensor, recon: torch.Tensor) -> torch.Tensor:
        """The decoder up to the pooled D-dim vector that the classifier sees."""
        b, d, h, w = features.shape
        if self.decoder_kind == "sum_recon":
            return (features + recon.view(b, d, h, w)).mean((2, 3))
        extra = sim if self.decoder_kind == "concat_sim" else recon
        decoded = self.decoder(torch.cat([features, extra.reshape(b, -1, h, w)], dim=1))
        return decoded.mean((2, 3))

    def pre_logits(self, features: torch.Tensor) -> torch.Tensor:
        maps = self.latent_maps(features)
        return self.decode(features, maps.sim, maps.recon)

    def forward(self, features: torch.Tensor) -> HeadOutput:
        maps = self.latent_maps(features)
        pooled = self.decode(features, maps.sim, maps.recon)
        return HeadOutput(self.fc(pooled), maps.sim, maps.weights, maps.recon, maps.keys, pooled)
