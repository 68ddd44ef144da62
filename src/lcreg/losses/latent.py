"""The two LCReg losses on the latent categories.

- ``ReconstructionLoss`` (eq. 4): C_f = f_hat^T f (N x N per image); each row is a
  softmax over positions whose target is its own position, so each reconstructed position
  must match its own original position best. Mean (or, as eq. 4 writes, sum) over
  positions, mean over images; optionally cosine C_f with a temperature.
- ``CovarianceEstimator`` (eq. 5-6): per latent category count, mean and covariance of
  detached samples, updated exactly in streaming form (equal to the biased covariance of
  every sample seen so far).
- ``LatentAugmentationLoss`` (eq. 7-9): the ISDA upper bound of the expected cross-entropy
  over Gaussian perturbations N(0, lambda Sigma_m), with the M encoded latent features
  K = FC(f') as the classifier over latent categories.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F


class ReconstructionLoss(nn.Module):
    """Eq. 4. ``similarity``: C_f = f_hat^T f (``dot``, as written) or cosine similarities
    (each position's vectors normalised); C_f is divided by ``temperature``. ``reduction``
    over positions: ``mean`` or ``sum`` (eq. 4 writes a sum); always the mean over images."""

    def __init__(self, similarity: str = "dot", temperature: float = 1.0, reduction: str = "mean") -> None:
        super().__init__()
        if similarity not in ("dot", "cosine") or reduction not in ("mean", "sum"):
            raise ValueError(f"similarity must be dot|cosine and reduction mean|sum, got {similarity!r}, {reduction!r}")
        self.similarity, self.temperature, self.reduction = similarity, temperature, reduction

    def forward(self, recon: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        """recon f_hat (B, D, N) and features f (B, D, N) or (B, D, H, W)."""
        f = features.flatten(2).float()
        with torch.autocast(f.device.type, enabled=False):  # fp32 also under bf16 autocast
            r = recon.float()
            if self.similarity == "cosine":
                r, f = F.normalize(r, dim=1), F.normalize(f, dim=1)
            corr = torch.einsum("bdn,bdk->bnk", r, f)  # C_f, row j: f_hat_j . f_k
            if self.temperature != 1.0:
                corr = corr / self.temperature
        b, n, _ = corr.shape
        target = torch.arange(n, device=corr.device).repeat(b)
        loss = F.cross_entropy(corr.reshape(b * n, n), target)
        return loss * n if self.reduction == "sum" else loss


def latent_samples(weights: torch.Tensor, features: torch.Tensor, sim: torch.Tensor, mode: str = "pooled"):
    """Per-sample features for the latent statistics and their pseudo-labels.

    ``pooled`` (default): one sample per image and category, the features pooled with that
    category's softmax weights, x_im = sum_n S_hat[m, n] f[:, n] / sum_n S_hat[m, n];
    returns (B, M, D) with pseudo-label m implied by position (labels None).
    ``positions``: every position's feature f[:, n] with the hard pseudo-label
    argmax_m S[m, n]; returns (B * N, D) and labels (B * N,).
    """
    f = features.flatten(2).float()  # (B, D, N)
    if mode == "pooled":
        w = weights.float()
        pooled = torch.einsum("bmn,bdn->bmd", w, f) / w.sum(-1, keepdim=True)
        return pooled, None
    if mode == "positions":
        samples = f.transpose(1, 2).reshape(-1, f.shape[1])
        return samples, sim.argmax(dim=1).reshape(-1)
    raise ValueError(f"unknown latent sample mode {mode!r} (pooled, positions)")


def gather_from_ranks(samples: torch.Tensor, labels: Optional[torch.Tensor] = None):
    """Every rank's (detached) samples and labels, concatenated in rank order, when a
    process group of more than one rank is running (torchrun); the inputs otherwise. The
    ranks must hold equally many samples (equal local batches, as the engine's samplers
    give). Keeps the estimator's statistics those of the global batch on every rank."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return samples, labels

    def gather(t: torch.Tensor) -> torch.Tensor:
        parts = [torch.empty_like(t) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, t.contiguous())
        return torch.cat(parts)

    return gather(samples.detach()), (gather(labels) if labels is not None else None)


class CovarianceEstimator(nn.Module):
    """Streaming per-category statistics, ``full`` (M x D x D) or ``diagonal`` (M x D).

    For a batch with n' samples of category m, batch mean mu' and biased batch covariance
    Sigma', and n samples seen before (eq. 5-6):

        mu    <- (n mu + n' mu') / (n + n')
        Sigma <- (n Sigma + n' Sigma') / (n + n') + n n' (mu - mu')(mu - mu')^T / (n + n')^2

    Categories absent from a batch keep their statistics. No Python loop over categories;
    the update never materialises an N x M x D x D tensor. Under torchrun, ``update`` first
    gathers the samples of every rank, so all ranks hold the same statistics.
    """

    def __init__(self, num_categories: int, dim: int, mode: str = "full") -> None:
        super().__init__()
        if mode not in ("full", "diagonal"):
            raise ValueError(f"mode must be 'full' or 'diagonal', got {mode!r}")
        self.mode = mode
        self.register_buffer("count", torch.zeros(num_categories, dtype=torch.float64))
        self.register_buffer("mean", torch.zeros(num_categories, dim))
        shape = (num_categories, dim, dim) if mode == "full" else (num_categories, dim)
        self.register_buffer("cov", torch.zeros(shape))

    @torch.no_grad()
    def batch_groups(self, samples: torch.Tensor, labels: Optional[torch.Tensor]):
        """One batch as (n', mu', G): per category its sample count, mean and centred samples
        G (M, L, D), zero-padded to the largest group L, so that Sigma' = G^T G / n'.
        ``samples`` is (B, M, D) with labels None (sample [b, m] belongs to category m), or
        (N, D) with integer labels (N,)."""
        m_total = self.count.shape[0]
        x = samples.detach().to(self.mean.dtype)
        if labels is None:  # structured: every category has exactly B samples
            mu = x.mean(0)  # (M, D)
            return x.new_full((m_total,), float(x.shape[0])), mu, (x - mu).transpose(0, 1)
        n_batch = torch.bincount(labels, minlength=m_total).to(x.dtype)
        mu = x.new_zeros(m_total, x.shape[1]).index_add_(0, labels, x) / n_batch.clamp(min=1)[:, None]
        # group the samples per category: sort by label, slot = rank within the category
        order = torch.argsort(labels, stable=True)
        sorted_labels = labels[order]
        starts = torch.cumsum(n_batch, 0) - n_batch
        slot = torch.arange(len(labels), device=x.device) - starts[sorted_labels].long()
        groups = x.new_zeros(m_total, int(n_batch.max().item()), x.shape[1])
        groups[sorted_labels, slot] = (x - mu[labels])[order]
        return n_batch, mu, groups

    @torch.no_grad()
    def batch_statistics(self, samples: torch.Tensor, labels: Optional[torch.Tensor] = None):
        """(n', mu', Sigma') of one batch: biased covariance per category (M x D x D or M x D)."""
        if self.mode == "diagonal" and labels is None:  # one fused reduction, no B x M x D temporary
            x = samples.detach().to(self.mean.dtype)
            var, mu = torch.var_mean(x, dim=0, correction=0)
            return x.new_full((x.shape[1],), float(x.shape[0])), mu, var
        n_batch, mu, groups = self.batch_groups(samples, labels)
        n = n_batch.clamp(min=1)
        if self.mode == "full":
            return n_batch, mu, torch.bmm(groups.transpose(1, 2), groups) / n[:, None, None]
        return n_batch, mu, (groups * groups).sum(1) / n[:, None]

    @torch.no_grad()
    def update(self, samples: torch.Tensor, labels: Optional[torch.Tensor] = None) -> None:
        """Eq. 5-6. Full mode writes the update into Sigma in place as batched low-rank
        products, Sigma <- w_old Sigma + (w_new / n') G^T G + w_old w_new (mu - mu')(mu - mu')^T,
        so the only temporary is G (M x L x D), never M x D x D: at M = 200, D = 2048 the
        estimator needs the 3.2 GB of Sigma plus one batch of samples."""
        samples, labels = gather_from_ranks(samples, labels)
        if self.mode == "full":
            n_batch, mu_b, groups = self.batch_groups(samples, labels)
        else:
            n_batch, mu_b, cov_b = self.batch_statistics(samples, labels)
        n_old = self.count
        n_new = n_old + n_batch.double()
        w_new = (n_batch.double() / n_new.clamp(min=1)).float()  # n' / (n + n')
        w_old = (n_old / n_new.clamp(min=1)).float()  # n / (n + n')
        delta = self.mean - mu_b
        if self.mode == "full":
            groups.mul_((w_new / n_batch.clamp(min=1)).sqrt()[:, None, None])  # G is our own temporary
            d = (delta * (w_old * w_new).sqrt()[:, None]).unsqueeze(1)  # (M, 1, D)
            self.cov.mul_(w_old[:, None, None]).baddbmm_(groups.transpose(1, 2), groups)
            self.cov.baddbmm_(d.transpose(1, 2), d)
        else:
            self.cov.mul_(w_old[:, None]).add_(w_new[:, None] * cov_b + (w_old * w_new)[:, None] * delta * delta)
        self.mean.mul_(w_old[:, None]).add_(w_new[:, None] * mu_b)
        self.count.copy_(n_new)

    def quadratic(self, keys: torch.Tensor) -> torch.Tensor:
        """Q[m, j] = (w_j - w_m)^T Sigma_m (w_j - w_m) for keys K = [w_1 .. w_M] (D, M),
        computed once per category per step (never per sample)."""
        cov = self.cov.detach()
        k = keys.to(cov.dtype)
        if self.mode == "full":
            sk = torch.matmul(cov, k)  # (M, D, M): Sigma_m w_j
            jj = torch.einsum("dj,mdj->mj", k, sk)  # w_j^T Sigma_m w_j
            mj = torch.einsum("dm,mdj->mj", k, sk)  # w_m^T Sigma_m w_j
            return jj - 2 * mj + mj.diagonal()[:, None]
        var = cov  # (M, D)
        jj = var @ (k * k)  # sum_d s_md w_dj^2
        mj = (var * k.t()) @ k  # sum_d s_md w_dm w_dj
        mm = (var * k.t() * k.t()).sum(1)  # sum_d s_md w_dm^2
        return jj - 2 * mj + mm[:, None]


def isda_logits(
    estimator: CovarianceEstimator,
    x: torch.Tensor,
    labels: torch.Tensor,
    keys: torch.Tensor,
    bias: Optional[torch.Tensor],
    lam: float,
) -> torch.Tensor:
    """The ISDA surrogate's logits (eq. 9): z_j = w_j^T x + b_j + (lam / 2) (w_j - w_y)^T Sigma_y
    (w_j - w_y) for samples x (N, D) of labels y, classifier K = [w_1 .. w_C] (D, C), in the
    estimator's precision (fp32 statistics, also under bf16 autocast)."""
    dtype = estimator.cov.dtype
    logits = x.to(dtype) @ keys.to(dtype)
    if bias is not None:
        logits = logits + bias.to(dtype)
    return logits + 0.5 * lam * estimator.quadratic(keys)[labels]


class LatentAugmentationLoss(nn.Module):
    """ISDA surrogate (eq. 8-9) over M latent categories.

    z_j = w_j^T x + b_j + (lambda / 2) (w_j - w_m)^T Sigma_m (w_j - w_m) for a sample x of
    pseudo-category m; the loss is the cross-entropy of z with target m, averaged over
    samples. ``forward`` first adds the batch to the statistics, as ISDA does.
    """

    def __init__(
        self, num_latents: int, dim: int, covariance: str = "full", lambda0: float = 0.5, samples: str = "pooled"
    ) -> None:
        super().__init__()
        self.estimator = CovarianceEstimator(num_latents, dim, covariance)
        self.lambda0, self.sample_mode = lambda0, samples

    def augmented_logits(
        self, x: torch.Tensor, labels: torch.Tensor, keys: torch.Tensor, bias: Optional[torch.Tensor], lam: float
    ) -> torch.Tensor:
        return isda_logits(self.estimator, x, labels, keys, bias, lam)

    def forward(
        self,
        weights: torch.Tensor,
        features: torch.Tensor,
        sim: torch.Tensor,
        keys: torch.Tensor,
        bias: Optional[torch.Tensor] = None,
        progress: float = 1.0,
        update: bool = True,
    ) -> torch.Tensor:
        """progress = t / T in [0, 1] sets lambda = lambda0 * t / T."""
        with torch.autocast(features.device.type, enabled=False):  # statistics and bound in fp32
            return self._loss(weights, features, sim, keys, bias, progress, update)

    def _loss(self, weights, features, sim, keys, bias, progress, update) -> torch.Tensor:
        samples, labels = latent_samples(weights, features, sim, self.sample_mode)
        if update and self.training:
            self.estimator.update(samples, labels)
        if labels is None:
            b, m, d = samples.shape
            labels = torch.arange(m, device=samples.device).repeat(b)
            samples = samples.reshape(b * m, d)
        logits = self.augmented_logits(samples, labels, keys, bias, self.lambda0 * progress)
        return F.cross_entropy(logits, labels)
