"""Each LCReg equation against a direct, slow computation on random tensors."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lcreg.losses import CovarianceEstimator, LatentAugmentationLoss, LCRegObjective, ReconstructionLoss, latent_samples
from lcreg.models import LatentCategoryHead

B, D, H, W, M, C = 3, 5, 3, 2, 4, 6


@pytest.fixture(autouse=True)
def float64():
    """Exact comparisons in double precision; restored so other test files see float32."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


@pytest.fixture
def feats():
    torch.manual_seed(0)
    return torch.randn(B, D, H, W)


def slow_maps(head, f, weights_from="sigmoid", similarity="dot", tau=1.0, tau_w=1.0):
    """Eq. 1-3 written as loops (``weights_from="logits"``: eq. 2 over the logits instead of
    S; ``similarity="cosine"``: cos(K_m, f_n); ``tau`` divides the similarity of eq. 1,
    ``tau_w`` the softmax input of eq. 2)."""
    keys = head.encoder.weight[:, :, 0] @ head.latents + head.encoder.bias[:, None]  # FC(f'): 1x1 conv
    x = f.reshape(B, D, H * W)
    sim = torch.zeros(B, M, H * W)
    raw = torch.zeros(B, M, H * W)
    for b in range(B):
        for m in range(M):
            for n in range(H * W):
                dot = float(sum(keys[d, m] * x[b, d, n] for d in range(D)))
                if similarity == "cosine":
                    dot /= math.sqrt(float(sum(keys[d, m] ** 2 for d in range(D)))) * math.sqrt(
                        float(sum(x[b, d, n] ** 2 for d in range(D)))
                    )
                raw[b, m, n] = dot / tau
                sim[b, m, n] = 1 / (1 + math.exp(-raw[b, m, n]))
    src = sim if weights_from == "sigmoid" else raw
    weights = torch.zeros_like(sim)
    recon = torch.zeros(B, D, H * W)
    for b in range(B):
        for n in range(H * W):
            z = sum(math.exp(src[b, k, n] / tau_w) for k in range(M))
            for m in range(M):
                weights[b, m, n] = math.exp(src[b, m, n] / tau_w) / z
            for d in range(D):
                recon[b, d, n] = sum(keys[d, m] * weights[b, m, n] for m in range(M))
    return keys, raw, sim, weights, recon


@pytest.mark.parametrize(
    "decoder,weights_from",
    [("concat_sim", "sigmoid"), ("sum_recon", "sigmoid"), ("concat_recon", "sigmoid"), ("concat_sim", "logits")],
)
def test_head_matches_equations_1_to_3(feats, decoder, weights_from):
    head = LatentCategoryHead(D, C, M, decoder, weights_from).eval()
    with torch.no_grad():
        head.fc.weight.normal_()
        out = head(feats)
        keys, _, sim, weights, recon = slow_maps(head, feats, weights_from)
        assert torch.allclose(out.keys, keys, atol=1e-10)
        assert torch.allclose(out.sim, sim, atol=1e-10)
        assert torch.allclose(out.weights, weights, atol=1e-10)
        assert torch.allclose(out.recon, recon, atol=1e-10)
        # decoder, written out
        if decoder == "sum_recon":
            pooled = (feats + recon.view(B, D, H, W)).mean((2, 3))
        else:
            extra = sim if decoder == "concat_sim" else recon
            z = torch.cat([feats, extra.reshape(B, -1, H, W)], 1)
            conv, bn = head.decoder[0], head.decoder[1]
            z = torch.einsum("oi,bihw->bohw", conv.weight[:, :, 0, 0], z)
            z = (z - bn.running_mean[None, :, None, None]) / torch.sqrt(bn.running_var[None, :, None, None] + bn.eps)
            z = torch.relu(z * bn.weight[None, :, None, None] + bn.bias[None, :, None, None])
            pooled = z.mean((2, 3))
        assert torch.allclose(out.logits, pooled @ head.fc.weight.T + head.fc.bias, atol=1e-10)
        assert out.logits.shape == (B, C)


@pytest.mark.parametrize(
    "weights_from,similarity,tau,tau_w",
    [
        ("sigmoid", "cosine", 0.1, 1.0),
        ("logits", "cosine", 0.1, 1.0),
        ("logits", "dot", 2.0, 0.5),
        ("sigmoid", "dot", 1.0, 0.1),
    ],
)
def test_similarity_and_temperature_readings_match_loops(feats, weights_from, similarity, tau, tau_w):
    head = LatentCategoryHead(D, C, M, "concat_sim", weights_from, similarity, tau, tau_w).eval()
    with torch.no_grad():
        maps = head.latent_maps(feats)
        keys, raw, sim, weights, recon = slow_maps(head, feats, weights_from, similarity, tau, tau_w)
        for got, want in zip(maps, (keys, raw, sim, weights, recon)):
            assert torch.allclose(got, want, atol=1e-10)
        out = head(feats)
        assert torch.allclose(out.weights, weights, atol=1e-10) and torch.allclose(out.sim, sim, atol=1e-10)
    if similarity == "cosine":  # |cos| <= 1, so the logits stay within 1 / tau
        assert maps.logits.abs().max() <= 1 / tau + 1e-9


def test_head_rejects_unknown_readings():
    with pytest.raises(ValueError):
        LatentCategoryHead(D, C, M, similarity="euclid")
    with pytest.raises(ValueError):
        LatentCategoryHead(D, C, M, temperature=0.0)


def slow_recon_loss(recon, feats, cosine=False, tau=1.0, reduction="mean"):
    x = feats.reshape(B, D, H * W)
    total = 0.0
    for b in range(B):
        for j in range(H * W):
            row = []
            for k in range(H * W):
                v = float(recon[b, :, j] @ x[b, :, k])
                if cosine:
                    v /= float(recon[b, :, j].norm() * x[b, :, k].norm())
                row.append(v / tau)
            total += -(row[j] - math.log(sum(math.exp(r) for r in row)))
    return total / B if reduction == "sum" else total / (B * H * W)


def test_reconstruction_loss_eq4(feats):
    torch.manual_seed(1)
    recon = torch.randn(B, D, H * W)
    x = feats.reshape(B, D, H * W)
    total = 0.0
    for b in range(B):
        for j in range(H * W):
            row = [float(recon[b, :, j] @ x[b, :, k]) for k in range(H * W)]
            total += -(row[j] - math.log(sum(math.exp(r) for r in row)))
    expected = total / (B * H * W)
    assert ReconstructionLoss()(recon, feats).item() == pytest.approx(expected, rel=1e-6)  # computed in fp32
    assert expected == pytest.approx(slow_recon_loss(recon, feats), rel=1e-12)


@pytest.mark.parametrize(
    "similarity,tau,reduction",
    [("dot", 1.0, "sum"), ("cosine", 0.1, "mean"), ("cosine", 0.2, "sum"), ("dot", 3.0, "mean")],
)
def test_reconstruction_loss_readings(feats, similarity, tau, reduction):
    torch.manual_seed(1)
    recon = torch.randn(B, D, H * W)
    got = ReconstructionLoss(similarity, tau, reduction)(recon, feats).item()
    assert got == pytest.approx(slow_recon_loss(recon, feats, similarity == "cosine", tau, reduction), rel=1e-6)


def stream(seed=0, batches=7, n=9, dim=3, cats=4):
    rng = np.random.default_rng(seed)
    out = []
    for t in range(batches):
        labels = rng.integers(0, cats - 1 if t % 2 else cats, n)  # odd batches lack the last category
        if t == 3:
            labels[:] = 0  # a batch with a single category
        x = rng.normal(size=(n, dim)) * (1 + labels[:, None]) + labels[:, None]
        out.append((torch.tensor(x), torch.tensor(labels)))
    return out


@pytest.mark.parametrize("mode", ["full", "diagonal"])
def test_estimator_equals_numpy_cov_over_the_stream(mode):
    est = CovarianceEstimator(4, 3, mode)
    seen_x, seen_y = [], []
    for x, y in stream():
        est.update(x, y)
        seen_x.append(x.numpy())
        seen_y.append(y.numpy())
        all_x, all_y = np.concatenate(seen_x), np.concatenate(seen_y)
        for m in range(4):
            xm = all_x[all_y == m]
            assert est.count[m].item() == len(xm)
            if len(xm) == 0:
                assert torch.all(est.cov[m] == 0)
                continue
            cov = np.atleast_2d(np.cov(xm, rowvar=False, bias=True))
            expected = cov if mode == "full" else np.diag(cov)
            assert np.allclose(est.mean[m].double().numpy(), xm.mean(0), atol=1e-5)
            assert np.allclose(est.cov[m].double().numpy(), expected, atol=1e-5)


@pytest.mark.parametrize("mode", ["full", "diagonal"])
def test_estimator_structured_input_equals_labelled_input(mode):
    torch.manual_seed(0)
    a, b = CovarianceEstimator(4, 3, mode), CovarianceEstimator(4, 3, mode)
    for _ in range(3):
        x = torch.randn(5, 4, 3)  # (B, M, D): sample [i, m] belongs to category m
        a.update(x)
        b.update(x.reshape(20, 3), torch.arange(4).repeat(5))
    assert torch.allclose(a.cov, b.cov, atol=1e-6) and torch.allclose(a.mean, b.mean, atol=1e-6)


def test_latent_samples_pooled_and_positions(feats):
    torch.manual_seed(2)
    weights = torch.softmax(torch.randn(B, M, H * W), 1)
    pooled, labels = latent_samples(weights, feats, weights, "pooled")
    x = feats.reshape(B, D, H * W)
    for b in range(B):
        for m in range(M):
            expected = (weights[b, m] * x[b]).sum(1) / weights[b, m].sum()
            assert torch.allclose(pooled[b, m].double(), expected, atol=1e-6)
    assert labels is None
    samples, labels = latent_samples(weights, feats, weights, "positions")
    assert samples.shape == (B * H * W, D)
    assert torch.equal(labels.view(B, H * W), weights.argmax(1))
    assert torch.allclose(samples[H * W + 1].double(), x[1, :, 1], atol=1e-6)


@pytest.mark.parametrize("mode", ["full", "diagonal"])
def test_augmented_logits_match_formula(mode):
    torch.manual_seed(3)
    loss = LatentAugmentationLoss(M, D, covariance=mode)
    for _ in range(2):
        loss.estimator.update(torch.randn(6, M, D))
    keys, bias = torch.randn(D, M), torch.randn(M)
    x, labels = torch.randn(7, D), torch.randint(0, M, (7,))
    lam = 0.37
    z = loss.augmented_logits(x, labels, keys, bias, lam)
    cov = loss.estimator.cov.double()
    for i in range(7):
        m = labels[i]
        sigma = cov[m] if mode == "full" else torch.diag(cov[m])
        for j in range(M):
            dw = keys[:, j] - keys[:, m]
            expected = keys[:, j] @ x[i] + bias[j] + lam / 2 * dw @ sigma @ dw
            assert z[i, j].item() == pytest.approx(expected.item(), rel=1e-5, abs=1e-5)


def test_surrogate_upper_bounds_monte_carlo_cross_entropy():
    """Eq. 7-8: the loss is an upper bound of the expected CE over f + N(0, lambda Sigma_m)."""
    torch.manual_seed(4)
    loss = LatentAugmentationLoss(M, D, covariance="full")
    loss.estimator.update(torch.randn(50, M, D) * torch.linspace(0.5, 2, D))
    keys, bias = torch.randn(D, M), torch.randn(M)
    x, labels = torch.randn(5, D), torch.arange(5) % M
    lam = 0.8
    surrogate = F.cross_entropy(loss.augmented_logits(x, labels, keys, bias, lam), labels, reduction="none")
    plain = F.cross_entropy(loss.augmented_logits(x, labels, keys, bias, 0.0), labels, reduction="none")
    for i in range(5):
        sigma = loss.estimator.cov[labels[i]].double()
        dist = torch.distributions.MultivariateNormal(
            torch.zeros(D), covariance_matrix=lam * sigma + 1e-9 * torch.eye(D)
        )
        xs = x[i] + dist.sample((20000,))
        mc = F.cross_entropy(xs @ keys + bias, labels[i].expand(20000)).item()
        assert mc <= surrogate[i].item() + 1e-3
        assert plain[i].item() < surrogate[i].item()


def test_objective_switches_give_the_ablation_rows(feats):
    torch.manual_seed(5)
    head = LatentCategoryHead(D, C, M)
    out = head(feats)
    y = torch.randint(0, C, (B,))
    aug = LatentAugmentationLoss(M, D)
    for alpha, beta, expected in [
        (0.1, 0.1, {"cls", "recon", "latent_aug"}),
        (0.0, 0.1, {"cls", "recon"}),
        (0.1, 0.0, {"cls", "latent_aug"}),
        (0.0, 0.0, {"cls"}),
    ]:
        total, terms = LCRegObjective(alpha, beta, 1.0, aug)(out, feats, y, y, 1.0, 0.5, head.latent_bias)
        assert set(terms) == expected
        want = terms["cls"] + alpha * terms.get("latent_aug", 0) + beta * terms.get("recon", 0)
        assert torch.allclose(total, want)


def test_detached_features_keep_latent_loss_gradients_out_of_the_backbone(feats):
    """loss.detach_features: eq. 4 and eq. 8-9 train the latent head only; the
    classification loss still reaches the backbone (through the decoder)."""
    torch.manual_seed(6)
    y = torch.randint(0, C, (B,))
    for detach in (False, True):
        head = LatentCategoryHead(D, C, M, weights="logits")
        f = feats.clone().requires_grad_(True)
        out = head(f)
        objective = LCRegObjective(
            0.1, 0.1, 1.0, LatentAugmentationLoss(M, D), latent_maps=head.latent_maps if detach else None
        )
        _, terms = objective(out, f, y, y, 1.0, 0.5, head.latent_bias)
        aux = terms["recon"] + terms["latent_aug"]
        g_f, g_k = torch.autograd.grad(aux, [f, head.latents], retain_graph=True, allow_unused=True)
        assert g_k.abs().max() > 0
        if detach:
            assert g_f is None or g_f.abs().max() == 0
            # the same values as without detaching: only the gradient paths differ
            plain = LCRegObjective(0.1, 0.1, 1.0, LatentAugmentationLoss(M, D))(
                out, f, y, y, 1.0, 0.5, head.latent_bias
            )[1]
            assert torch.allclose(plain["recon"], terms["recon"]) and torch.allclose(
                plain["latent_aug"], terms["latent_aug"]
            )
        else:
            assert g_f.abs().max() > 0
        assert torch.autograd.grad(terms["cls"], f)[0].abs().max() > 0


def test_sigmoid_weights_differ_by_at_most_e_and_logit_weights_can_peak():
    head = LatentCategoryHead(D, C, M).eval()
    with torch.no_grad():
        head.latents.mul_(100.0)  # large K: saturated similarity maps
        f = torch.randn(B, D, H, W)
        w = head(f).weights
        ratio = w.max(dim=1).values / w.min(dim=1).values
        assert (ratio <= math.e + 1e-9).all() and (ratio > 2.0).any()
        head.weights_from = "logits"
        assert head(f).weights.max() > 0.99


def test_detach_terms_detach_one_latent_loss_and_leave_the_other_attached(feats):
    """loss.detach_terms: with one term detached, only the other sends gradient to the
    backbone; values are those of the undetached objective."""
    torch.manual_seed(7)
    y = torch.randint(0, C, (B,))
    head = LatentCategoryHead(D, C, M, weights="logits")
    f = feats.clone().requires_grad_(True)
    out = head(f)
    plain = LCRegObjective(0.1, 0.1, 1.0, LatentAugmentationLoss(M, D))(out, f, y, y, 1.0, 0.5, head.latent_bias)[1]
    for detached, attached in (("recon", "latent_aug"), ("latent_aug", "recon")):
        objective = LCRegObjective(
            0.1, 0.1, 1.0, LatentAugmentationLoss(M, D), latent_maps=head.latent_maps, detach_terms=(detached,)
        )
        _, terms = objective(out, f, y, y, 1.0, 0.5, head.latent_bias)
        assert torch.allclose(terms[detached], plain[detached]) and torch.allclose(terms[attached], plain[attached])
        g_det = torch.autograd.grad(terms[detached], f, retain_graph=True, allow_unused=True)[0]
        g_att = torch.autograd.grad(terms[attached], f, retain_graph=True)[0]
        assert (g_det is None or g_det.abs().max() == 0) and g_att.abs().max() > 0
        # the detached term still trains the latent categories K
        assert torch.autograd.grad(terms[detached], head.latents, retain_graph=True)[0].abs().max() > 0
    with pytest.raises(ValueError, match="detach_terms"):
        LCRegObjective(latent_maps=head.latent_maps, detach_terms=("cls",))


def test_centring_removes_a_code_the_same_for_every_image():
    """model.latent.centre: K^T f minus its batch mean at each position, so a component of
    the features that is the same for every image (a position code) leaves S unchanged; at
    evaluation the running mean stands in for the batch mean."""
    from lcreg.models.latent import LatentCategoryHead

    torch.manual_seed(0)
    head = LatentCategoryHead(8, 3, num_latents=5, similarity="dot", centre=True, centre_momentum=1.0)
    head.set_positions(6)
    g = torch.randn(4, 8, 2, 3)
    code = 3 * torch.randn(1, 8, 2, 3)  # the same at each position for every image
    head.train()
    with_code, without = head.latent_maps(g + code), head.latent_maps(g)
    assert torch.allclose(with_code.sim, without.sim, atol=1e-5)
    direct = torch.einsum("dm,bdn->bmn", head.encoded_latents(), g.flatten(2))
    assert torch.allclose(without.logits, direct - direct.mean(0), atol=1e-5)
    head.eval()  # momentum 1: the running mean is the last batch's
    assert torch.allclose(head.latent_maps(g).logits, direct - direct.mean(0), atol=1e-5)


def test_a_centred_heads_diagnostics_see_the_code_the_centring_removes():
    """positional_share is of the centred logits (near 0 by construction); the uncentred one,
    K^T f as eq. 1 computes it before the centring, shows a position code in the features."""
    from lcreg.eval.latent_diagnostics import LatentStats
    from lcreg.models.latent import LatentCategoryHead

    torch.manual_seed(0)
    head = LatentCategoryHead(8, 3, num_latents=5, similarity="dot", centre=True, centre_momentum=1.0)
    head.set_positions(6)
    code = 5 * torch.randn(1, 8, 2, 3)  # the same at each position for every image
    batches = [torch.randn(16, 8, 2, 3) + code for _ in range(3)]
    head.train()
    head.latent_maps(torch.cat(batches))  # momentum 1: the running mean is this batch's
    head.eval()
    stats = LatentStats()
    for g in batches:
        maps = head.latent_maps(g)
        direct = torch.einsum("dm,bdn->bmn", head.encoded_latents(), g.flatten(2))
        assert torch.allclose(maps.uncentred, direct, atol=1e-4)
        stats.update(maps.logits, maps.sim, maps.weights, g, maps.uncentred)
    s = stats.summary(head.compared_latents().detach())
    assert s["positional_share"] < 0.05 and s["uncentred_positional_share"] > 0.8
    plain = LatentStats()
    plain.update(maps.logits, maps.sim, maps.weights, g)
    assert plain.summary(head.compared_latents().detach())["uncentred_positional_share"] is None
    assert LatentCategoryHead(8, 3, num_latents=5).latent_maps(batches[0]).uncentred is None
