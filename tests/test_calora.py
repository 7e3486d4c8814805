"""Tests of the CALoRA torch layer (skimb.heads): Eq. 4 algebra, routing, stage-2 training."""

from __future__ import annotations

import copy
import dataclasses
import io
import math
import pickle

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from skimb.heads import (
    CALoRAConfig,
    ClassRoutedLoRA,
    fit_calora_head,
    route_from_logits,
    topk_coverage,
    true_label_rank,
)

D_IN, D_OUT, C, R = 7, 5, 4, 3


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _layer(routing="topk", k=2, rank=R, alpha=None, d_out=D_OUT, n_classes=C, dtype=torch.float64, seed=0):
    g = _gen(seed)
    base = nn.Linear(D_IN, d_out, dtype=dtype)
    with torch.no_grad():
        base.weight.copy_(torch.randn(base.weight.shape, generator=g, dtype=dtype))
        base.bias.copy_(torch.randn(base.bias.shape, generator=g, dtype=dtype))
    cfg = CALoRAConfig(n_classes=n_classes, rank=rank, k=k, routing=routing, alpha=alpha)
    layer = ClassRoutedLoRA(base, cfg, generator=g)
    with torch.no_grad():  # non-zero B so that the adapters matter
        layer.lora_B.copy_(torch.randn(layer.lora_B.shape, generator=g, dtype=dtype))
    return layer


def _blocks(layer):
    r = layer.rank
    A = [layer.lora_A[i * r : (i + 1) * r] for i in range(layer.n_classes)]
    B = [layer.lora_B[:, i * r : (i + 1) * r] for i in range(layer.n_classes)]
    return A, B


def _explicit(layer, x, route):
    """W0 x + scaling * Σ_i route_i B_i A_i x, one sample and one class at a time."""
    A, B = _blocks(layer)
    out = []
    for n in range(x.shape[0]):
        h = layer.base.weight @ x[n] + layer.base.bias
        for i in range(layer.n_classes):
            if route[n, i] != 0:
                h = h + layer.scaling * route[n, i] * (B[i] @ (A[i] @ x[n]))
        out.append(h)
    return torch.stack(out)


# ----------------------------------------------------------------------------- Eq. 4 algebra
@pytest.mark.parametrize("routing", ["topk", "pseudo", "soft"])
@pytest.mark.parametrize("alpha", [None, 6.0])
def test_masked_stack_equals_sum_of_selected_adapters(routing, alpha):
    layer = _layer(routing=routing, alpha=alpha)
    g = _gen(1)
    x = torch.randn(9, D_IN, generator=g, dtype=torch.float64)
    logits = torch.randn(9, C, generator=g, dtype=torch.float64)
    route = route_from_logits(logits, routing, 2)
    n_fired = (route > 0).sum(1)
    assert torch.all(n_fired == (1 if routing == "pseudo" else 2))
    if routing == "soft":
        assert torch.allclose(route.sum(1), torch.ones(9, dtype=torch.float64))
    else:
        assert set(route.unique().tolist()) <= {0.0, 1.0}
    with torch.no_grad():
        got = layer(x, route)
        want = _explicit(layer, x, route)
    assert torch.allclose(got, want, atol=1e-10, rtol=1e-10)
    # merged dense weight per gate row gives the same outputs
    for n in range(9):
        w = layer.merged_weight(route[n])
        assert torch.allclose(F.linear(x[n], w, layer.base.bias), got[n], atol=1e-10)


def test_k_equals_C_is_one_wide_lora():
    layer = _layer(routing="topk", k=C, alpha=12.0)
    x = torch.randn(6, D_IN, generator=_gen(2), dtype=torch.float64)
    logits = torch.randn(6, C, generator=_gen(3), dtype=torch.float64)
    route = route_from_logits(logits, "topk", C)
    assert torch.all(route == 1)
    with torch.no_grad():
        wide = layer.base(x) + layer.scaling * (x @ layer.lora_A.T) @ layer.lora_B.T
        assert torch.allclose(layer(x, route), wide, atol=1e-10)
    assert layer.scaling == pytest.approx(12.0 / R)


@pytest.mark.parametrize("init", ["kaiming", "gaussian"])
def test_fresh_layer_equals_base_and_init_is_peft_like(init):
    base = nn.Linear(D_IN, C)
    layer = ClassRoutedLoRA(base, CALoRAConfig(n_classes=C, rank=R, init=init), generator=_gen())
    assert torch.all(layer.lora_B == 0)
    assert layer.lora_A.abs().sum() > 0
    if init == "kaiming":
        assert layer.lora_A.abs().max() <= 1 / math.sqrt(D_IN)
    x = torch.randn(4, D_IN)
    route = torch.ones(4, C)
    assert torch.equal(layer(x, route), base(x))
    assert layer.lora_A.shape == (C * R, D_IN) and layer.lora_B.shape == (C, C * R)
    assert layer.base is base
    assert not base.weight.requires_grad and not base.bias.requires_grad
    assert [n for n, p in layer.named_parameters() if p.requires_grad] == ["lora_A", "lora_B"]
    np.testing.assert_array_equal(layer.adapter_norms(), np.zeros(C))


def test_adapter_norms_match_dense_products():
    layer = _layer(alpha=6.0)
    A, B = _blocks(layer)
    want = np.array([torch.linalg.norm(B[i] @ A[i]).item() for i in range(C)])
    norms = layer.adapter_norms()
    assert norms.shape == (C,) and norms.dtype == np.float64
    np.testing.assert_allclose(norms, layer.scaling * want, rtol=1e-10)
    np.testing.assert_allclose(layer.adapter_norms(scaled=False), want, rtol=1e-10)


# ----------------------------------------------------------------------------- routing
def test_routing_follows_stage1_ranking():
    # rankings: row 0 -> 1 > 2 > 0 > 3 ; row 1 -> 0 > 3 > 2 > 1
    logits = torch.tensor([[0.1, 5.0, 3.0, -2.0], [9.0, -1.0, 0.0, 8.0]])
    topk = route_from_logits(logits, "topk", 2)
    assert topk.tolist() == [[0, 1, 1, 0], [1, 0, 0, 1]]
    assert route_from_logits(logits, "topk", 3).tolist() == [[1, 1, 1, 0], [1, 0, 1, 1]]
    assert route_from_logits(logits, "pseudo", 2).tolist() == [[0, 1, 0, 0], [1, 0, 0, 0]]
    # multi-label pseudo: top-1 sigmoid score, the same class
    assert torch.equal(route_from_logits(logits, "pseudo", 1, multilabel=True), route_from_logits(logits, "pseudo", 1))
    soft = route_from_logits(logits, "soft", 2)
    p = torch.softmax(logits, -1)
    assert soft[0, 1] == pytest.approx((p[0, 1] / (p[0, 1] + p[0, 2])).item())
    assert soft[0, 2] == pytest.approx((p[0, 2] / (p[0, 1] + p[0, 2])).item())
    assert soft[0, 0] == 0 and soft[0, 3] == 0
    s = torch.sigmoid(logits)
    soft_ml = route_from_logits(logits, "soft", 2, multilabel=True)
    assert soft_ml[1, 0] == pytest.approx((s[1, 0] / (s[1, 0] + s[1, 3])).item())
    assert torch.allclose(soft_ml.sum(-1), torch.ones(2))
    # soft with k=1 is pseudo
    assert torch.equal(route_from_logits(logits, "soft", 1), route_from_logits(logits, "pseudo", 1))
    # numpy input, per-token logits (N, T, C), no gradient kept
    assert route_from_logits(logits.numpy(), "topk", 2).tolist() == topk.tolist()
    tok = route_from_logits(logits.unsqueeze(0).repeat(3, 1, 1).requires_grad_(), "topk", 2)
    assert tok.shape == (3, 2, C) and not tok.requires_grad
    assert torch.equal(tok[2], topk)


def test_oracle_routing_uses_targets_only_in_training():
    logits = torch.tensor([[0.1, 5.0, 3.0, -2.0], [9.0, -1.0, 0.0, 8.0], [0.0, 1.0, 2.0, 3.0]])
    y = torch.tensor([3, 1, -100])
    train = route_from_logits(logits, "oracle", 2, targets=y, training=True)
    assert train.tolist() == [[0, 0, 0, 1], [0, 1, 0, 0], [0, 0, 0, 0]]  # -100: no adapter
    infer = route_from_logits(logits, "oracle", 2, targets=y, training=False)
    assert torch.equal(infer, route_from_logits(logits, "topk", 2))
    Y = torch.tensor([[1, 0, 1, 0], [0, 0, 0, 0], [1, 1, 1, 1]])
    ml = route_from_logits(logits, "oracle", 2, targets=Y, training=True, multilabel=True)
    assert torch.equal(ml, Y.float())
    with pytest.raises(ValueError, match="needs targets"):
        route_from_logits(logits, "oracle", 2, training=True)
    with pytest.raises(ValueError, match="shape"):
        route_from_logits(logits, "oracle", 2, targets=Y, training=True)  # multi-class needs (N,)
    with pytest.raises(ValueError, match="0 and 1"):
        route_from_logits(logits, "oracle", 2, targets=Y * 2, training=True, multilabel=True)


@pytest.mark.parametrize("k", [0, 5, -1])
def test_routing_rejects_bad_k(k):
    with pytest.raises(ValueError, match="1 <= k <= C"):
        route_from_logits(torch.zeros(2, 4), "topk", k)


def test_routing_rejects_bad_names_and_types():
    with pytest.raises(ValueError, match="routing must be one of"):
        route_from_logits(torch.zeros(2, 4), "bogus", 2)
    with pytest.raises(TypeError, match="k must be an integer"):
        route_from_logits(torch.zeros(2, 4), "topk", 2.0)


def test_topk_coverage_and_true_label_rank_hand_case():
    logits = torch.tensor([[3.0, 2.0, 1.0], [1.0, 2.0, 3.0], [1.0, 3.0, 2.0], [0.0, 1.0, 2.0]])
    y = torch.tensor([1, 0, 2, -100])  # ranks: 2, 3, 2 ; last ignored
    assert topk_coverage(logits, y, 1) == 0.0
    assert topk_coverage(logits, y, 2) == pytest.approx(2 / 3)
    assert topk_coverage(logits, y, 3) == 1.0
    assert topk_coverage(logits.numpy(), np.array([1, 0, 2, -100]), 2) == pytest.approx(2 / 3)
    np.testing.assert_array_equal(true_label_rank(logits, y), [2, 3, 2])
    # multi-label: share of positive labels inside the top-k set
    Y = torch.tensor([[1, 1, 0], [1, 0, 0], [0, 0, 0], [0, 0, 1]])
    # top-1 sets: {0}, {2}, {1}, {2} -> covered positives: 1 (row0) + 0 + 0 + 1 = 2 of 4
    assert topk_coverage(logits, Y, 1) == pytest.approx(2 / 4)
    # top-2 sets: {0,1}, {1,2}, {1,2}, {1,2} -> 2 + 0 + 0 + 1 = 3 of 4
    assert topk_coverage(logits, Y, 2) == pytest.approx(3 / 4)
    assert math.isnan(topk_coverage(logits, torch.zeros(4, 3), 2))
    assert math.isnan(topk_coverage(logits, torch.full((4,), -100), 2))
    # per-token
    assert topk_coverage(logits.unsqueeze(0), y.unsqueeze(0), 2) == pytest.approx(2 / 3)


# ----------------------------------------------------------------------------- shapes
def test_per_token_shapes_and_routes():
    layer = _layer(routing="topk", d_out=C)
    g = _gen(5)
    N, T = 3, 6
    x = torch.randn(N, T, D_IN, generator=g, dtype=torch.float64)
    tok_logits = torch.randn(N, T, C, generator=g, dtype=torch.float64)
    route_tok = route_from_logits(tok_logits, "topk", 2)
    with torch.no_grad():
        out = layer(x, route_tok)
        assert out.shape == (N, T, C)
        flat = layer(x.reshape(N * T, D_IN), route_tok.reshape(N * T, C)).reshape(N, T, C)
        assert torch.allclose(out, flat, atol=1e-12)
        assert torch.allclose(out.reshape(N * T, C), _explicit(layer, x.reshape(-1, D_IN), route_tok.reshape(-1, C)))
        # one route per sequence, shared by its tokens
        route_seq = route_from_logits(tok_logits[:, 0], "topk", 2)
        shared = layer(x, route_seq)
        assert torch.allclose(shared, layer(x, route_seq.unsqueeze(1).expand(N, T, C)), atol=1e-12)
        # self-routing at the final layer: route from base(x) itself, single pass
        self_routed = layer(x)
        assert torch.allclose(self_routed, layer(x, route_from_logits(layer.base(x), "topk", 2)), atol=1e-12)
    with pytest.raises(ValueError, match="does not match"):
        layer(x, torch.ones(N, T + 1, C))
    with pytest.raises(ValueError, match="n_classes"):
        layer(x, torch.ones(N, T, C + 1))
    with pytest.raises(ValueError, match="in_features"):
        layer(torch.ones(N, D_IN + 1), torch.ones(N, C))


def test_self_routing_needs_head_layer():
    layer = _layer(d_out=D_OUT)  # D_OUT != C: not a classification head
    with pytest.raises(ValueError, match="self-routing"):
        layer(torch.ones(2, D_IN, dtype=torch.float64))


# ----------------------------------------------------------------------------- stage 2
def _synthetic(n=600, d=8, seed=0):
    """Separable, imbalanced 3-class problem and a frozen, badly biased head."""
    rng = np.random.RandomState(seed)
    counts = [400, 140, 60]
    centers = rng.normal(scale=3.0, size=(3, d))
    X = np.concatenate([centers[c] + rng.normal(size=(m, d)) for c, m in enumerate(counts)])
    y = np.repeat(np.arange(3), counts)
    # least-squares "true" head, then damage it: shrink, add noise, favour the majority class
    T = np.eye(3)[y] * 2 - 1
    W_true = np.linalg.lstsq(np.c_[X, np.ones(len(X))], T, rcond=None)[0]
    base = nn.Linear(d, 3)
    with torch.no_grad():
        base.weight.copy_(torch.tensor(0.3 * W_true[:-1].T + rng.normal(scale=0.15, size=(3, d))))
        base.bias.copy_(torch.tensor([1.5, 0.0, -1.0]))
    return torch.tensor(X, dtype=torch.float32), torch.tensor(y), base


def _ce(logits, y):
    return F.cross_entropy(logits, y, reduction="none")


def test_stage2_improves_frozen_bad_head_and_leaves_W0_untouched():
    X, y, base = _synthetic()
    w0, b0 = base.weight.detach().clone(), base.bias.detach().clone()
    with torch.no_grad():
        s1 = base(X)
    acc_base = (s1.argmax(1) == y).float().mean().item()
    assert acc_base < 0.9  # the head is genuinely bad
    cfg = CALoRAConfig(n_classes=3, rank=2, k=2, routing="topk")
    mod = fit_calora_head(base, X, s1, y, config=cfg, loss_fn=_ce, epochs=30, lr=1e-2, batch_size=128, random_state=0)
    assert not mod.training
    assert mod.base is base
    assert torch.equal(base.weight, w0) and torch.equal(base.bias, b0)  # bitwise
    assert not base.weight.requires_grad and not base.bias.requires_grad
    hist = mod.loss_history_
    assert len(hist) == 30 and hist[-1] < 0.5 * hist[0]
    with torch.no_grad():
        out = mod(X, route_from_logits(s1, "topk", 2))
        assert torch.equal(out, mod(X))  # self-routing from base(X) == stage-1 logits here
    acc = (out.argmax(1) == y).float().mean().item()
    assert acc > acc_base + 0.05 and acc > 0.95
    assert _ce(out, y).mean() < _ce(s1, y).mean()
    assert np.all(mod.adapter_norms() > 0)


@pytest.mark.parametrize("routing", ["pseudo", "oracle", "soft"])
def test_stage2_other_routings_reduce_loss(routing):
    X, y, base = _synthetic(n=300, seed=1)
    cfg = CALoRAConfig(n_classes=3, rank=2, k=2, routing=routing)
    mod = fit_calora_head(base, X, None, y, config=cfg, loss_fn=_ce, epochs=10, lr=1e-2, random_state=0)
    assert mod.loss_history_[-1] < mod.loss_history_[0]


def test_stage2_multilabel_oracle_and_ignored_rows():
    X, y, base = _synthetic(n=300, seed=2)
    Y = F.one_hot(y, 3).float()
    Y[::7, 0] = 1.0  # some rows with two labels

    def bce(logits, target):
        return F.binary_cross_entropy_with_logits(logits, target, reduction="none").mean(1)

    cfg = CALoRAConfig(n_classes=3, rank=2, k=2, routing="oracle")
    mod = fit_calora_head(base, X, None, Y, config=cfg, loss_fn=bce, epochs=10, lr=1e-2, multilabel=True, random_state=0)
    assert mod.multilabel and mod.loss_history_[-1] < mod.loss_history_[0]
    # multi-class rows with y = -100 are dropped (NER sub-tokens)
    y_ign = y.clone()
    y_ign[::3] = -100
    w = torch.ones(len(y))
    mod2 = fit_calora_head(base, X, None, y_ign, config=CALoRAConfig(n_classes=3, rank=2), loss_fn=_ce,
                           sample_weight=w, epochs=2, random_state=0)
    mod3 = fit_calora_head(base, X[y_ign >= 0], None, y[y_ign >= 0], config=CALoRAConfig(n_classes=3, rank=2),
                           loss_fn=_ce, epochs=2, random_state=0)
    assert torch.equal(mod2.lora_B, mod3.lora_B)


def test_stage2_is_deterministic_and_leaves_global_rng_alone():
    X, y, base = _synthetic(n=300, seed=3)
    cfg = CALoRAConfig(n_classes=3, rank=2, k=2, dropout=0.2)
    kw = dict(config=cfg, loss_fn=_ce, epochs=4, lr=1e-2, batch_size=64)
    torch_state, np_state = torch.get_rng_state(), np.random.get_state()
    a = fit_calora_head(base, X, None, y, random_state=7, **kw)
    b = fit_calora_head(base, X, None, y, random_state=7, **kw)
    c = fit_calora_head(base, X, None, y, random_state=8, **kw)
    assert torch.equal(torch.get_rng_state(), torch_state)
    assert np.array_equal(np.random.get_state()[1], np_state[1])
    assert torch.equal(a.lora_A, b.lora_A) and torch.equal(a.lora_B, b.lora_B)
    assert a.loss_history_ == b.loss_history_
    assert not torch.equal(a.lora_B, c.lora_B)
    d = fit_calora_head(base, X, None, y, random_state=np.random.RandomState(0), **kw)
    e = fit_calora_head(base, X, None, y, random_state=np.random.RandomState(0), **kw)
    assert torch.equal(d.lora_B, e.lora_B)


def test_stage2_zero_weight_rows_carry_no_gradient():
    X, y, base = _synthetic(n=300, seed=4)
    cfg = CALoRAConfig(n_classes=3, rank=2)
    w = torch.ones(len(y))
    w[y == 2] = 0.0
    y_other = y.clone()
    y_other[y == 2] = 0  # relabel the zero-weight rows: must change nothing
    kw = dict(config=cfg, loss_fn=_ce, sample_weight=w, epochs=3, random_state=0)
    a = fit_calora_head(base, X, None, y, **kw)
    b = fit_calora_head(base, X, None, y_other, **kw)
    assert torch.equal(a.lora_A, b.lora_A) and torch.equal(a.lora_B, b.lora_B)
    with pytest.raises(ValueError, match="sums to 0"):
        fit_calora_head(base, X, None, y, config=cfg, loss_fn=_ce, sample_weight=torch.zeros(len(y)))


def test_stage2_input_errors():
    X, y, base = _synthetic(n=60, seed=5)
    cfg = CALoRAConfig(n_classes=3, rank=2)
    kw = dict(config=cfg, loss_fn=_ce, epochs=1)
    with pytest.raises(ValueError, match="features must have shape"):
        fit_calora_head(base, X[:, :5], None, y, **kw)
    with pytest.raises(ValueError, match="stage1_logits"):
        fit_calora_head(base, X, torch.zeros(len(X), 4), y, **kw)
    with pytest.raises(ValueError, match="n_classes"):
        fit_calora_head(base, X, None, y, config=CALoRAConfig(n_classes=4), loss_fn=_ce)
    with pytest.raises(ValueError, match="per-sample"):
        fit_calora_head(base, X, None, y, config=cfg, loss_fn=lambda z, t: F.cross_entropy(z, t), epochs=1)
    with pytest.raises(ValueError, match="y must have shape"):
        fit_calora_head(base, X, None, y[:-1], **kw)
    with pytest.raises(ValueError, match="index >= n_classes"):
        fit_calora_head(base, X, None, y + 1, **kw)
    with pytest.raises(ValueError, match=r"sample_weight\[0\] is -1.0: weights must be finite and non-negative "
                                         r"\(\d+ of \d+ are not\)"):
        fit_calora_head(base, X, None, y, sample_weight=-torch.ones(len(y)), **kw)
    with pytest.raises(ValueError, match="epochs"):
        fit_calora_head(base, X, None, y, config=cfg, loss_fn=_ce, epochs=-1)
    with pytest.raises(ValueError, match="lr"):
        fit_calora_head(base, X, None, y, config=cfg, loss_fn=_ce, lr=0)
    with pytest.raises(TypeError, match="random_state"):
        fit_calora_head(base, X, None, y, random_state="0", **kw)
    with pytest.raises(TypeError, match="nn.Linear"):
        fit_calora_head(nn.Conv1d(3, 3, 1), X, None, y, **kw)
    with pytest.raises(FloatingPointError):
        fit_calora_head(base, X, None, y, config=cfg, loss_fn=lambda z, t: _ce(z, t) * float("nan"), epochs=1)
    # a failed call never froze a layer it rejected before building the module
    fresh = nn.Linear(8, 3)
    with pytest.raises(ValueError):
        fit_calora_head(fresh, X, None, y[:-1], **kw)
    assert fresh.weight.requires_grad


# ----------------------------------------------------------------------------- config errors
@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        (dict(n_classes=0), ValueError, "n_classes must be >= 1"),
        (dict(n_classes=2.0), TypeError, "n_classes must be an integer"),
        (dict(n_classes=True), TypeError, "n_classes must be an integer"),
        (dict(n_classes=3, rank=0), ValueError, "rank must be >= 1"),
        (dict(n_classes=3, k=0), ValueError, "1 <= k <= n_classes"),
        (dict(n_classes=3, k=4), ValueError, "1 <= k <= n_classes"),
        (dict(n_classes=3, routing="mixture"), ValueError, "routing must be one of"),
        (dict(n_classes=3, alpha=0), ValueError, "alpha"),
        (dict(n_classes=3, alpha=float("inf")), ValueError, "alpha"),
        (dict(n_classes=3, alpha="8"), TypeError, "alpha"),
        (dict(n_classes=3, dropout=1.0), ValueError, "dropout"),
        (dict(n_classes=3, dropout=-0.1), ValueError, "dropout"),
        (dict(n_classes=3, init="orthogonal"), ValueError, "init must be one of"),
    ],
)
def test_config_validation(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        CALoRAConfig(**kwargs)


def test_config_is_frozen_and_layer_errors():
    cfg = CALoRAConfig(n_classes=3, rank=4)
    assert cfg.scaling == 1.0 and CALoRAConfig(n_classes=3, rank=4, alpha=2).scaling == 0.5
    assert CALoRAConfig(n_classes=np.int64(3), k=np.int64(3)).k == 3
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.rank = 2
    with pytest.raises(TypeError, match="nn.Linear"):
        ClassRoutedLoRA(nn.Conv1d(3, 3, 1), cfg)
    with pytest.raises(TypeError, match="CALoRAConfig"):
        ClassRoutedLoRA(nn.Linear(3, 3), dict(n_classes=3))
    layer = ClassRoutedLoRA(nn.Linear(3, 3), cfg)
    assert layer.config is cfg  # stored as given, not copied
    with pytest.raises(ValueError, match="route_row"):
        layer.merged_weight(torch.ones(4))


# ----------------------------------------------------------------------------- serialisation
def test_pickle_save_load_and_to():
    X, y, base = _synthetic(n=120, seed=6)
    cfg = CALoRAConfig(n_classes=3, rank=2, k=2, routing="soft", dropout=0.1)
    mod = fit_calora_head(base, X, None, y, config=cfg, loss_fn=_ce, epochs=2, lr=1e-2, random_state=0)
    with torch.no_grad():
        ref = mod(X)
    buf = io.BytesIO()
    torch.save(mod, buf)
    buf.seek(0)
    loaded = torch.load(buf, weights_only=False)
    assert loaded.config == cfg and loaded.loss_history_ == mod.loss_history_
    with torch.no_grad():
        assert torch.equal(loaded(X), ref)
    clone = pickle.loads(pickle.dumps(mod))
    deep = copy.deepcopy(mod)
    with torch.no_grad():
        assert torch.equal(clone(X), ref) and torch.equal(deep(X), ref)
    # state_dict round trip into a freshly built module
    fresh = ClassRoutedLoRA(nn.Linear(8, 3), cfg)
    buf = io.BytesIO()
    torch.save(mod.state_dict(), buf)
    buf.seek(0)
    fresh.load_state_dict(torch.load(buf))
    fresh.eval()
    with torch.no_grad():
        assert torch.equal(fresh(X), ref)
    # device / dtype moves
    assert deep.to("cpu") is deep
    deep.to(torch.float64)
    assert deep.lora_A.dtype == deep.base.weight.dtype == torch.float64
    with torch.no_grad():
        out64 = deep(X.double())
    assert out64.dtype == torch.float64
    assert torch.allclose(out64.float(), ref, atol=1e-5)
    with torch.no_grad():  # a float32 route on a float64 module is cast to the input's dtype
        out = deep(X.double(), route_from_logits(ref, "soft", 2))
    assert out.dtype == torch.float64 and out.shape == ref.shape


def test_class_balanced_row_weights():
    from skimb.heads._components import class_balanced_row_weights

    w = class_balanced_row_weights(torch.tensor([0, 0, 0, 1, -100]), 2)
    assert w[4] == 0 and torch.isclose(w[:4].mean(), torch.tensor(1.0))
    assert torch.isclose(w[3] / w[0], torch.tensor(3.0))  # three times rarer, three times the weight
    Y = torch.tensor([[1, 0], [1, 0], [1, 1], [0, 0]])
    wm = class_balanced_row_weights(Y, 2)
    assert torch.isclose(wm.mean(), torch.tensor(1.0)) and wm[2] > wm[0]


def _spy_fit_calora_head(monkeypatch, argument):
    """The keyword ``argument`` of every ``fit_calora_head`` call the heads make, in a list."""
    import skimb.heads._components as comp

    seen = []
    real = comp.fit_calora_head

    def spy(*args, **kwargs):
        seen.append(kwargs.get(argument))
        return real(*args, **kwargs)

    monkeypatch.setattr(comp, "fit_calora_head", spy)
    return seen


@pytest.fixture
def stage2_weights(monkeypatch):
    return _spy_fit_calora_head(monkeypatch, "sample_weight")


def _inverse_frequency(y, power=1.0):
    y_enc = np.unique(y, return_inverse=True)[1]
    w = np.bincount(y_enc)[y_enc] ** -power
    return w / w.mean()


@pytest.mark.parametrize("balance, class_weight, expected", [
    ("auto", None, "sqrt"),  # an unweighted stage 1: stage 2 balances the classes half way
    ("auto", "balanced", "uniform"),  # a balanced stage 1: stage 2 does not balance them again
    ("class", None, "class"), ("class", "balanced", "class"),
    ("sqrt", None, "sqrt"),
    ("uniform", "balanced", "uniform"),
    ("none", None, "none"), ("none", "balanced", "none"),  # the estimator's row weights, as the paper
])
def test_calora_stage2_balance_sets_the_row_weights(tiny_bert, stage2_weights, balance, class_weight, expected):
    from conftest import make_toy_texts
    from skimb import TransformerClassifier

    seen = stage2_weights
    X, y = make_toy_texts()
    clf = TransformerClassifier(tiny_bert, head="calora", head__balance=balance, head__rank=2, head__epochs=2,
                                class_weight=class_weight, max_epochs=1, batch_size=8, random_state=0).fit(X, y)
    (w,) = seen
    assert clf.stage2_balance_ == expected
    if expected == "uniform" or (expected == "none" and class_weight is None):
        assert w is None
    elif expected == "none":  # class_weight="balanced" as stage 1's row weights
        np.testing.assert_allclose(w.numpy() / w.numpy().mean(), _inverse_frequency(y), rtol=1e-5)
    else:
        power = {"class": 1.0, "sqrt": 0.5}[expected]
        np.testing.assert_allclose(w.numpy(), _inverse_frequency(y, power), rtol=1e-5)


@pytest.mark.parametrize("params, expected", [
    (dict(loss="weighted_ce"), "uniform"),  # balances fully, as class weighting does
    (dict(loss="afl", loss__alpha="balanced", loss__gamma=0.0), "uniform"),  # no focal term: weighted CE
    (dict(loss="afl", loss__alpha="balanced"), "sqrt"),  # the focal term gives part of the balance back
    (dict(loss="focal", class_weight="balanced"), "sqrt"),
    (dict(loss="class_balanced", loss__base="focal"), "sqrt"),
    (dict(loss="focal"), "sqrt"),  # not balanced at all
])
def test_calora_auto_balance_follows_the_stage1_loss(tiny_bert, stage2_weights, params, expected):
    """A loss that balances the classes itself counts as a balanced stage 1, fully unless it focuses."""
    from conftest import make_toy_texts
    from skimb import TransformerClassifier

    X, y = make_toy_texts()
    y = np.where(np.arange(len(y)) % 4 == 0, "rare", y)  # classes of different sizes
    clf = TransformerClassifier(tiny_bert, head="calora", head__rank=2, head__epochs=2, max_epochs=1, batch_size=8,
                                random_state=0, **params).fit(X, y)
    assert clf.stage2_balance_ == expected
    (w,) = stage2_weights
    if expected == "uniform":
        assert w is None
    else:
        np.testing.assert_allclose(w.numpy(), _inverse_frequency(y, 0.5), rtol=1e-5)


@pytest.fixture
def stage2_losses(monkeypatch):
    return _spy_fit_calora_head(monkeypatch, "loss_fn")


@pytest.mark.parametrize("balance", ["auto", "class", "none"])
def test_calora_stage2_drops_the_loss_class_weights_unless_none(tiny_bert, stage2_losses, balance):
    """The rows balance stage 2's classes (or leave them as they are), not the loss as well;
    ``"none"`` keeps stage 1's loss whole, as the paper's stage 2 does."""
    from conftest import make_toy_texts
    from skimb import TransformerClassifier

    X, y = make_toy_texts()
    y = np.where(np.arange(len(y)) % 4 == 0, "rare", y)  # classes of different sizes
    clf = TransformerClassifier(tiny_bert, loss="weighted_ce", head="calora", head__balance=balance, head__rank=2,
                                head__epochs=2, max_epochs=1, batch_size=8, random_state=0).fit(X, y)
    (loss,) = stage2_losses
    weights = loss.class_weight_.numpy()
    assert np.allclose(weights, 1.0) == (balance != "none")
    assert not np.allclose(clf.loss_.class_weight_.numpy(), 1.0)  # stage 1's loss is untouched


def test_token_calora_class_balance_drops_the_tag_weights(tiny_bert, stage2_losses):
    from conftest import make_ner
    from skimb import TransformerTokenClassifier
    from skimb.losses import CrossEntropyLoss

    X, y = make_ner(24)
    TransformerTokenClassifier(tiny_bert, class_weight="balanced", head="calora", head__balance="class",
                               head__rank=2, head__epochs=2, max_epochs=1, batch_size=8, random_state=0).fit(X, y)
    (loss,) = stage2_losses
    assert isinstance(loss, CrossEntropyLoss)  # the tag weights are the rows' job here


@pytest.mark.parametrize("balance", ["auto", "class"])
def test_token_calora_is_unbalanced_by_default(tiny_bert, stage2_weights, balance):
    from conftest import make_ner
    from skimb import TransformerTokenClassifier

    seen = stage2_weights
    X, y = make_ner(24)
    ner = TransformerTokenClassifier(tiny_bert, head="calora", head__balance=balance, head__rank=2, head__epochs=2,
                                     max_epochs=1, batch_size=8, random_state=0).fit(X, y)
    (w,) = seen
    assert (w is None) == (balance == "auto")  # tags against O: balanced only when asked
    assert ner.stage2_balance_ == ("none" if balance == "auto" else "class")


def test_multilabel_calora_auto_balance_keeps_the_class_weights(tiny_bert, stage2_weights):
    """The single-label rule was not measured on multi-label data: "auto" stays "class" there."""
    from conftest import make_toy_texts
    from skimb import TransformerClassifier
    from skimb.heads._components import class_balanced_row_weights

    X, y = make_toy_texts()
    Y = np.stack([y == y[0], np.arange(len(y)) % 3 == 0], axis=1).astype(int)
    clf = TransformerClassifier(tiny_bert, head="calora", head__rank=2, head__epochs=2, max_epochs=1, batch_size=8,
                                random_state=0).fit(X, Y)
    assert clf.stage2_balance_ == "class"
    np.testing.assert_allclose(stage2_weights[0].numpy(),
                               class_balanced_row_weights(torch.as_tensor(Y), 2).numpy(), rtol=1e-5)


@pytest.mark.parametrize("balance", ["auto", "none"])
def test_multilabel_calora_stage2_drops_the_distribution_balanced_terms_unless_none(tiny_bert, stage2_losses, balance):
    from conftest import make_toy_texts
    from skimb import TransformerClassifier

    X, y = make_toy_texts()
    Y = np.stack([y == y[0], np.arange(len(y)) % 3 == 0], axis=1).astype(int)
    clf = TransformerClassifier(tiny_bert, loss="distribution_balanced", head="calora", head__balance=balance,
                                head__rank=2, head__epochs=2, max_epochs=1, batch_size=8, random_state=0).fit(X, Y)
    (loss,) = stage2_losses
    dropped = balance != "none"
    assert loss.rebalance_weights != dropped
    assert (loss.logit_bias_.abs().sum().item() == 0) == dropped
    assert clf.loss_.rebalance_weights and clf.loss_.logit_bias_.abs().sum().item() > 0  # stage 1's loss untouched


def test_multilabel_row_weights_take_a_power():
    from skimb.heads._components import class_balanced_row_weights

    Y = torch.tensor([[1, 0], [1, 0], [1, 0], [1, 1], [0, 0]])  # groups: label 0 (4), label 1 (1), none (1)
    w = class_balanced_row_weights(Y, 2, power=0.5)
    raw = torch.tensor([0.5, 0.5, 0.5, (0.5 + 1.0) / 2, 1.0])  # mean of group size ** -0.5 over a row's groups
    assert torch.allclose(w, raw / raw.mean())
    assert torch.allclose(class_balanced_row_weights(Y, 2, power=0.0), torch.ones(5))


def test_stage2_balance_survives_save_and_load(tiny_bert, tmp_path):
    from conftest import make_toy_texts
    from skimb import TransformerClassifier

    X, y = make_toy_texts()
    clf = TransformerClassifier(tiny_bert, head="calora", class_weight="balanced", head__rank=2, head__epochs=2,
                                max_epochs=1, batch_size=8, random_state=0).fit(X, y)
    loaded = TransformerClassifier.load_pretrained(clf.save_pretrained(tmp_path / "m"))
    assert clf.stage2_balance_ == loaded.stage2_balance_ == "uniform"
    np.testing.assert_allclose(loaded.decision_function(X[:4]), clf.decision_function(X[:4]), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("epochs, budget, expected", [("auto", 600, 20), ("auto", 3, 3), (4, 3, 4)])
def test_calora_auto_epochs_follow_a_step_budget(tiny_bert, monkeypatch, epochs, budget, expected):
    """``head__epochs="auto"``: 20 epochs, fewer where they would exceed the step budget."""
    import skimb.heads._components as comp
    from conftest import make_toy_texts
    from skimb import TransformerClassifier

    seen = []
    real = comp.fit_calora_head

    def spy(*args, epochs, **kwargs):
        seen.append(epochs)
        return real(*args, epochs=epochs, **kwargs)

    monkeypatch.setattr(comp, "fit_calora_head", spy)
    monkeypatch.setattr(comp, "CALORA_STEP_BUDGET", budget)
    X, y = make_toy_texts()  # fewer rows than one stage-2 batch: one step an epoch
    clf = TransformerClassifier(tiny_bert, head="calora", head__epochs=epochs, head__rank=2, max_epochs=1,
                                batch_size=8, random_state=0).fit(X, y)
    assert seen == [expected] and clf.stage2_epochs_ == expected
    assert len(clf.net_.module_.head.loss_history_) == expected


def _two_labels(y):
    return np.stack([y == y[0], np.arange(len(y)) % 3 == 0], axis=1).astype(int)


@pytest.mark.parametrize("multilabel", [False, True])
def test_disable_class_adapters_gives_the_stage1_model_the_cache_holds(tiny_bert, empty_stage1_cache, multilabel):
    """Within ``disable_class_adapters`` a CALoRA fit scores as its stage 1: its frozen head on its
    features, and the scores of the linear-head fit that the stage-1 cache loads; restored on exit."""
    from sklearn.base import clone

    from conftest import make_toy_texts
    from skimb import TransformerClassifier

    X, y = make_toy_texts()
    Y = _two_labels(y) if multilabel else y
    calora = TransformerClassifier(tiny_bert, head="calora", head__rank=2, head__epochs=2, max_epochs=1, batch_size=8,
                                   random_state=0).fit(X, Y)
    stage2 = calora.decision_function(X)
    with calora.disable_class_adapters() as est:
        stage1 = est.decision_function(X)
        proba1 = est.predict_proba(X)
    with torch.no_grad():
        frozen = calora.net_.module_.head.base(torch.from_numpy(calora.embed(X))).numpy()
    np.testing.assert_allclose(stage1, frozen, rtol=1e-5, atol=1e-6)
    assert not np.allclose(stage2, stage1, atol=1e-4)  # the adapters moved the scores
    np.testing.assert_array_equal(calora.decision_function(X), stage2)  # enabled again
    with pytest.warns(UserWarning, match="ignored by head='linear'"):
        linear = clone(calora).set_params(head="linear").fit(X, Y)
    assert linear.stage1_cached_ and empty_stage1_cache.hits == 1
    np.testing.assert_allclose(linear.predict_proba(X), proba1, rtol=1e-5, atol=1e-6)


def test_disable_class_adapters_covers_backbone_adapters_and_survives_pickling(tiny_bert, empty_stage1_cache):
    from sklearn.base import clone

    from conftest import make_toy_texts
    from skimb import TransformerClassifier

    X, y = make_toy_texts()
    calora = TransformerClassifier(tiny_bert, head="calora", head__layers="last", head__rank=2, head__epochs=2,
                                   max_epochs=1, batch_size=8, random_state=0).fit(X, y)
    with pytest.warns(UserWarning):
        linear = clone(calora).set_params(head="linear").fit(X, y)
    assert linear.stage1_cached_
    loaded = pickle.loads(pickle.dumps(calora))
    with loaded.disable_class_adapters():
        np.testing.assert_allclose(loaded.decision_function(X), linear.decision_function(X), rtol=1e-5, atol=1e-5)
    assert not np.allclose(loaded.decision_function(X), linear.decision_function(X), atol=1e-4)


def test_disable_class_adapters_names_the_remedy_for_heads_without_them(tiny_bert):
    from conftest import make_toy_texts
    from skimb import TransformerClassifier

    X, y = make_toy_texts()
    clf = TransformerClassifier(tiny_bert, head="crt", max_epochs=1, batch_size=8, random_state=0)
    with pytest.raises(Exception, match="not fitted"):
        with clf.disable_class_adapters():
            pass
    clf.fit(X, y)
    with pytest.raises(ValueError, match=r"head CRTHead, which has no class adapters.*set_params\(head='linear'\)"):
        with clf.disable_class_adapters():
            pass


def test_disable_class_adapters_nests_survives_errors_and_predicts_in_float32(tiny_bert):
    from conftest import make_toy_texts
    from skimb import TransformerClassifier

    X, y = make_toy_texts()
    clf = TransformerClassifier(tiny_bert, head="calora", head__rank=2, head__epochs=2, max_epochs=1, batch_size=8,
                                random_state=0).fit(X, y)
    float32_stage2 = clf.decision_function(X)
    with clf.disable_class_adapters():
        stage1 = clf.decision_function(X)
    clf.set_params(quantize="int8")
    int8_stage2 = clf.decision_function(X)  # builds the int8 copy outside the block
    assert not np.allclose(int8_stage2, float32_stage2, atol=1e-6)
    with clf.disable_class_adapters():
        with clf.disable_class_adapters():
            np.testing.assert_array_equal(clf.decision_function(X), stage1)  # float32 despite quantize
        np.testing.assert_array_equal(clf.decision_function(X), stage1)  # still disabled after the inner block
        restored = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(clf.decision_function(X), int8_stage2)
    np.testing.assert_array_equal(restored.set_params(quantize=None).decision_function(X), float32_stage2)
    with pytest.raises(KeyError):
        with clf.disable_class_adapters():
            raise KeyError("inside")
    np.testing.assert_array_equal(clf.decision_function(X), int8_stage2)


def test_disable_class_adapters_on_a_tagger_gives_its_stage1_tag_scores(tiny_bert, empty_stage1_cache):
    from sklearn.base import clone

    from conftest import make_ner
    from skimb import TransformerTokenClassifier

    X, y = make_ner(24)
    tagger = TransformerTokenClassifier(tiny_bert, head="calora", head__rank=2, head__epochs=2, max_epochs=1,
                                        batch_size=8, random_state=0).fit(X, y)
    with pytest.warns(UserWarning):
        linear = clone(tagger).set_params(head="linear").fit(X, y)
    assert linear.stage1_cached_
    with tagger.disable_class_adapters():
        for ours, theirs in zip(tagger.predict_proba(X), linear.predict_proba(X)):
            np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)
    assert not all(np.allclose(ours, theirs, atol=1e-4)
                   for ours, theirs in zip(tagger.predict_proba(X), linear.predict_proba(X)))


def test_a_k_beyond_the_classes_names_the_routed_parameter_before_loading(tiny_bert, toy_data, backbone_must_not_load):
    from skimb import TransformerClassifier

    X, y = toy_data  # three classes
    with pytest.raises(ValueError, match=r"head__k=5 routes more classes than the 3 of this target; give head__k "
                                         r"between 1 and 3"):
        TransformerClassifier(tiny_bert, head="calora", head__k=5, max_epochs=1).fit(X, y)


def test_pseudo_routing_warns_that_head__k_is_ignored_and_covers_the_top1(tiny_bert, toy_data, empty_stage1_cache):
    from skimb import TransformerClassifier

    X, y = toy_data
    params = dict(head="calora", head__routing="pseudo", head__epochs=2, finetune="head", max_epochs=1, batch_size=8,
                  random_state=0, device="cpu", max_length=16)
    with pytest.warns(UserWarning, match=r"head__k is ignored: routing='pseudo' routes each input to its stage-1 "
                                         r"top-1 class") as record:
        k3 = TransformerClassifier(tiny_bert, head__k=3, **params).fit(X, y)
    assert all(w.filename == __file__ for w in record if "head__k" in str(w.message))
    default = TransformerClassifier(tiny_bert, **params).fit(X, y)  # head__k left at its default: no warning
    np.testing.assert_allclose(k3.predict_proba(X), default.predict_proba(X), rtol=1e-6)
    # the top 1, not the top 3 (every class: coverage 1)
    assert k3.routing_topk_coverage_ == default.routing_topk_coverage_ < 1.0


def test_layer_errors_name_head__layers(tiny_bert, toy_data):
    from skimb import TransformerClassifier

    X, y = toy_data
    with pytest.raises(ValueError, match=r"^head__layers entry 'nope' names no nn.Linear layer"):
        TransformerClassifier(tiny_bert, head="calora", head__layers=["nope"], finetune="head", max_epochs=1,
                              device="cpu").fit(X, y)


def test_a_non_finite_stage2_loss_names_head__lr(tiny_bert, toy_data, monkeypatch):
    from skimb import TransformerClassifier
    from skimb.heads import _components

    def diverging(*args, **kwargs):
        raise FloatingPointError("non-finite stage-2 loss at epoch 0 (nan); lower lr or check the inputs.")

    monkeypatch.setattr(_components, "fit_calora_head", diverging)
    X, y = toy_data
    with pytest.raises(FloatingPointError, match=r"\(nan\); lower head__lr\.$"):
        TransformerClassifier(tiny_bert, head="calora", finetune="head", max_epochs=1, device="cpu").fit(X, y)
