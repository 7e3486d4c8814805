"""HAMR building blocks: WNet, hardness, FAISS neighbourhoods, meta step, meta set, sampler."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from imblearn.utils.estimator_checks import parametrize_with_checks
from sklearn.datasets import make_blobs, make_classification
from sklearn.neighbors import NearestNeighbors
from torch import nn

from skimb.samplers._hardness_neighborhood import HardnessNeighborhoodSampler
from skimb.training.hamr import (
    HardnessTracker,
    WeightNet,
    batch_weights,
    batch_zscore,
    build_balanced_meta_set,
    build_balanced_meta_set_ner,
    build_index,
    count_entity_spans,
    draw_epoch_indices,
    knn_search,
    make_wnet_optimizer,
    meta_step,
    neighbor_boost,
    recall_at_k,
    sampling_probabilities,
    sequence_loss,
)


# ============================================================================ WNet


def test_weightnet_architecture_and_bias():
    net = WeightNet()
    assert isinstance(net.linear1, nn.Linear) and isinstance(net.linear2, nn.Linear)
    assert (net.linear1.in_features, net.linear1.out_features) == (1, 100)
    assert (net.linear2.in_features, net.linear2.out_features) == (100, 1)
    assert torch.allclose(net.linear2.bias, torch.tensor([0.1]))
    assert net(torch.randn(5, 1)).shape == (5, 1)


def test_batch_zscore():
    z = batch_zscore(torch.tensor([1.0, 2.0, 3.0, 6.0]))
    x = torch.tensor([1.0, 2.0, 3.0, 6.0])
    assert torch.allclose(z, (x - x.mean()) / x.std(unbiased=False))
    assert torch.equal(batch_zscore(torch.tensor([4.2])), torch.zeros(1))
    # constant batch: std clamped at 1e-6, z = 0
    assert torch.equal(batch_zscore(torch.full((3,), 2.0)), torch.zeros(3))
    with pytest.raises(ValueError):
        batch_zscore(torch.tensor([]))


def test_batch_weights_mean_normalised_then_clipped():
    torch.manual_seed(0)
    net = WeightNet()
    with torch.no_grad():  # a steep WNet so that the normalised weights spread beyond [0.1, 8]
        net.linear1.weight.fill_(1.0)
        net.linear1.bias.zero_()
        net.linear2.weight.fill_(0.2)
        net.linear2.bias.fill_(-6.0)
    losses = torch.tensor([0.0, 0.01, 0.02, 0.03, 0.05, 0.1, 0.2, 0.3, 0.5, 9.0], requires_grad=True)
    w = batch_weights(net, losses)
    z = (losses.detach() - losses.detach().mean()) / losses.detach().std(unbiased=False)
    raw = torch.sigmoid(net(z.unsqueeze(1))).squeeze(1)
    expected = (raw / raw.mean()).clamp(0.1, 8.0)
    assert torch.allclose(w, expected)
    assert w.min().item() == pytest.approx(0.1) and w.max().item() == pytest.approx(8.0)
    assert w.requires_grad  # graph to WNet, not to the losses
    w.sum().backward()
    assert losses.grad is None and net.linear2.weight.grad is not None


def test_batch_weights_mean_one_and_batch_of_one():
    torch.manual_seed(1)
    net = WeightNet()
    w = batch_weights(net, torch.rand(16))
    assert w.mean().item() == pytest.approx(1.0, abs=1e-6)
    assert torch.allclose(batch_weights(net, torch.tensor([3.0])), torch.ones(1))
    # detach_mean changes the backward, not the values
    losses = torch.rand(8)
    assert torch.allclose(batch_weights(net, losses, detach_mean=True), batch_weights(net, losses))


def test_batch_weights_with_class_features():
    torch.manual_seed(2)
    net = WeightNet(n_features=1)
    assert net.linear1.in_features == 2
    losses = torch.tensor([1.0, 1.0, 2.0, 0.5])
    feats = torch.tensor([[1.0], [-1.0], [0.0], [0.0]])
    w = batch_weights(net, losses, features=feats)
    # equal losses, different classes: different weights; still mean 1 in the batch
    assert not torch.isclose(w[0], w[1]) and w.mean().item() == pytest.approx(1.0, abs=1e-6)
    # the features enter as the second input column
    z = batch_zscore(losses).unsqueeze(1)
    raw = torch.sigmoid(net(torch.cat([z, feats], dim=1))).squeeze(1)
    assert torch.allclose(w, (raw / raw.mean()).clamp(0.1, 8.0))


def test_batch_weights_normalised_within_groups():
    torch.manual_seed(3)
    net = WeightNet()
    losses, groups = torch.tensor([0.1, 2.0, 0.5, 3.0, 0.2, 1.0]), torch.tensor([7, 2, 7, 2, 7, 4])
    w = batch_weights(net, losses, groups=groups)
    # each class keeps its count as its total weight; a class alone in the batch weighs 1
    for g, count in ((7, 3), (2, 2), (4, 1)):
        assert w[groups == g].sum().item() == pytest.approx(count, abs=1e-5)
    assert w[5].item() == pytest.approx(1.0)
    # the same z-scored losses as batch normalisation, only the divisor differs
    raw = torch.sigmoid(net(batch_zscore(losses).unsqueeze(1))).squeeze(1)
    means = torch.stack([raw[groups == g].mean() for g in groups])
    assert torch.allclose(w, (raw / means).clamp(0.1, 8.0))
    assert not torch.allclose(w, batch_weights(net, losses))
    # one group is batch normalisation; the graph reaches WNet
    assert torch.allclose(batch_weights(net, losses, groups=torch.zeros(6, dtype=torch.long)), batch_weights(net, losses))
    batch_weights(net, losses, groups=groups, detach_mean=True)[0].backward()
    assert net.linear1.weight.grad is not None


def test_make_wnet_optimizer():
    net = WeightNet()
    opt = make_wnet_optimizer(net, lr=3e-4)
    assert isinstance(opt, torch.optim.Adam)
    assert opt.defaults["lr"] == 3e-4 and opt.defaults["weight_decay"] == 1e-4
    assert len(opt.param_groups[0]["params"]) == 4


# ============================================================================ hardness


def test_ema_update_changes_only_batch_entries():
    t = HardnessTracker(6, momentum=0.5)
    assert np.array_equal(t.m, np.ones(6))
    t.update(np.array([1, 4]), torch.tensor([3.0, 0.2]))
    assert np.allclose(t.m, [1, 2.0, 1, 1, 0.6, 1])
    t.update([4], [1.4])
    assert np.allclose(t.m, [1, 2.0, 1, 1, 1.0, 1])
    # duplicates in a batch: one update with their mean weight
    t.update([0, 0], [2.0, 4.0])
    assert t.m[0] == pytest.approx(0.5 * 1 + 0.5 * 3.0)
    assert t.hardness_.sum() == pytest.approx(1.0)
    assert np.allclose(t.hardness_, t.m / t.m.sum())
    t9 = HardnessTracker(3, momentum=0.9)
    t9.update([2], [2.0])
    assert t9.m[2] == pytest.approx(0.9 + 0.1 * 2.0)


def test_reference_rule():
    n, eps = 5, 1e-6
    t = HardnessTracker(n, rule="reference", eps=eps)
    assert np.allclose(t.m, 1 / n)
    m = np.full(n, 1 / n)
    for idx, w in [([0, 3], [2.0, 0.5]), ([3, 3], [1.0, 1.0]), ([1], [8.0])]:
        t.update(idx, w)
        m = 0.99 * m
        np.add.at(m, idx, 0.01 * np.asarray(w))
        m = m + eps
        m = m / m.sum()
        assert np.allclose(t.m, m, rtol=0, atol=1e-15)
    assert t.m.sum() == pytest.approx(1.0)
    assert t.n_updates == 3


def test_hard_set_and_state_dict():
    t = HardnessTracker(10)
    t.update(np.arange(10), np.arange(10, dtype=float))
    assert t.hard_set(0.3).tolist() == [9, 8, 7]
    assert t.hard_set(0.01).tolist() == [9]  # at least one
    assert t.hard_set(1.0).size == 10
    with pytest.raises(ValueError):
        t.hard_set(0.0)
    with pytest.raises(IndexError):
        t.update([10], [1.0])
    with pytest.raises(ValueError):
        t.update([1, 2], [1.0])
    t2 = HardnessTracker(10)
    t2.load_state_dict(t.state_dict())
    assert np.array_equal(t2.m, t.m)
    with pytest.raises(ValueError):
        HardnessTracker(3, rule="decay")


def test_sampling_probabilities_hand_values():
    m = np.array([1.0, 4.0, 0.25, 0.0])
    b = np.array([0.0, 1.0, 0.5, 1.0])
    eps = 1e-6
    for alpha, lam, T in [(0.7, 0.7, 1.0), (0.5, 1.0, 2.0), (1.0, 0.0, 0.5)]:
        raw = ((m + eps) ** (1 / T)) ** alpha * (1 + lam * b)
        p = sampling_probabilities(m, b, hardness_alpha=alpha, knn_lambda=lam, temperature=T)
        assert np.allclose(p, raw / raw.sum())
    p = sampling_probabilities([1.0, 4.0], [0.0, 1.0], hardness_alpha=0.5, knn_lambda=1.0)
    assert np.allclose(p, [0.2, 0.8], atol=1e-6)
    # no boost and alpha = 0: uniform
    assert np.allclose(sampling_probabilities(m, hardness_alpha=0.0), 0.25)
    # the caller's arrays are untouched
    assert np.array_equal(m, [1.0, 4.0, 0.25, 0.0])
    with pytest.raises(ValueError):
        sampling_probabilities([-1.0, 1.0])
    with pytest.raises(ValueError):
        sampling_probabilities([1.0, 1.0], temperature=0)


def test_draw_epoch_indices():
    p = sampling_probabilities(np.arange(1, 11, dtype=float))
    idx = draw_epoch_indices(p, 1.2, np.random.default_rng(0))
    assert idx.shape == (12,) and idx.dtype == np.int64
    assert np.array_equal(idx, draw_epoch_indices(p, 1.2, np.random.default_rng(0)))
    assert draw_epoch_indices(p, 0.35, 0).shape == (round(3.5),)
    assert set(draw_epoch_indices([0, 0, 1.0], 3.0, 1).tolist()) == {2}
    assert draw_epoch_indices(p, 1.0, np.random.RandomState(0)).shape == (10,)


# ============================================================================ neighbours


def test_faiss_exact_matches_sklearn_cosine():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 16)).astype(np.float64)
    X_before = X.copy()
    index = build_index(X)
    sims, ids = knn_search(index, X[:50], 6)
    nn_ = NearestNeighbors(n_neighbors=6, metric="cosine").fit(X)
    dist, ids_sk = nn_.kneighbors(X[:50])
    assert np.array_equal(ids, ids_sk)
    assert np.allclose(sims, 1 - dist, atol=1e-5)
    assert np.array_equal(X, X_before)  # normalised a copy


def test_approximate_indexes_recall():
    X, _ = make_blobs(n_samples=2000, n_features=32, centers=20, cluster_std=4.0, random_state=0)
    exact = build_index(X)
    q = X[::10]
    r_ivf = recall_at_k(build_index(X, "ivf", random_state=0), exact, q, 10)
    r_hnsw = recall_at_k(build_index(X, "hnsw"), exact, q, 10)
    assert r_ivf > 0.8, r_ivf
    assert r_hnsw > 0.8, r_hnsw
    assert recall_at_k(exact, exact, q, 10) == 1.0


def test_auto_index_is_exact_when_small_and_ivf_when_large(monkeypatch):
    import skimb.utils._neighbors as nb

    X, _ = make_blobs(n_samples=3000, n_features=16, centers=30, random_state=0)
    small = build_index(X, "auto")
    assert type(small).__name__ == "IndexFlatIP"
    monkeypatch.setattr(nb, "AUTO_EXACT_MAX", 1000)
    large = build_index(X, "auto", random_state=0)
    assert type(large).__name__ == "BlockedIVFIndex"
    assert large.nlist == round(nb.AUTO_NLIST_PER_SQRT_N * np.sqrt(3000)) and large.nprobe == nb.AUTO_NPROBE
    assert recall_at_k(large, build_index(X), X[::10], 10) >= 0.99


def test_blocked_ivf_search_equals_faiss_ivf_with_the_same_lists():
    """One matrix product per list gives what FAISS's query-by-query IVF scan gives."""
    import faiss

    from skimb.utils._neighbors import BlockedIVFIndex

    X, _ = make_blobs(n_samples=1500, n_features=24, centers=12, cluster_std=3.0, random_state=1)
    X = (X / np.linalg.norm(X, axis=1, keepdims=True)).astype(np.float32)
    rng = np.random.default_rng(0)
    centroids = X[rng.choice(len(X), 20, replace=False)]
    quantizer = faiss.IndexFlatIP(24)
    quantizer.add(centroids)
    reference = faiss.IndexIVFFlat(quantizer, 24, 20, faiss.METRIC_INNER_PRODUCT)
    reference.is_trained = True
    reference.add(X)
    reference.nprobe = 3
    ours = BlockedIVFIndex(X, centroids, quantizer.search(X, 1)[1][:, 0], nprobe=3)
    q = X[::7]
    ref_sims, ref_ids = reference.search(q, 8)
    sims, ids = ours.search(q, 8)
    assert np.allclose(sims, ref_sims, atol=1e-5)
    assert np.mean(ids == ref_ids) > 0.99  # equal up to the order of tied similarities
    # fewer candidates than k in the visited lists: padded as FAISS pads
    tiny = BlockedIVFIndex(X[:6], X[[0, 3]], np.array([0, 0, 0, 1, 1, 1]), nprobe=1)
    sims, ids = tiny.search(X[:1], 5)
    assert (ids[0, 3:] == -1).all() and np.isneginf(sims[0, 3:]).all() and ids[0, 0] == 0
    with pytest.raises(ValueError, match="nprobe must be >= 1"):
        BlockedIVFIndex(X[:6], X[[0, 3]], np.array([0, 0, 0, 1, 1, 1]), nprobe=0)


def test_neighbor_boost_hit_counts():
    X = np.array([[1.0, 0.0], [0.95, 0.05], [0.9, 0.2], [0.0, 1.0], [0.1, 0.9]])
    index = build_index(X)
    # 0 -> {0, 1, 2}; 1 -> {1, 0, 2}; 3 -> {3, 4, 2}: counts 2, 2, 3, 1, 1
    b = neighbor_boost(index, X, [0, 1, 3], k=3)
    assert np.allclose(b, np.array([2, 2, 3, 1, 1]) / 3)
    # a lone hard sample: itself and its neighbour
    assert np.allclose(neighbor_boost(index, X, [3], k=2), [0, 0, 0, 1, 1])
    assert np.allclose(neighbor_boost(index, X, [], k=2), 0)


class _StubIndex:
    """An 'approximate index' that never returns the query itself."""

    def __init__(self, ids, n, d):
        self._ids, self.ntotal, self.d = np.asarray(ids), n, d

    def search(self, q, k):
        return np.zeros((len(q), k), np.float32), self._ids[: len(q), :k].copy()


def test_neighbor_boost_hard_sample_counts_itself():
    X = np.eye(4)
    # queries 0 and 1 (hard); the stub misses both of them, and pads with -1 for query 1
    stub = _StubIndex([[2, 3], [2, -1]], 4, 4)
    b = neighbor_boost(stub, X, [0, 1], k=2)
    # row 0 -> [2, 0] (self replaces the least similar); row 1 -> [2, 1] (self fills the gap)
    assert np.allclose(b, [0.5, 0.5, 1.0, 0.0])


# ============================================================================ meta step


class TinyMLP(nn.Module):
    def __init__(self, bn=False, dropout=0.0):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(5, 16), nn.Tanh())
        self.bn = nn.BatchNorm1d(16) if bn else nn.Identity()
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(16, 3)

    def forward(self, x):
        return self.head(self.drop(self.bn(self.body(x))))


def _ce_per_sample(logits, y):
    return F.cross_entropy(logits, y, reduction="none")


def _setup(seed=0, **mlp):
    torch.manual_seed(seed)
    model, wnet = TinyMLP(**mlp), WeightNet()
    x, y = torch.randn(12, 5), torch.randint(0, 3, (12,))
    xm, ym = torch.randn(9, 5), torch.randint(0, 3, (9,))
    return model, wnet, (x, y, xm, ym)


def _run(model, wnet, data, mode, seed=123, wnet_lr=1e-2, **kw):
    x, y, xm, ym = data
    opt = make_wnet_optimizer(wnet, lr=wnet_lr)
    torch.manual_seed(seed)
    return meta_step(model, wnet, opt, _ce_per_sample, {"x": x}, y, {"x": xm}, ym,
                     F.cross_entropy, meta_update_lr=0.5, mode=mode, **kw)


@pytest.mark.parametrize("mode", ["full", "first_order", "head"])
def test_meta_step_moves_wnet_not_the_model(mode):
    model, wnet, data = _setup(bn=True, dropout=0.2)
    model.train()
    before = {n: p.detach().clone() for n, p in model.state_dict().items()}
    wnet_before = [p.detach().clone() for p in wnet.parameters()]
    res = _run(model, wnet, data, mode, head_param_names=["head"] if mode == "head" else None)
    for n, p in model.state_dict().items():  # parameters and buffers, bitwise
        assert torch.equal(p, before[n]), n
    assert all(p.grad is None for p in model.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(wnet_before, wnet.parameters()))
    assert res.weights.shape == (12,) and not res.weights.requires_grad
    assert torch.all((res.weights >= 0.1) & (res.weights <= 8.0))
    assert not res.losses.requires_grad and np.isfinite(float(res.meta_loss))
    assert res.wnet_grad_norm > 0
    # post-meta weights are those of the updated WNet
    with torch.no_grad():
        assert torch.allclose(res.weights, batch_weights(wnet, res.losses))


def test_meta_step_leaves_existing_grads_alone():
    model, wnet, data = _setup()
    for p in model.parameters():
        p.grad = torch.full_like(p, 0.25)
    for mode in ("full", "first_order"):
        _run(model, wnet, data, mode)
        assert all(torch.equal(p.grad, torch.full_like(p, 0.25)) for p in model.parameters())


def _exact_meta_grad(model, wnet, data, lr=0.5, scale=None):
    """Meta-gradient from per-sample gradients: dL/dw_i = -lr c_i g_i . grad L_meta(theta'), for the
    virtual step theta' = theta - lr sum_i w_i c_i g_i (c_i = 1/B: the weighted mean)."""
    x, y, xm, ym = data
    scale = torch.full((len(y),), 1 / len(y)) if scale is None else scale
    params = dict(model.named_parameters())
    names = list(params)
    losses = _ce_per_sample(model(x), y)
    w = batch_weights(wnet, losses)
    g = [torch.autograd.grad(losses[i], [params[n] for n in names], retain_graph=True)
         for i in range(len(y))]
    G = [sum(w[i].detach() * scale[i] * g[i][j] for i in range(len(y))) for j in range(len(names))]
    theta_p = {n: (params[n] - lr * G[j]).detach().requires_grad_() for j, n in enumerate(names)}
    ml = F.cross_entropy(torch.func.functional_call(model, theta_p, (xm,)), ym)
    v = torch.autograd.grad(ml, [theta_p[n] for n in names])
    coef = torch.stack([-lr * scale[i] * sum((gi * vj).sum() for gi, vj in zip(g[i], v))
                        for i in range(len(y))])
    return torch.autograd.grad(w, list(wnet.parameters()), grad_outputs=coef)


def test_full_meta_gradient_is_exact():
    model, wnet, data = _setup(seed=3)
    model.eval()
    exact = _exact_meta_grad(model, wnet, data)
    _run(model, wnet, data, "full")
    for p, e in zip(wnet.parameters(), exact):
        assert torch.allclose(p.grad, e, rtol=1e-4, atol=1e-9)


def _scaled_terms(scale):
    """A per-sample loss function whose update loss is sum(w_i c_i l_i), not mean(w l)."""
    def per_sample(logits, y):
        losses = _ce_per_sample(logits, y)
        return losses, losses * scale
    return per_sample


def test_the_virtual_step_descends_the_update_terms_it_is_given():
    model, wnet0, data = _setup(seed=3)
    model.eval()
    x, y, xm, ym = data
    scale = torch.linspace(0.01, 0.3, len(y))  # e.g. windows of different lengths over the batch's tokens
    state = {k: v.clone() for k, v in wnet0.state_dict().items()}
    exact = _exact_meta_grad(model, wnet0, data, scale=scale)
    grads, results = {}, {}
    for mode in ("full", "first_order"):
        wnet = WeightNet()
        wnet.load_state_dict(state)
        results[mode] = meta_step(model, wnet, make_wnet_optimizer(wnet, lr=1e-2), _scaled_terms(scale), {"x": x}, y,
                                  {"x": xm}, ym, F.cross_entropy, meta_update_lr=0.5, mode=mode)
        grads[mode] = _flat_grad(wnet)
    torch.testing.assert_close(grads["full"], torch.cat([e.reshape(-1) for e in exact]), rtol=1e-4, atol=1e-9)
    # every parameter in the head set: the head mode descends the same terms
    head = WeightNet()
    head.load_state_dict(state)
    meta_step(model, head, make_wnet_optimizer(head, lr=1e-2), _scaled_terms(scale), {"x": x}, y, {"x": xm}, ym,
              F.cross_entropy, meta_update_lr=0.5, mode="head", head_param_names=["head", "body"])
    torch.testing.assert_close(_flat_grad(head), grads["full"], rtol=1e-5, atol=1e-10)
    assert F.cosine_similarity(grads["full"], grads["first_order"], dim=0) > 0.999
    # the plain weighted mean is another meta-gradient
    plain = WeightNet()
    plain.load_state_dict(state)
    _run(model, plain, data, "full")
    assert not torch.allclose(_flat_grad(plain), grads["full"], rtol=1e-2)
    # WNet still weighs the losses, and the result carries the terms
    res = results["full"]
    torch.testing.assert_close(res.terms, res.losses * scale)
    with torch.no_grad():
        torch.testing.assert_close(res.weights, batch_weights(wnet, res.losses))


@pytest.mark.parametrize("mode", ["full", "first_order", "head"])
def test_terms_of_the_weighted_mean_give_the_plain_meta_step(mode):
    model, wnet0, data = _setup(seed=6)
    model.eval()
    state = {k: v.clone() for k, v in wnet0.state_dict().items()}
    grads = []
    for fn in (_ce_per_sample, _scaled_terms(torch.full((12,), 1 / 12))):
        wnet = WeightNet()
        wnet.load_state_dict(state)
        x, y, xm, ym = data
        torch.manual_seed(1)
        res = meta_step(model, wnet, make_wnet_optimizer(wnet, lr=1e-2), fn, {"x": x}, y, {"x": xm}, ym,
                        F.cross_entropy, meta_update_lr=0.5, mode=mode,
                        head_param_names=["head"] if mode == "head" else None)
        grads.append(_flat_grad(wnet))
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-4, atol=1e-9)
    assert res.terms is not None


def _flat_grad(wnet):
    return torch.cat([p.grad.reshape(-1) for p in wnet.parameters()])


@pytest.mark.parametrize("mode", ["full", "first_order"])
def test_parameters_the_meta_loss_reads_live_can_stay_out_of_the_virtual_step(mode):
    # a CRF's case: ``temperature`` scales the logits in both losses but is read from the live
    # module, never through the virtual parameters, so its virtual step is wasted work
    model, wnet0, (x, y, xm, ym) = _setup(seed=8)
    model.temperature = nn.Parameter(torch.tensor(1.3))
    model.eval()

    def per_sample(logits, t):
        return F.cross_entropy(logits * model.temperature, t, reduction="none")

    def meta_loss(logits, t):
        return F.cross_entropy(logits * model.temperature, t)

    state = {k: v.clone() for k, v in wnet0.state_dict().items()}
    grads = []
    for fixed in (None, ["temperature"]):
        wnet = WeightNet()
        wnet.load_state_dict(state)
        torch.manual_seed(3)
        meta_step(model, wnet, make_wnet_optimizer(wnet, lr=1e-2), per_sample, {"x": x}, y, {"x": xm}, ym,
                  meta_loss, meta_update_lr=0.5, mode=mode, fixed_param_names=fixed)
        grads.append(_flat_grad(wnet))
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-6, atol=1e-12)
    # fixing a parameter the meta loss does read through the virtual step changes the meta-gradient
    wnet = WeightNet()
    wnet.load_state_dict(state)
    torch.manual_seed(3)
    meta_step(model, wnet, make_wnet_optimizer(wnet, lr=1e-2), per_sample, {"x": x}, y, {"x": xm}, ym,
              meta_loss, meta_update_lr=0.5, mode=mode, fixed_param_names="head")
    assert not torch.allclose(_flat_grad(wnet), grads[0], rtol=1e-3)


def test_fixing_every_parameter_is_refused():
    model, wnet, data = _setup()
    with pytest.raises(ValueError, match="leave the virtual step no parameter"):
        _run(model, wnet, data, "full", fixed_param_names=["body", "head"])


def test_full_and_first_order_are_close_but_different():
    model, wnet0, data = _setup(seed=5, dropout=0.1)
    model.train()
    state = {k: v.clone() for k, v in wnet0.state_dict().items()}
    results = {}
    for mode in ("full", "first_order"):
        wnet = WeightNet()
        wnet.load_state_dict(state)
        res = _run(model, wnet, data, mode, seed=7)
        results[mode] = (_flat_grad(wnet), res, [p.detach().clone() for p in wnet.parameters()])
    g_full, r_full, p_full = results["full"]
    g_fo, r_fo, p_fo = results["first_order"]
    assert not torch.equal(g_full, g_fo)
    cos = F.cosine_similarity(g_full, g_fo, dim=0)
    assert cos > 0.999, float(cos)
    assert float((g_full - g_fo).norm() / g_full.norm()) < 1e-2
    assert torch.allclose(r_full.meta_loss, r_fo.meta_loss, atol=1e-6)  # same theta', same masks
    assert any(not torch.equal(a, b) for a, b in zip(p_full, p_fo))
    for a, b in zip(p_full, p_fo):
        assert torch.allclose(a, b, atol=1e-3)


def test_head_mode():
    model, wnet0, data = _setup(seed=2)
    model.eval()
    state = {k: v.clone() for k, v in wnet0.state_dict().items()}
    grads = {}
    for mode, head in [("full", None), ("head", ["head", "body"]), ("head", ["head.weight", "head.bias"])]:
        wnet = WeightNet()
        wnet.load_state_dict(state)
        _run(model, wnet, data, mode, head_param_names=head)
        grads[(mode, None if head is None else len(head[0]))] = _flat_grad(wnet)
    # every parameter in the head set: identical to full
    assert torch.allclose(grads[("full", None)], grads[("head", 4)], rtol=1e-5, atol=1e-10)
    # the classifier only: a different bi-level problem
    assert not torch.allclose(grads[("full", None)], grads[("head", 11)])
    with pytest.raises(ValueError, match="head_param_names"):
        _run(model, WeightNet(), data, "head")
    with pytest.raises(ValueError, match="match no trainable"):
        _run(model, WeightNet(), data, "head", head_param_names=["decoder"])


@pytest.mark.parametrize("mode", ["full", "first_order", "head"])
def test_keep_graph_reuses_the_forward(mode):
    model, wnet, data = _setup(seed=4)
    model.eval()
    x, y, _, _ = data
    res = _run(model, wnet, data, mode, keep_graph=True,
               head_param_names=["head"] if mode == "head" else None)
    assert res.losses.requires_grad
    (res.weights * res.losses).mean().backward()
    got = [p.grad.clone() for p in model.parameters()]
    model.zero_grad(set_to_none=True)
    (res.weights * _ce_per_sample(model(x), y)).mean().backward()
    for a, p in zip(got, model.parameters()):
        assert torch.allclose(a, p.grad, atol=1e-6)


def test_sequence_loss():
    torch.manual_seed(0)
    logits = torch.randn(2, 4, 3)
    t = torch.tensor([[0, 2, -100, 1], [-100, -100, -100, -100]])
    tok = F.cross_entropy(logits.transpose(1, 2), t, reduction="none", ignore_index=-100)
    mx = sequence_loss(logits, t)
    assert mx[0] == pytest.approx(float(tok[0, [0, 1, 3]].max())) and mx[1] == 0
    mean = sequence_loss(logits, t, reduction="mean")
    assert mean[0] == pytest.approx(float(tok[0, [0, 1, 3]].mean())) and mean[1] == 0


# ============================================================================ meta set


def test_balanced_meta_set_counts():
    rng = np.random.default_rng(0)
    y_train = np.repeat(["a", "b", "c", "d", "e"], [200, 80, 40, 30, 25])
    rng.shuffle(y_train)
    y_val = np.repeat(["a", "b", "c", "d", "e"], [40, 15, 9, 4, 2])  # median 9
    moved, keep = build_balanced_meta_set(y_train, y_val, random_state=0)
    assert np.intersect1d(moved, keep).size == 0
    assert np.array_equal(np.sort(np.concatenate([moved, keep])), np.arange(y_train.size))
    meta = np.concatenate([y_val, y_train[moved]])
    for c in "abcde":
        assert np.sum(meta == c) >= 9
    assert {c: int(np.sum(y_train[moved] == c)) for c in "abcde"} == {"a": 0, "b": 0, "c": 0, "d": 5, "e": 7}
    assert np.array_equal(moved, build_balanced_meta_set(y_train, y_val, random_state=0)[0])
    # even count of classes: the median is rounded up; a class absent from validation counts 0
    moved2, _ = build_balanced_meta_set([0] * 10 + [1] * 10 + [2] * 10, [0, 0, 0, 1], random_state=1)
    assert np.bincount(np.concatenate([[0, 0, 0, 1], np.array([0] * 10 + [1] * 10 + [2] * 10)[moved2]])).tolist() == [3, 1, 1]
    # the cap: at most half of a class's training examples move
    y_tr = np.array(["a"] * 20 + ["b"] * 4)
    m_all, _ = build_balanced_meta_set(y_tr, ["a"] * 10 + ["b"] * 0 + ["c"] * 10, random_state=0)
    assert np.sum(y_tr[m_all] == "b") == 4  # the reference moves them all
    m_cap, k_cap = build_balanced_meta_set(y_tr, ["a"] * 10 + ["c"] * 10, random_state=0,
                                           max_move_fraction=0.5)
    assert np.sum(y_tr[m_cap] == "b") == 2 and np.sum(y_tr[k_cap] == "b") == 2


def test_balanced_meta_set_ner():
    assert count_entity_spans(["B-A", "I-A", "I-A", "O", "B-B", "B-B", "I-B"]) == {"A": 1, "B": 2}
    train = [["B-A", "O"], ["B-B", "I-B", "B-B"], ["B-C", "O", "B-C"], ["O"], ["B-C", "B-A"],
             ["B-D"], ["B-D", "B-C"], ["O", "O"]]
    val = [["B-A", "B-A", "B-A"], ["B-B", "B-B", "B-B"], ["B-C"], ["O"]]  # A3 B3 C1 D0 -> median 2
    moved, keep = build_balanced_meta_set_ner(train, val, random_state=0)
    assert np.intersect1d(moved, keep).size == 0
    assert sorted(moved.tolist() + keep.tolist()) == list(range(len(train)))
    totals = {}
    for s in list(val) + [train[i] for i in moved]:
        for t, c in count_entity_spans(s).items():
            totals[t] = totals.get(t, 0) + c
    assert all(totals.get(t, 0) >= 2 for t in "ABCD"), totals
    # deficits C 1, D 2: greedy takes sentence 6 (D + C, gain 2), then 5 (D, no surplus span)
    assert moved.tolist() == [5, 6]


# ============================================================================ sampler


def test_sampler_size_determinism_and_attributes():
    X, y = make_classification(n_samples=150, n_features=8, weights=[0.85], random_state=0)
    X_in, y_in = X.copy(), y.copy()
    s = HardnessNeighborhoodSampler(random_state=0, oversample_ratio=1.3, knn_k=5)
    X_res, y_res = s.fit_resample(X, y)
    assert X_res.shape == (round(1.3 * 150), 8) and y_res.shape == (195,)
    assert np.array_equal(X, X_in) and np.array_equal(y, y_in)
    assert np.array_equal(X_res, X[s.sample_indices_]) and np.array_equal(y_res, y[s.sample_indices_])
    assert s.hardness_.shape == (150,) and np.all((s.hardness_ >= 0.1) & (s.hardness_ <= 8))
    assert np.all((s.probe_error_ >= 0) & (s.probe_error_ <= 1))
    assert s.hard_indices_.size == 15
    assert np.all(s.hardness_[s.hard_indices_] >= np.delete(s.hardness_, s.hard_indices_).max())
    assert s.neighbor_boost_.max() == 1.0 and np.all(s.neighbor_boost_[s.hard_indices_] > 0)
    p = sampling_probabilities(s.hardness_, s.neighbor_boost_, hardness_alpha=0.7, knn_lambda=0.7)
    assert np.allclose(s.sampling_probabilities_, p)
    X2, _ = HardnessNeighborhoodSampler(random_state=0, oversample_ratio=1.3, knn_k=5).fit_resample(X, y)
    assert np.array_equal(X_res, X2)
    X3, _ = HardnessNeighborhoodSampler(random_state=1, oversample_ratio=1.3, knn_k=5).fit_resample(X, y)
    assert not np.array_equal(X_res, X3)


def test_sampler_sample_weight_and_params():
    X, y = make_classification(n_samples=60, n_features=4, n_informative=3, n_redundant=0,
                               n_classes=3, random_state=1)
    w = np.linspace(0.5, 2.0, 60)
    out = HardnessNeighborhoodSampler(random_state=0, oversample_ratio=0.5).fit_resample(X, y, sample_weight=w)
    assert len(out) == 3 and out[0].shape == (30, 4)
    s = HardnessNeighborhoodSampler(random_state=0, oversample_ratio=0.5)
    X_res, y_res, w_res = s.fit_resample(X, y, sample_weight=w)
    assert np.array_equal(w_res, w[s.sample_indices_])
    # alpha 0, lambda 0: uniform probabilities
    s1 = HardnessNeighborhoodSampler(hardness_alpha=0, knn_lambda=0, random_state=0)
    assert s1.fit_resample(X, y)[0].shape == (72, 4)
    assert np.allclose(s1.sampling_probabilities_, 1 / 60)
    with pytest.raises(ValueError, match="knn_ratio"):
        HardnessNeighborhoodSampler(knn_ratio=0).fit_resample(X, y)
    with pytest.raises(ValueError, match="index"):
        HardnessNeighborhoodSampler(index="lsh").fit_resample(X, y)
    # string labels, pandas-free list input
    y_str = np.array(["pos", "neg", "mid"])[y]
    X_l, y_l = HardnessNeighborhoodSampler(random_state=0).fit_resample(X.tolist(), y_str)
    assert isinstance(X_l, list) and set(y_l) <= {"pos", "neg", "mid"}


def test_sampler_draws_systematically_unless_asked_for_independent_draws():
    X, y = make_classification(n_samples=200, n_features=4, weights=[0.8], random_state=0)
    flat = dict(hardness_alpha=0, knn_lambda=0, oversample_ratio=1.2, random_state=0)
    s = HardnessNeighborhoodSampler(**flat)
    s.fit_resample(X, y)
    counts = np.bincount(s.sample_indices_, minlength=200)
    # uniform p, 240 draws: every row once, 40 of them twice
    assert counts.min() == 1 and counts.max() == 2 and int((counts == 2).sum()) == 40
    m = HardnessNeighborhoodSampler(draw_scheme="multinomial", **flat)
    m.fit_resample(X, y)
    assert np.bincount(m.sample_indices_, minlength=200).min() == 0  # independent draws miss rows
    with pytest.raises(ValueError, match="draw_scheme"):
        HardnessNeighborhoodSampler(draw_scheme="stratified").fit_resample(X, y)


def test_sampler_takes_a_binary_target_with_a_one_row_class():
    X = np.random.default_rng(0).normal(size=(40, 4))
    y = np.r_[np.zeros(39, dtype=int), 1]
    s = HardnessNeighborhoodSampler(random_state=0, knn_k=3)
    s.fit_resample(X, y)  # a training fold of class 0 alone used to fail the probe's fit
    assert s.probe_error_[39] == 1.0  # the one row is left out of the only fold it could be learnt from
    # a splitter whose training folds hold one class: that fold's rows are predicted as that class
    from sklearn.model_selection import KFold
    y2 = np.r_[np.zeros(20, dtype=int), np.ones(20, dtype=int)]
    s2 = HardnessNeighborhoodSampler(random_state=0, knn_k=3, cv=KFold(2))
    s2.fit_resample(X, y2)
    assert np.all(s2.probe_error_ == 1.0)
    # where every fold holds both classes the errors are cross_val_predict's
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    cv = StratifiedKFold(3, shuffle=True, random_state=0)
    s3 = HardnessNeighborhoodSampler(random_state=0, knn_k=3, cv=cv, probe=LogisticRegression(random_state=0))
    s3.fit_resample(X, y2)
    proba = cross_val_predict(LogisticRegression(random_state=0), X, y2, cv=cv, method="predict_proba")
    np.testing.assert_allclose(s3.probe_error_, 1 - proba[np.arange(40), y2])
    # a splitter that leaves rows untested (or tests them twice) is refused: they got hardness 1 silently
    from sklearn.model_selection import ShuffleSplit
    with pytest.raises(ValueError, match=r"puts \d+ of 40 rows in no test fold or in several: the probe needs a "
                                         r"partition"):
        HardnessNeighborhoodSampler(cv=ShuffleSplit(3, test_size=0.2, random_state=0)).fit_resample(X, y2)


def test_sampler_hardness_is_on_hamr_weight_scale():
    from skimb.training.hamr._wnet import WEIGHT_CLIP

    X, y = make_classification(n_samples=600, weights=[0.8], random_state=0)
    s = HardnessNeighborhoodSampler(random_state=0)
    s.fit_resample(X, y)
    lo, hi = WEIGHT_CLIP
    assert (lo, hi) == (0.1, 8.0)
    np.testing.assert_allclose(s.hardness_, np.clip(s.probe_error_ / s.probe_error_.mean(), lo, hi))
    assert s.hardness_.min() == lo and abs(np.mean(s.probe_error_ / s.probe_error_.mean()) - 1) < 1e-12
    p = s.sampling_probabilities_
    np.testing.assert_allclose(p, sampling_probabilities(s.hardness_, s.neighbor_boost_))
    # bounded draw: at most (8 / 0.1) ** 0.7 * (1 + 0.7) ~ 36.5 between two rows
    bound = ((hi + 1e-6) / (lo + 1e-6)) ** 0.7 * 1.7
    assert p.max() / p.min() <= bound
    # the raw error 1 - p̂ (the old scale) gives an extreme draw on the same data
    p_raw = sampling_probabilities(s.probe_error_, s.neighbor_boost_)
    assert p_raw.max() / p_raw.min() > 1000
    # so far more distinct rows are drawn (expected count and the sampler's actual draw)
    n_draws = s.sample_indices_.size
    expected = lambda q: float(np.sum(1 - (1 - q) ** n_draws))  # noqa: E731
    assert expected(p) > expected(p_raw) + 30
    raw_draw = draw_epoch_indices(p_raw, 1.2, np.random.RandomState(0))
    assert np.unique(s.sample_indices_).size > np.unique(raw_draw).size + 15
    # a probe that is certain and right everywhere: every row equally hard
    assert np.all(HardnessNeighborhoodSampler._hamr_scale(np.zeros(5)) == 1.0)


_checks = parametrize_with_checks([HardnessNeighborhoodSampler(random_state=0, knn_k=5)])
_checks = pytest.mark.parametrize(_checks.args[0], list(_checks.args[1]), **_checks.kwargs)


@_checks
def test_imblearn_compatible(estimator, check):
    check(estimator)


def test_wnet_weights_stay_float32_under_autocast():
    from skimb.training.hamr import WeightNet, batch_weights

    torch.manual_seed(0)
    wnet, losses = WeightNet(), torch.rand(16)
    expected = batch_weights(wnet, losses)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = batch_weights(wnet, losses.to(torch.bfloat16))
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, batch_weights(wnet, losses.to(torch.bfloat16).float()))
    assert (got - expected).abs().max() < 0.05


def test_weights_keep_mean_one_however_small_wnets_outputs():
    # a batch mean below the old floor of 1e-12 (WNet's logits under -27.6) broke the mean 1
    wnet = WeightNet()
    last = [m for m in wnet.modules() if isinstance(m, nn.Linear)][-1]
    with torch.no_grad():
        last.weight.mul_(0.01)
        last.bias.fill_(-40.0)
    w = batch_weights(wnet, torch.tensor([0.1, 0.5, 2.0, 3.0]))
    assert torch.all(torch.isfinite(w))
    assert float(w.mean()) == pytest.approx(1.0, abs=1e-4)
