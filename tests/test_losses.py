"""Tests of skimb.losses: every loss against an independent numpy computation, plus
the make_loss contract (docs/architecture.md), numerical safety, devices and pickling."""

import copy
import pickle

import numpy as np
import pytest
import torch
from torch import nn

from skimb.losses import (
    FLAT_PARAMS,
    LOSSES,
    AdaptiveFocalLoss,
    BinaryAdaptiveFocalLoss,
    BinaryCrossEntropyLoss,
    BinaryFocalLoss,
    ClassBalancedLoss,
    CrossEntropyLoss,
    DiceLoss,
    DistributionBalancedLoss,
    FocalLoss,
    ImbalanceLoss,
    LDAMLoss,
    LogitAdjustedLoss,
    SelfAdjustingDiceLoss,
    SoftOrdinalLoss,
    WeightedBinaryCrossEntropyLoss,
    WeightedCrossEntropyLoss,
    available_losses,
    loss_schedule_warning,
    make_loss,
    register_loss,
)

N, C = 6, 4
MC_COUNTS = np.array([120.0, 40.0, 9.0, 1.0])  # multi-class, sums to N_MC
N_MC = int(MC_COUNTS.sum())
ML_COUNTS = np.array([70.0, 25.0, 4.0, 1.0])  # positives per label
N_ML = 100


# ---------------------------------------------------------------- numpy references
def np_log_softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def np_ce(z, y):
    return -np_log_softmax(z)[np.arange(len(y)), y]


def np_focal(z, y, gamma, alpha=None):
    p = np.exp(np_log_softmax(z))[np.arange(len(y)), y]
    g = gamma[y] if np.ndim(gamma) else gamma
    a = 1.0 if alpha is None else (alpha[y] if np.ndim(alpha) else alpha)
    return -a * (1 - p) ** g * np.log(p)


def np_sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def np_bce_elem(z, y):
    p = np_sigmoid(z)
    return -(y * np.log(p) + (1 - y) * np.log(1 - p))


def np_focal_bce_elem(z, y, gamma):
    p = np_sigmoid(z)
    return -(y * (1 - p) ** gamma * np.log(p) + (1 - y) * p ** gamma * np.log(1 - p))


def np_dice(z, y, smooth, adjust, square):
    p = np.exp(np_log_softmax(z))
    t = np.eye(z.shape[1])[y]
    if adjust:
        p = (1 - p) * p
    den = p ** 2 + t ** 2 + smooth if square else p + t + smooth
    return (1 - (2 * p * t + smooth) / den).mean(axis=1)


def np_distribution_balanced(z, y, n, N_, gamma=2.0, balance=2.0, lam=2.0, kappa=0.05,
                             a=0.1, b=10.0, mu=0.2, rebalance=True):
    """Transcription of the authors' ResampleLoss (rebalance + focal + logit_reg);
    ``rebalance=False``: every re-balanced weight 1."""
    bias = -np.log(N_ / n - 1) * kappa / lam
    freq_inv = 1.0 / n
    with np.errstate(divide="ignore"):
        repeat = (y * freq_inv).sum(axis=1, keepdims=True)
        pos_weight = freq_inv[None, :] / repeat
    w = 1 / (1 + np.exp(-b * (pos_weight - mu))) + a if rebalance else np.ones_like(z)
    zz = z + bias
    zz = zz * (1 - y) * lam + zz * y
    w = w / lam * (1 - y) + w * y
    bce = np_bce_elem(zz, y)
    pt = np.exp(-bce)
    return (balance * (1 - pt) ** gamma * w * bce).mean(axis=1)


def np_ntr_focal(z, y):
    """The distribution-balanced loss without its class terms (re-balanced weights 1, no prior
    bias): NTR's negative scale and the focal term only."""
    return np_distribution_balanced(z, y, ML_COUNTS, N_ML, kappa=0.0, rebalance=False)


@pytest.fixture
def mc_data():
    rng = np.random.default_rng(0)
    z = rng.normal(scale=2.0, size=(N, C))
    y = np.array([0, 1, 2, 3, 0, 2])
    return z, y, torch.tensor(z, dtype=torch.float64), torch.tensor(y)


@pytest.fixture
def ml_data():
    rng = np.random.default_rng(1)
    z = rng.normal(scale=2.0, size=(N, C))
    y = (rng.random((N, C)) < 0.4).astype(float)
    y[0] = 0.0  # an example without positive labels
    y[1] = 1.0
    return z, y, torch.tensor(z, dtype=torch.float64), torch.tensor(y)


def assert_close(actual, expected, rtol=1e-6, atol=1e-7, msg=""):
    """numpy comparison of tensors (avoids torch.testing's slow first import)."""
    actual, expected = torch.as_tensor(actual), torch.as_tensor(expected)
    assert actual.shape == expected.shape, msg
    np.testing.assert_allclose(actual.detach().double().numpy(),
                               expected.detach().double().numpy(), rtol=rtol, atol=atol,
                               err_msg=msg)


def run(loss, z, y):
    return loss.double()(z, y).detach().numpy()


# ---------------------------------------------------------------- hand-computed values
def test_ce(mc_data):
    z, y, zt, yt = mc_data
    np.testing.assert_allclose(run(CrossEntropyLoss(reduction="none"), zt, yt), np_ce(z, y),
                               rtol=1e-10)


@pytest.mark.parametrize("normalize", ["classes", "samples"])
def test_weighted_ce(mc_data, normalize):
    z, y, zt, yt = mc_data
    inv = 1.0 / MC_COUNTS
    w = inv / inv.mean() if normalize == "classes" else N_MC / (C * MC_COUNTS)
    loss = WeightedCrossEntropyLoss(MC_COUNTS, normalize=normalize, reduction="none")
    np.testing.assert_allclose(loss.fitted_attributes()["class_weight_"], w, rtol=1e-6)
    np.testing.assert_allclose(run(loss, zt, yt), w[y] * np_ce(z, y), rtol=1e-6)
    if normalize == "classes":
        assert loss.class_weight_.mean().item() == pytest.approx(1.0)
    else:
        assert (w[y_all := np.repeat(np.arange(C), MC_COUNTS.astype(int))]).mean() == \
            pytest.approx(1.0)
        assert len(y_all) == N_MC


@pytest.mark.parametrize("base", ["ce", "focal"])
def test_class_balanced(mc_data, base):
    z, y, zt, yt = mc_data
    beta = 0.999
    w = (1 - beta) / (1 - beta ** MC_COUNTS)
    w = w / w.sum() * C
    loss = ClassBalancedLoss(MC_COUNTS, beta=beta, base=base, gamma=1.5, reduction="none")
    np.testing.assert_allclose(loss.class_weight_.numpy(), w, rtol=1e-6)
    assert loss.class_weight_.sum().item() == pytest.approx(C)
    ref = np_ce(z, y) if base == "ce" else np_focal(z, y, 1.5)
    np.testing.assert_allclose(run(loss, zt, yt), w[y] * ref, rtol=1e-6)


@pytest.mark.parametrize("alpha", [None, 0.25, "balanced", [1.0, 2.0, 3.0, 4.0]])
def test_focal(mc_data, alpha):
    z, y, zt, yt = mc_data
    loss = FocalLoss(gamma=2.0, alpha=alpha, class_counts=MC_COUNTS, reduction="none")
    if alpha == "balanced":
        a = (1 / MC_COUNTS) / (1 / MC_COUNTS).mean()
    elif alpha is None:
        a = None
    else:
        a = np.broadcast_to(np.asarray(alpha, dtype=float), (C,))
    np.testing.assert_allclose(run(loss, zt, yt), np_focal(z, y, 2.0, a), rtol=1e-6)


def test_focal_scalar_alpha_without_counts(mc_data):
    z, y, zt, yt = mc_data
    loss = FocalLoss(gamma=1.0, alpha=0.5, reduction="none")
    np.testing.assert_allclose(run(loss, zt, yt), 0.5 * np_focal(z, y, 1.0), rtol=1e-6)


def test_an_alpha_keyed_by_class_or_not_numeric_is_refused_naming_alpha(backbone_must_not_load, toy_data):
    # a dict (as class_weight takes) failed inside numpy: "float() argument must be ... not 'dict'"
    from skimb import TransformerClassifier

    for cls in (FocalLoss, BinaryFocalLoss):
        with pytest.raises(TypeError, match=rf"^{cls.__name__}: alpha must be .* got a dict; pass \[alpha\[c\] for c"):
            cls(gamma=2.0, alpha={0: 1.0, 1: 2.0}, class_counts=[3, 1])
    with pytest.raises(TypeError, match=r"^AdaptiveFocalLoss: alpha must be a number, 'balanced' or an array of "
                                        r"numbers \(one per class\), got \['a', 'b'\]"):
        AdaptiveFocalLoss([3, 1], alpha=["a", "b"])
    X, y = toy_data
    with pytest.raises(TypeError, match=r"FocalLoss: loss__alpha must be .* got a dict; pass \[loss__alpha\[c\]"):
        TransformerClassifier(loss="focal", loss__alpha={"flood": 0.2, "donation": 0.3, "injury": 0.5}).fit(X, y)


@pytest.mark.parametrize("square", [True, False])
@pytest.mark.parametrize("smooth", [1.0, 1e-4])
def test_dice_and_adl(mc_data, square, smooth):
    z, y, zt, yt = mc_data
    dice = DiceLoss(smooth=smooth, square_denominator=square, reduction="none")
    adl = SelfAdjustingDiceLoss(smooth=smooth, square_denominator=square, reduction="none")
    np.testing.assert_allclose(run(dice, zt, yt), np_dice(z, y, smooth, False, square), rtol=1e-6)
    np.testing.assert_allclose(run(adl, zt, yt), np_dice(z, y, smooth, True, square), rtol=1e-6)


def test_dice_defaults():
    assert DiceLoss().square_denominator and not SelfAdjustingDiceLoss().square_denominator
    # a perfect, confident prediction has (almost) no Dice loss
    z = torch.tensor([[20.0, -20.0, -20.0]])
    assert DiceLoss()(z, torch.tensor([0])).item() < 1e-6


def test_ldam(mc_data):
    z, y, zt, yt = mc_data
    m = MC_COUNTS ** -0.25
    m = m * 0.5 / m.max()
    zm = z.copy()
    zm[np.arange(N), y] -= m[y]
    loss = LDAMLoss(MC_COUNTS, max_m=0.5, s=30.0, reduction="none")
    np.testing.assert_allclose(loss.margin_.numpy(), m, rtol=1e-6)
    assert loss.margin_.max().item() == pytest.approx(0.5)
    np.testing.assert_allclose(run(loss, zt, yt), np_ce(30.0 * zm, y), rtol=1e-6)


def test_ldam_deferred_reweighting(mc_data):
    z, y, zt, yt = mc_data
    beta = 0.9999
    w = (1 - beta) / (1 - beta ** MC_COUNTS)
    w = w / w.sum() * C
    loss = LDAMLoss(MC_COUNTS, s=1.0, drw_epoch=3, reduction="none").double()
    before = loss(zt, yt).detach().numpy()
    for epoch in range(3):
        loss.set_epoch(epoch, 5)
        np.testing.assert_array_equal(loss.class_weight_.numpy(), np.ones(C))
    loss.set_epoch(3, 5)
    np.testing.assert_allclose(loss.fitted_attributes()["class_weight_"], w, rtol=1e-6)
    np.testing.assert_allclose(loss(zt, yt).detach().numpy(), w[y] * before, rtol=1e-6)
    loss.set_epoch(0, 5)  # going back (e.g. a refit) restores the unit weights
    np.testing.assert_array_equal(loss.class_weight_.numpy(), np.ones(C))
    frac = LDAMLoss(MC_COUNTS, drw_epoch=0.8)
    frac.set_epoch(7, 10)
    assert frac.class_weight_[0].item() == 1.0
    frac.set_epoch(8, 10)
    assert frac.class_weight_[0].item() != 1.0
    with pytest.raises(ValueError, match="max_epochs"):
        frac.set_epoch(8)
    no_drw = LDAMLoss(MC_COUNTS)
    no_drw.set_epoch(100, 100)
    np.testing.assert_array_equal(no_drw.class_weight_.numpy(), np.ones(C))
    for bad in (-1, 1.5, "3", True):
        with pytest.raises((TypeError, ValueError)):
            LDAMLoss(MC_COUNTS, drw_epoch=bad)


def test_class_balanced_deferred_reweighting(mc_data):
    """CE-DRW: plain cross-entropy until drw_epoch, the effective-number weights from it."""
    _, _, zt, yt = mc_data
    always = ClassBalancedLoss(MC_COUNTS, beta=0.9999, reduction="none").double()
    drw = ClassBalancedLoss(MC_COUNTS, beta=0.9999, drw_epoch=2, reduction="none").double()
    plain = CrossEntropyLoss(reduction="none").double()
    for epoch in (0, 1):
        drw.set_epoch(epoch, 3)
        assert_close(drw(zt, yt), plain(zt, yt))
    drw.set_epoch(2, 3)
    assert_close(drw(zt, yt), always(zt, yt))
    np.testing.assert_array_equal(drw.fitted_attributes()["class_weight_"], always.fitted_attributes()["class_weight_"])
    drw.set_epoch(0, 3)  # a refit starts unweighted again
    np.testing.assert_array_equal(drw.class_weight_.numpy(), np.ones(C))
    always.set_epoch(0, 3)  # no schedule: weighted from the first epoch
    assert always.class_weight_[0].item() != 1.0


def test_class_balanced_drw_is_ldam_without_margins(mc_data):
    """CE-DRW two ways (round 33 ran its quality.py fits as LDAM with no margins and unit scale)."""
    _, _, zt, yt = mc_data
    cb = ClassBalancedLoss(MC_COUNTS, beta=0.9999, drw_epoch=2, reduction="none").double()
    ldam = LDAMLoss(MC_COUNTS, max_m=0.0, s=1.0, drw_epoch=2, reduction="none").double()
    for epoch in range(3):
        cb.set_epoch(epoch, 3)
        ldam.set_epoch(epoch, 3)
        torch.testing.assert_close(cb(zt, yt), ldam(zt, yt), rtol=0, atol=0)


@pytest.mark.parametrize("drw_epoch, max_epochs, start", [(0.8, 3, 2), (0.8, 10, 8), (0.9, 2, 1), (0.3, 1, 0),
                                                          (0.5, 3, 2), (1, 3, 1), (5, 3, 5)])
def test_drw_start(drw_epoch, max_epochs, start):
    """A fraction is rounded and kept inside training (a short fit re-weights its last epoch);
    an epoch number is taken as given."""
    for loss in (ClassBalancedLoss(MC_COUNTS, drw_epoch=drw_epoch), LDAMLoss(MC_COUNTS, drw_epoch=drw_epoch)):
        assert loss.drw_start(max_epochs) == start
    assert ClassBalancedLoss(MC_COUNTS).drw_start(3) is None


def test_schedule_warning_says_when_drw_never_starts():
    assert ClassBalancedLoss.schedule_warning(3, drw_epoch=3).startswith("drw_epoch=3 starts after the last of 3")
    assert LDAMLoss.schedule_warning(3, drw_epoch=2) is None and LDAMLoss.schedule_warning(1, drw_epoch=0.8) is None
    assert ClassBalancedLoss.schedule_warning(3) is None and CrossEntropyLoss.schedule_warning(3, gamma=2.0) is None
    assert loss_schedule_warning("class_balanced", task="multiclass", n_epochs=2, loss__drw_epoch=2, gamma=1.0)
    assert loss_schedule_warning(CrossEntropyLoss(), task="multiclass", n_epochs=2) is None  # a module: nothing known
    for bad in (1.5, "2", True):
        with pytest.raises((TypeError, ValueError), match="drw_epoch"):
            loss_schedule_warning("class_balanced", task="multiclass", n_epochs=3, loss__drw_epoch=bad)


@pytest.mark.parametrize("name, cls, unscheduled", [("class_balanced", ClassBalancedLoss, "re-weights every epoch"),
                                                     ("ldam", LDAMLoss, "does not re-weight")])
def test_schedule_warning_says_when_drw_defers_nothing(name, cls, unscheduled):
    """drw_epoch=0, or a fraction that rounds to epoch 0, re-weights from the first epoch: no deferral."""
    for n_epochs, drw_epoch in ((3, 0), (3, 0.1), (5, 0.1), (1, 0)):
        message = cls.schedule_warning(n_epochs, drw_epoch=drw_epoch)
        assert message is not None and "re-weights from the first epoch: nothing is deferred" in message, drw_epoch
        assert "such as 1" in message and f"drw_epoch=None {unscheduled}" in message
        assert cls(MC_COUNTS, drw_epoch=drw_epoch).drw_start(n_epochs) == 0  # as the warning says
    assert "0.1 of 3 epochs rounds to epoch 0" in cls.schedule_warning(3, drw_epoch=0.1)
    for n_epochs, drw_epoch in ((3, 1), (3, 0.2), (10, 0.8), (1, 0.8), (1, 0.3)):  # one epoch: nothing to defer
        assert cls.schedule_warning(n_epochs, drw_epoch=drw_epoch) is None, (n_epochs, drw_epoch)
    assert loss_schedule_warning(name, task="multiclass", n_epochs=3, loss__drw_epoch=0.1).startswith(
        "drw_epoch=0.1 of 3 epochs")


def test_a_float_drw_epoch_above_one_says_an_integer_epoch_is_accepted():
    for bad, epoch in ((2.0, 2), (1.5, 2), (3.0, 3)):
        with pytest.raises(ValueError, match=rf"got {bad}; an epoch number is an integer: drw_epoch={epoch} starts"):
            ClassBalancedLoss(MC_COUNTS, drw_epoch=bad)


@pytest.mark.parametrize("tau", [0.0, 1.0, 0.5])
def test_logit_adjusted(mc_data, tau):
    z, y, zt, yt = mc_data
    adj = tau * np.log(MC_COUNTS / MC_COUNTS.sum())
    loss = LogitAdjustedLoss(MC_COUNTS, tau=tau, reduction="none")
    np.testing.assert_allclose(loss.logit_adjustment_.numpy(), adj, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(run(loss, zt, yt), np_ce(z + adj, y), rtol=1e-6)


def test_afl_multiclass(mc_data):
    z, y, zt, yt = mc_data
    g = np.minimum(1.0 / (MC_COUNTS / MC_COUNTS.max()), 10.0)  # gamma=1
    alpha = np.array([1.0, 2.0, 3.0, 4.0])
    loss = AdaptiveFocalLoss(MC_COUNTS, gamma=1.0, max_gamma=10.0, alpha=alpha, reduction="none")
    np.testing.assert_allclose(loss.gamma_.numpy(), g, rtol=1e-6)
    np.testing.assert_allclose(run(loss, zt, yt), np_focal(z, y, g, alpha), rtol=1e-6)


def np_soft_ordinal(z, y, sharpness, grades):
    q = np.exp(-sharpness * (grades[None, :] - grades[y][:, None]) ** 2)
    q /= q.sum(axis=1, keepdims=True)
    return (q * (np.log(q) - np_log_softmax(z))).sum(axis=1)


@pytest.mark.parametrize("sharpness, grades", [(2.0, None), (0.5, None), (1.0, [0.0, 1.0, 3.0, 7.0]),
                                               (2.0, [3, 1, 0, 2])])
def test_soft_ordinal(mc_data, sharpness, grades):
    z, y, zt, yt = mc_data
    loss = SoftOrdinalLoss(sharpness=sharpness, grades=grades, reduction="none")
    expected_grades = np.arange(C, dtype=float) if grades is None else np.asarray(grades, dtype=float)
    np.testing.assert_allclose(run(loss, zt, yt), np_soft_ordinal(z, y, sharpness, expected_grades), rtol=1e-10)


def test_soft_ordinal_charges_by_distance_and_sharpens_into_cross_entropy(mc_data):
    z, y, zt, yt = mc_data
    confident = torch.full((C, C), -4.0, dtype=torch.float64).fill_diagonal_(4.0)  # row k predicts grade k
    costs = run(SoftOrdinalLoss(reduction="none"), confident, torch.zeros(C, dtype=torch.long))
    assert costs[0] < costs[1] < costs[2] < costs[3]
    # cross-entropy charges every wrong grade alike
    np.testing.assert_allclose(np.diff(np_ce(confident.numpy(), np.zeros(C, dtype=int))[1:]), 0.0, atol=1e-12)
    for sharpness in (60.0, 1e39):  # 1e39 overflows float32: the far grades' target mass is exactly 0
        np.testing.assert_allclose(run(SoftOrdinalLoss(sharpness=sharpness, reduction="none"), zt, yt), np_ce(z, y),
                                   rtol=1e-10)
        single = SoftOrdinalLoss(sharpness=sharpness, reduction="none")(zt.float(), yt)
        np.testing.assert_allclose(single.numpy(), np_ce(z, y), rtol=1e-5)
    soft_target = torch.softmax(-2.0 * (torch.arange(C, dtype=torch.float64) - 1.0) ** 2, 0)
    assert run(SoftOrdinalLoss(reduction="none"), soft_target.log()[None], torch.tensor([1]))[0] == \
        pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("kwargs, message", [
    (dict(sharpness=0.0), "sharpness must be a finite number > 0"),
    (dict(sharpness=-1.0), "sharpness must be a finite number > 0"),
    (dict(sharpness=float("inf")), "sharpness must be a finite number > 0"),
    (dict(sharpness="2"), "sharpness must be a finite number > 0"),
    (dict(grades=[0, 1, 2, 1e39]), "at least two finite numbers"),  # beyond float32: inf, and a NaN loss
    (dict(grades=[0, 1, 1, 2]), "grades must be distinct"),
    (dict(grades=[0, 1, np.nan]), "at least two finite numbers"),
    (dict(grades=["low", "high"]), "at least two finite numbers"),
    (dict(grades=[0, 1, 2], class_counts=[5, 4, 3, 2]), "grades has 3 entries but there are 4 classes"),
])
def test_soft_ordinal_refuses_bad_parameters(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SoftOrdinalLoss(**kwargs)


def test_soft_ordinal_refuses_grades_of_another_length(mc_data):
    z, y, zt, yt = mc_data
    with pytest.raises(ValueError, match="logits have 4 classes but the loss was built for 3"):
        SoftOrdinalLoss(grades=[0, 1, 2])(zt, yt)


def test_bce(ml_data):
    z, y, zt, yt = ml_data
    np.testing.assert_allclose(run(BinaryCrossEntropyLoss(reduction="none"), zt, yt),
                               np_bce_elem(z, y).mean(axis=1), rtol=1e-10)


@pytest.mark.parametrize("cap", [100.0, 10.0, 3.0, None])
def test_weighted_bce(ml_data, cap):
    z, y, zt, yt = ml_data
    pw = (N_ML - ML_COUNTS) / ML_COUNTS
    if cap is not None:
        pw = np.minimum(pw, cap)
    p = np_sigmoid(z)
    ref = -(pw * y * np.log(p) + (1 - y) * np.log(1 - p)).mean(axis=1)
    loss = WeightedBinaryCrossEntropyLoss(ML_COUNTS, N_ML, max_pos_weight=cap, reduction="none")
    np.testing.assert_allclose(loss.pos_weight_.numpy(), pw, rtol=1e-6)
    np.testing.assert_allclose(run(loss, zt, yt), ref, rtol=1e-6)


def test_weighted_bce_explicit_and_edge_counts():
    loss = WeightedBinaryCrossEntropyLoss(pos_weight=[1.0, 3.0])
    np.testing.assert_array_equal(loss.pos_weight_.numpy(), [1.0, 3.0])
    edge = WeightedBinaryCrossEntropyLoss([0, 10, 10], n_samples=10, max_pos_weight=None)
    # zero positives count as one (10 negatives / 1); every example positive -> 1/10, never 0
    np.testing.assert_allclose(edge.pos_weight_.numpy(), [10.0, 0.1, 0.1], rtol=1e-6)
    # by default the weights are capped at 3 (round 26: the full ratio over-predicts rare labels)
    np.testing.assert_allclose(WeightedBinaryCrossEntropyLoss([0, 10, 10], n_samples=10).pos_weight_.numpy(),
                               [3.0, 0.1, 0.1], rtol=1e-6)
    with pytest.raises(ValueError, match="n_samples"):
        WeightedBinaryCrossEntropyLoss([1, 2])
    with pytest.raises(ValueError, match="smaller than the largest"):
        WeightedBinaryCrossEntropyLoss([1, 20], n_samples=10)


@pytest.mark.parametrize("alpha", [None, "balanced", [0.5, 1.0, 1.5, 2.0]])
def test_focal_bce(ml_data, alpha):
    z, y, zt, yt = ml_data
    loss = BinaryFocalLoss(gamma=2.0, alpha=alpha, class_counts=ML_COUNTS, reduction="none")
    if alpha is None:
        a = np.ones(C)
    elif alpha == "balanced":
        a = (1 / ML_COUNTS) / (1 / ML_COUNTS).mean()
    else:
        a = np.asarray(alpha)
    ref = (a * np_focal_bce_elem(z, y, 2.0)).mean(axis=1)
    np.testing.assert_allclose(run(loss, zt, yt), ref, rtol=1e-6)


def test_distribution_balanced(ml_data):
    z, y, zt, yt = ml_data
    loss = DistributionBalancedLoss(ML_COUNTS, N_ML, reduction="none")
    ref = np_distribution_balanced(z, y, ML_COUNTS, N_ML)
    np.testing.assert_allclose(run(loss, zt, yt), ref, rtol=1e-6)
    np.testing.assert_allclose(loss.logit_bias_.numpy(),
                               -np.log(N_ML / ML_COUNTS - 1) * 0.05 / 2.0, rtol=1e-6)
    # by hand: example 0 has no positive label, so every label is a negative with
    # rebalance weight map_alpha + 1 = 1.1, NTR scale 2 and focal balance 2
    elems = []
    for c in range(C):
        s = 2.0 * (z[0, c] + loss.logit_bias_[c].item())  # neg_scale * (z + b)
        bce = np.log1p(np.exp(s))  # -log(1 - sigmoid(s))
        elems.append(2.0 * (1 - np.exp(-bce)) ** 2 * (1.1 / 2.0) * bce)
    assert run(loss, zt, yt)[0] == pytest.approx(np.mean(elems), rel=1e-6)
    no_focal = DistributionBalancedLoss(ML_COUNTS, N_ML, focal=False, reduction="none")
    ref = np.mean([(1.1 / 2.0) * np.log1p(np.exp(2.0 * (z[0, c] + loss.logit_bias_[c].item())))
                   for c in range(C)])
    assert run(no_focal, zt, yt)[0] == pytest.approx(ref, rel=1e-6)


def test_distribution_balanced_params(ml_data):
    z, y, zt, yt = ml_data
    kw = dict(gamma=1.0, balance=1.0, neg_scale=5.0, init_bias=0.1, map_alpha=0.2,
              map_beta=5.0, map_mu=0.1)
    loss = DistributionBalancedLoss(ML_COUNTS, N_ML, reduction="none", **kw)
    ref = np_distribution_balanced(z, y, ML_COUNTS, N_ML, gamma=1.0, balance=1.0, lam=5.0,
                                   kappa=0.1, a=0.2, b=5.0, mu=0.1)
    np.testing.assert_allclose(run(loss, zt, yt), ref, rtol=1e-6)


def test_afl_multilabel(ml_data):
    z, y, zt, yt = ml_data
    f = ML_COUNTS / N_ML
    g = np.minimum(2.0 / (f / f.max()), 10.0)
    loss = BinaryAdaptiveFocalLoss(ML_COUNTS, gamma=2.0, max_gamma=10.0, reduction="none")
    np.testing.assert_allclose(loss.gamma_.numpy(), g, rtol=1e-6)
    assert loss.gamma_[0].item() == 2.0 and loss.gamma_.max().item() == 10.0
    np.testing.assert_array_equal(loss.alpha_.numpy(), np.ones(C))
    ref = np.mean([np_focal_bce_elem(z[:, c], y[:, c], g[c]) for c in range(C)], axis=0)
    np.testing.assert_allclose(run(loss, zt, yt), ref, rtol=1e-6)
    bal = BinaryAdaptiveFocalLoss(ML_COUNTS, alpha="balanced", reduction="none")
    a = (1 / ML_COUNTS) / (1 / ML_COUNTS).mean()
    ref = np.mean([a[c] * np_focal_bce_elem(z[:, c], y[:, c], g[c]) for c in range(C)], axis=0)
    np.testing.assert_allclose(run(bal, zt, yt), ref, rtol=1e-6)


# ---------------------------------------------------------------- reductions to the plain loss
def test_zero_gamma_is_cross_entropy(mc_data, ml_data):
    _, _, zt, yt = mc_data
    ce = CrossEntropyLoss(reduction="none")(zt, yt)
    assert_close(FocalLoss(gamma=0.0, reduction="none")(zt, yt), ce, rtol=0, atol=0)
    afl = AdaptiveFocalLoss(MC_COUNTS, gamma=0.0, reduction="none")
    np.testing.assert_array_equal(afl.gamma_.numpy(), np.zeros(C))
    assert_close(afl(zt, yt), ce)
    cb = ClassBalancedLoss(np.full(C, 7), base="focal", gamma=0.0, reduction="none")
    assert_close(cb(zt, yt), ce)

    _, _, zt, yt = ml_data
    bce = BinaryCrossEntropyLoss(reduction="none")(zt, yt)
    assert_close(BinaryFocalLoss(gamma=0.0, reduction="none")(zt, yt), bce)
    assert_close(
        BinaryAdaptiveFocalLoss(ML_COUNTS, gamma=0.0, reduction="none")(zt, yt), bce)
    assert_close(
        torch.nn.functional.binary_cross_entropy_with_logits(zt, yt, reduction="none").mean(1),
        bce)


def test_uniform_weights_are_cross_entropy(mc_data, ml_data):
    _, _, zt, yt = mc_data
    ce = CrossEntropyLoss(reduction="none")(zt, yt)
    uniform = np.full(C, 25)
    for loss in (WeightedCrossEntropyLoss(uniform), ClassBalancedLoss(uniform),
                 ClassBalancedLoss(MC_COUNTS, beta=0.0), LogitAdjustedLoss(uniform),
                 LogitAdjustedLoss(MC_COUNTS, tau=0.0), LDAMLoss(MC_COUNTS, max_m=0.0, s=1.0),
                 FocalLoss(gamma=0.0, alpha=np.ones(C)),
                 WeightedCrossEntropyLoss(class_weight=np.ones(C))):
        loss.reduction = "none"
        assert_close(loss(zt, yt), ce, msg=repr(loss))
    assert_close(
        ce, torch.nn.functional.cross_entropy(zt, yt, reduction="none"))

    _, _, zt, yt = ml_data
    bce = BinaryCrossEntropyLoss(reduction="none")(zt, yt)
    assert_close(
        WeightedBinaryCrossEntropyLoss(pos_weight=np.ones(C), reduction="none")(zt, yt), bce)
    assert_close(
        WeightedBinaryCrossEntropyLoss(np.full(C, 50), 100, reduction="none")(zt, yt), bce)


@pytest.mark.parametrize("balanced, neutral", [
    (WeightedCrossEntropyLoss(MC_COUNTS), CrossEntropyLoss()),
    (WeightedCrossEntropyLoss(MC_COUNTS, normalize="samples"), CrossEntropyLoss()),
    (ClassBalancedLoss(MC_COUNTS), CrossEntropyLoss()),
    (ClassBalancedLoss(MC_COUNTS, base="focal", gamma=1.5), FocalLoss(gamma=1.5)),
    (ClassBalancedLoss(MC_COUNTS, drw_epoch=1), CrossEntropyLoss()),
    (FocalLoss(gamma=2.0, alpha="balanced", class_counts=MC_COUNTS), FocalLoss(gamma=2.0)),
    (FocalLoss(gamma=2.0, alpha=0.25), FocalLoss(gamma=2.0, alpha=0.25)),  # no class balance: kept
    (AdaptiveFocalLoss(MC_COUNTS, gamma=1.0, alpha="balanced"), FocalLoss(gamma=1.0)),
    (AdaptiveFocalLoss(MC_COUNTS, gamma=1.0), FocalLoss(gamma=1.0)),
    (LogitAdjustedLoss(MC_COUNTS, tau=1.0), CrossEntropyLoss()),
    (LDAMLoss(MC_COUNTS, s=2.0, drw_epoch=0), LDAMLoss(MC_COUNTS, max_m=0.0, s=2.0)),
    (CrossEntropyLoss(), CrossEntropyLoss()),
    (DiceLoss(), DiceLoss()),
], ids=lambda loss: type(loss).__name__)
def test_without_class_balance_is_the_unbalanced_loss(mc_data, balanced, neutral):
    """A second stage that balances by its rows trains with the loss minus its own balancing."""
    _, _, zt, yt = mc_data
    balanced.set_epoch(1, 2)  # LDAM: the deferred re-weighting is on
    before = {k: v.clone() for k, v in balanced.named_buffers()}
    dropped = balanced.without_class_balance()
    for loss in (balanced, dropped, neutral):
        loss.reduction = "none"
    assert dropped is not balanced
    assert_close(dropped(zt, yt), neutral(zt, yt), msg=repr(balanced))
    for name, value in balanced.named_buffers():  # the original is left as it was
        assert torch.equal(value, before[name]), name
    dropped.set_epoch(1, 2)  # LDAM's schedule keeps the copy unweighted
    assert_close(dropped(zt, yt), neutral(zt, yt), msg=repr(balanced))
    kept = type(balanced) in (CrossEntropyLoss, DiceLoss) or getattr(balanced, "alpha_", torch.ones(C)).ndim == 0
    assert np.allclose(balanced(zt, yt).numpy(), dropped(zt, yt).numpy()) == kept  # the case tests something


def test_without_class_balance_of_multilabel_losses(ml_data):
    """Per-label weights of both terms are dropped; positive-against-negative weights are not
    class balancing (row weights cannot do their work) and stay."""
    _, _, zt, yt = ml_data
    focal = BinaryFocalLoss(gamma=2.0, alpha="balanced", class_counts=ML_COUNTS, reduction="none")
    assert_close(focal.without_class_balance()(zt, yt), BinaryFocalLoss(gamma=2.0, reduction="none")(zt, yt))
    afl = BinaryAdaptiveFocalLoss(ML_COUNTS, gamma=1.5, alpha="balanced", reduction="none")
    assert_close(afl.without_class_balance()(zt, yt), BinaryFocalLoss(gamma=1.5, reduction="none")(zt, yt))
    weighted = WeightedBinaryCrossEntropyLoss(ML_COUNTS, 100, reduction="none")
    assert_close(weighted.without_class_balance()(zt, yt), weighted(zt, yt))
    db = DistributionBalancedLoss(ML_COUNTS, N_ML, reduction="none")
    neutral = db.without_class_balance()
    z, y = zt.numpy(), yt.numpy()
    np.testing.assert_allclose(neutral(zt, yt).numpy(), np_ntr_focal(z, y), rtol=1e-6)
    assert not np.allclose(neutral(zt, yt).numpy(), db(zt, yt).numpy())  # the case tests something
    np.testing.assert_allclose(db(zt, yt).numpy(), np_distribution_balanced(z, y, ML_COUNTS, N_ML), rtol=1e-6)
    assert db.rebalance_weights and db.logit_bias_.abs().sum() > 0  # the original is untouched
    restored = pickle.loads(pickle.dumps(neutral))  # the flag travels with the copy
    np.testing.assert_allclose(restored(zt, yt).numpy(), np_ntr_focal(z, y), rtol=1e-6)


def test_without_class_balance_warns_for_a_rebalancing_loss_that_cannot_undo_it(mc_data):
    _, _, zt, yt = mc_data

    class Boosted(ImbalanceLoss):
        rebalances = True

        def _per_sample(self, logits, target):
            return 2.0 * torch.nn.functional.cross_entropy(logits, target, reduction="none")

    with pytest.warns(UserWarning, match="balances them a second time"):
        copy_ = Boosted(reduction="none").without_class_balance()
    assert_close(copy_(zt, yt), Boosted(reduction="none")(zt, yt))


def test_losses_that_focus():
    """CALoRA's stage 2 reads it: a balancing under a focal term is partly given back."""
    from skimb.losses import loss_focuses

    assert loss_focuses("focal", task="multiclass") and loss_focuses("afl", task="multiclass", loss__alpha="balanced")
    assert not loss_focuses("focal", task="multiclass", gamma=0.0)
    assert loss_focuses("class_balanced", task="multiclass", loss__base="focal")
    assert not loss_focuses("class_balanced", task="multiclass")
    assert not any(loss_focuses(name, task="multiclass") for name in ("ce", "weighted_ce", "ldam", "logit_adjusted"))
    assert loss_focuses("focal", task="multilabel") and loss_focuses("distribution_balanced", task="multilabel")
    assert not loss_focuses("distribution_balanced", task="multilabel", loss__focal=False)
    assert not loss_focuses(torch.nn.CrossEntropyLoss(), task="multiclass")  # a user module: nothing known
    assert not loss_focuses("focal", task="multiclass", loss__gamma=None)  # make_loss says what is wrong


def test_gamma_non_increasing_in_frequency():
    rng = np.random.default_rng(3)
    counts = rng.integers(0, 1000, size=30).astype(float)
    order = np.argsort(counts)  # increasing frequency
    for cls in (AdaptiveFocalLoss, BinaryAdaptiveFocalLoss):
        for gamma, cap in ((2.0, 10.0), (0.5, None), (1.0, 3.0)):
            g = cls(counts, gamma=gamma, max_gamma=cap).fitted_attributes()["gamma_"]
            assert np.all(np.diff(g[order]) <= 1e-12)
            assert g[np.argmax(counts)] == pytest.approx(min(gamma, cap or np.inf))
            assert np.isfinite(g).all() and (cap is None or g.max() <= cap)


# ---------------------------------------------------------------- numerical safety
def _all_losses():
    mc = [(name, cls) for name, cls in LOSSES["multiclass"].items()]
    ml = [(name, cls) for name, cls in LOSSES["multilabel"].items()]
    return [("multiclass", n) for n, _ in mc] + [("multilabel", n) for n, _ in ml]


@pytest.mark.parametrize("task,name", _all_losses())
def test_extreme_logits_finite(task, name):
    counts = MC_COUNTS if task == "multiclass" else ML_COUNTS
    n = N_MC if task == "multiclass" else N_ML
    extra = {"loss__drw_epoch": 0} if name in ("ldam", "class_balanced") else {}
    loss = make_loss(name, task=task, class_counts=counts, n_samples=n, **extra)
    loss.set_epoch(0, 2)
    g = torch.Generator().manual_seed(0)
    signs = torch.randint(0, 2, (8, C), generator=g).float() * 2 - 1
    logits = (1e4 * signs).requires_grad_(True)
    if task == "multiclass":
        target = torch.randint(0, C, (8,), generator=g)
        target[0] = int(torch.argmax(logits[0]))  # confidently right
        target[1] = int(torch.argmin(logits[1]))  # confidently wrong
    else:
        target = (torch.rand(8, C, generator=g) < 0.5).float()
        target[0] = (signs[0] > 0).float()
        target[1] = (signs[1] < 0).float()
    out = loss(logits, target)
    assert out.shape == (8,)
    assert torch.isfinite(out).all(), out
    out.sum().backward()
    assert torch.isfinite(logits.grad).all(), logits.grad
    # also in half precision input (upcast internally)
    out16 = loss(logits.detach().half(), target)
    assert out16.dtype == torch.float32 and torch.isfinite(out16).all()


@pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0])
def test_fractional_gamma_gradients_finite(gamma):
    logits = torch.tensor([[1e4, -1e4, 0.0], [50.0, 0.0, 0.0]], requires_grad=True)
    target = torch.tensor([0, 0])
    FocalLoss(gamma=gamma)(logits, target).backward()
    assert torch.isfinite(logits.grad).all()
    z = torch.tensor([[1e4, -1e4, 30.0]], requires_grad=True)
    BinaryFocalLoss(gamma=gamma)(z, torch.tensor([[1.0, 0.0, 1.0]])).backward()
    assert torch.isfinite(z.grad).all()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("loss", [FocalLoss(gamma=2.0), FocalLoss(gamma=0.5), AdaptiveFocalLoss([10, 5, 1]),
                                  AdaptiveFocalLoss([10, 5, 1], gamma=0.0), ClassBalancedLoss([10, 5, 1], base="focal")],
                         ids=["focal2", "focal0.5", "afl", "afl_gamma0", "cb_focal"])
def test_focal_losses_are_finite_where_other_classes_are_masked(loss, dtype):
    """Other classes' logits at -inf (masking): the loss and its gradients are those of the classes left, as
    F.cross_entropy gives; the masked logits get a zero gradient, not NaN (nor AFL at gamma 0 a NaN loss)."""
    loss = copy.deepcopy(loss).to(dtype)
    loss.reduction = "none"
    inf = float("inf")
    masked = torch.tensor([[0.0, -inf, -inf], [1.0, 2.0, -inf]], dtype=dtype, requires_grad=True)
    target = torch.tensor([0, 1])
    out = loss(masked, target)
    out.sum().backward()
    assert torch.isfinite(out).all() and torch.isfinite(masked.grad).all(), (out, masked.grad)
    assert out[0].item() == 0.0 and torch.all(masked.grad[0] == 0) and masked.grad[1, 2] == 0  # p_t = 1: nothing
    # row 1 is the loss on the two classes left (a third class far below: its share underflows to 0)
    far = torch.tensor([[1.0, 2.0, -1e4]], dtype=dtype, requires_grad=True)
    reference = loss(far, target[1:])
    reference.sum().backward()
    assert out[1].item() == pytest.approx(reference.item(), rel=1e-6)
    np.testing.assert_allclose(masked.grad[1].numpy(), far.grad[0].numpy(), rtol=1e-6, atol=1e-12)
    if float(getattr(loss, "gamma", 1.0)) == 0.0:  # AFL at gamma 0: exactly cross-entropy
        z = masked.detach().clone().requires_grad_(True)
        ce = torch.nn.functional.cross_entropy(z, target, reduction="none")
        assert torch.equal(out.detach(), ce.detach())


# ---------------------------------------------------------------- reductions / validation
@pytest.mark.parametrize("task,name", _all_losses())
def test_reductions(task, name, mc_data, ml_data):
    counts = MC_COUNTS if task == "multiclass" else ML_COUNTS
    _, _, zt, yt = mc_data if task == "multiclass" else ml_data
    loss = make_loss(name, task=task, class_counts=counts, n_samples=N_MC if task ==
                     "multiclass" else N_ML).double()
    none = loss(zt, yt)
    assert none.shape == (N,)
    assert_close(loss.per_sample(zt, yt), none)
    loss.reduction = "mean"
    assert_close(loss(zt, yt), none.mean())
    loss.reduction = "sum"
    assert_close(loss(zt, yt), none.sum())
    loss.reduction = "max"
    with pytest.raises(ValueError, match="reduction"):
        loss(zt, yt)


@pytest.mark.parametrize("task,name", _all_losses())
def test_the_mean_of_an_empty_batch_is_zero(task, name):
    """Multi-label as multi-class: ``"mean"`` over no examples is 0, not NaN (sum over max(count, 1))."""
    counts = MC_COUNTS if task == "multiclass" else ML_COUNTS
    loss = make_loss(name, task=task, class_counts=counts, n_samples=N_MC if task == "multiclass" else N_ML)
    loss.reduction = "mean"
    logits = torch.zeros(0, C, requires_grad=True)
    target = torch.zeros(0, dtype=torch.long) if task == "multiclass" else torch.zeros(0, C)
    out = loss(logits, target)
    assert out.shape == () and out.item() == 0.0
    out.backward()
    assert logits.grad.shape == (0, C)


def test_standalone_default_reduction_is_mean(mc_data):
    _, _, zt, yt = mc_data
    out = FocalLoss()(zt, yt)
    assert out.ndim == 0
    with pytest.raises(ValueError, match="reduction"):
        CrossEntropyLoss(reduction="average")


def test_ignore_index(mc_data):
    _, _, zt, yt = mc_data
    target = yt.clone()
    target[1] = -100
    loss = FocalLoss(reduction="none")
    full = loss(zt, yt)
    out = loss(zt, target)
    assert out[1] == 0
    assert_close(out[[0, 2, 3, 4, 5]], full[[0, 2, 3, 4, 5]])
    loss.reduction = "mean"
    assert_close(loss(zt, target), full[[0, 2, 3, 4, 5]].mean())


def test_input_validation():
    loss = WeightedCrossEntropyLoss([3, 2, 1])
    with pytest.raises(ValueError, match="built for 3"):
        loss(torch.zeros(2, 4), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="shape"):
        loss(torch.zeros(2, 3), torch.tensor([[0], [1]]))
    with pytest.raises(TypeError, match="integer"):
        loss(torch.zeros(2, 3), torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match="shape"):
        BinaryCrossEntropyLoss()(torch.zeros(2, 3), torch.zeros(2, 2))
    with pytest.raises(ValueError, match=r"targets must lie in \[0, 1\].*from -1 to 2"):  # a negative loss
        BinaryCrossEntropyLoss()(torch.tensor([[3.0, -3.0]]), torch.tensor([[2.0, -1.0]]))
    assert BinaryCrossEntropyLoss()(torch.zeros(1, 2), torch.tensor([[0.2, 1.0]])) > 0  # soft targets pass
    with pytest.raises(ValueError, match="class_counts"):
        WeightedCrossEntropyLoss()
    with pytest.raises(ValueError, match="non-negative"):
        AdaptiveFocalLoss([3, -1])
    with pytest.raises(ValueError, match="entries"):
        FocalLoss(alpha=[1.0, 2.0], class_counts=[1, 2, 3])
    with pytest.raises(ValueError, match="balanced"):
        FocalLoss(alpha="balanced")
    with pytest.raises(ValueError, match="beta"):
        ClassBalancedLoss([1, 2], beta=1.0)
    with pytest.raises(ValueError, match="gamma"):
        FocalLoss(gamma=-1.0)
    # int32 targets are accepted
    assert torch.isfinite(loss(torch.zeros(2, 3), torch.tensor([0, 2], dtype=torch.int32)))


def test_zero_count_classes_are_finite():
    counts = [50, 0, 3]
    for loss in (WeightedCrossEntropyLoss(counts), ClassBalancedLoss(counts), LDAMLoss(counts),
                 LogitAdjustedLoss(counts), AdaptiveFocalLoss(counts)):
        for v in loss.fitted_attributes().values():
            assert np.isfinite(v).all()
        assert torch.isfinite(loss(torch.randn(4, 3), torch.tensor([0, 1, 2, 1])))
    for loss in (BinaryAdaptiveFocalLoss(counts), DistributionBalancedLoss(counts, 50),
                 WeightedBinaryCrossEntropyLoss(counts, 50)):
        for v in loss.fitted_attributes().values():
            assert np.isfinite(v).all()
        assert torch.isfinite(loss(torch.randn(4, 3), torch.ones(4, 3)))


# ---------------------------------------------------------------- make_loss
class UserLoss(nn.Module):
    def __init__(self):
        super().__init__()
        self.reduction = "mean"

    def forward(self, logits, target):
        losses = nn.functional.cross_entropy(logits, target, reduction="none")
        return losses if self.reduction == "none" else losses.mean()


class NoReduction(nn.Module):
    def forward(self, logits, target):
        return nn.functional.cross_entropy(logits, target, reduction="none")


def test_make_loss_user_module_deep_copied(mc_data):
    _, _, zt, yt = mc_data
    user = UserLoss()
    user.register_buffer("w", torch.ones(3))
    with pytest.warns(UserWarning, match="the loss instance UserLoss takes no parameters here; gamma ignored"):
        built = make_loss(user, task="multiclass", class_counts=MC_COUNTS, n_samples=N_MC, gamma=2.0)
    assert built is not user and built.w is not user.w
    assert built.reduction == "none" and user.reduction == "mean"
    assert built(zt, yt).shape == (N,)
    other = make_loss(NoReduction(), task="multiclass", class_counts=MC_COUNTS)
    assert not hasattr(other, "reduction") and other(zt, yt).shape == (N,)
    focal = FocalLoss(gamma=1.0)
    built = make_loss(focal, task="multiclass")
    assert focal.reduction == "mean" and built.reduction == "none" and built.gamma == 1.0
    with pytest.raises(TypeError, match="named losses"):
        make_loss(user, task="multiclass", loss__smooth=1.0)
    with pytest.raises(ValueError, match="FocalLoss is a multiclass loss, not a multilabel one"):
        make_loss(focal, task="multilabel")  # as for the class: not first at training


def test_make_loss_names_and_aliases():
    assert available_losses("multiclass") == sorted(
        ["ce", "weighted_ce", "class_balanced", "focal", "dice", "self_adjusting_dice", "ldam",
         "logit_adjusted", "afl", "ranking", "ordinal"])
    assert available_losses("multilabel") == sorted(
        ["bce", "ce", "weighted_bce", "weighted_ce", "focal_bce", "focal",
         "distribution_balanced", "afl"])
    kw = dict(class_counts=ML_COUNTS, n_samples=N_ML)
    assert type(make_loss("ce", task="multiclass", **kw)) is CrossEntropyLoss
    assert type(make_loss("ce", task="multilabel", **kw)) is BinaryCrossEntropyLoss
    assert type(make_loss("weighted_ce", task="multilabel", **kw)) is \
        WeightedBinaryCrossEntropyLoss
    assert type(make_loss("focal", task="multilabel", **kw)) is BinaryFocalLoss
    assert type(make_loss("FOCAL", task="multiclass", **kw)) is FocalLoss
    assert type(make_loss("afl", task="multiclass", **kw)) is AdaptiveFocalLoss
    assert type(make_loss("afl", task="multilabel", **kw)) is BinaryAdaptiveFocalLoss
    assert type(make_loss(LDAMLoss, task="multiclass", **kw)) is LDAMLoss
    for name in available_losses("multiclass") + available_losses("multilabel"):
        for task in ("multiclass", "multilabel"):
            if name in LOSSES[task]:
                assert make_loss(name, task=task, **kw).reduction == "none"


def test_make_loss_errors():
    with pytest.raises(ValueError, match=r"unknown loss 'bce' for task 'multiclass'.*afl, ce"):
        make_loss("bce", task="multiclass", class_counts=MC_COUNTS)
    with pytest.raises(ValueError, match="distribution_balanced"):
        make_loss("nope", task="multilabel", class_counts=ML_COUNTS)
    with pytest.raises(ValueError, match="task"):
        make_loss("ce", task="token", class_counts=MC_COUNTS)
    with pytest.raises(TypeError, match=r"'dice' \(DiceLoss\).*bogus.*smooth, square_denominator"):
        make_loss("dice", task="multiclass", loss__bogus=1)
    with pytest.raises(TypeError, match="accepted parameters: gamma, alpha"):
        make_loss("focal", task="multiclass", loss__smooth=1.0)
    with pytest.raises(TypeError, match="reduction"):
        make_loss("ce", task="multiclass", loss__reduction="mean")
    with pytest.raises(TypeError, match="gamma"):  # a loss__ extra is never ignored
        make_loss("ce", task="multiclass", loss__gamma=2.0)
    with pytest.raises(TypeError):
        make_loss(3, task="multiclass")
    with pytest.raises(ValueError, match="class_counts"):
        make_loss("ldam", task="multiclass")
    with pytest.raises(ValueError, match="multilabel loss"):
        make_loss(BinaryFocalLoss, task="multiclass")


def test_make_loss_params():
    flat = dict(gamma=3.0, alpha="balanced", beta=0.99, tau=0.5, max_gamma=5.0)
    assert set(flat) == set(FLAT_PARAMS)
    kw = dict(class_counts=MC_COUNTS, n_samples=N_MC)
    # unused flat parameters are ignored by every loss
    for name in available_losses("multiclass"):
        make_loss(name, task="multiclass", **kw, **flat)
    for name in available_losses("multilabel"):
        make_loss(name, task="multilabel", **kw, **flat)
    focal = make_loss("focal", task="multiclass", **kw, **flat)
    assert focal.gamma == 3.0 and focal.alpha_.shape == (C,)
    afl = make_loss("afl", task="multiclass", **kw, **flat)
    assert afl.gamma_.max().item() == 5.0 and afl.gamma_.min().item() == 3.0
    cb = make_loss("class_balanced", task="multiclass", **kw, **flat, loss__base="focal")
    assert cb.beta == 0.99 and cb.base == "focal" and cb.gamma == 3.0
    la = make_loss("logit_adjusted", task="multiclass", **kw, **flat)
    assert la.tau == 0.5
    # loss__ extras override flat values; unprefixed extras work
    assert make_loss("focal", task="multiclass", gamma=1.0, loss__gamma=4.0).gamma == 4.0
    assert make_loss("dice", task="multiclass", smooth=0.5).smooth == 0.5
    ldam = make_loss("ldam", task="multiclass", **kw, loss__max_m=0.3, loss__s=10,
                     loss__drw_epoch=1)
    assert ldam.margin_.max().item() == pytest.approx(0.3) and ldam.s == 10
    assert ldam.drw_epoch == 1
    db = make_loss("distribution_balanced", task="multilabel", class_counts=ML_COUNTS,
                   n_samples=N_ML, gamma=1.0, loss__neg_scale=5.0)
    assert db.gamma == 1.0 and db.neg_scale == 5.0


def test_a_parameter_given_as_none_reaches_the_loss():
    """None is a value (AFL's max_gamma=None: no cap), flat or loss__-prefixed; a parameter left out is the
    loss's default; None for a shared name the loss does not use is nothing to warn about."""
    import warnings

    counts = [1000, 10, 1]
    for params in ({"max_gamma": None}, {"loss__max_gamma": None}):
        for task in ("multiclass", "multilabel"):
            afl = make_loss("afl", task=task, class_counts=counts, n_samples=1000, **params)
            assert afl.max_gamma is None and afl.gamma_.tolist() == [2.0, 200.0, 2000.0], (params, task)
    assert make_loss("afl", task="multiclass", class_counts=counts).gamma_.max().item() == 10.0  # the default cap
    with pytest.raises(TypeError, match="gamma must be a real number, got NoneType"):  # None means nothing here
        make_loss("focal", task="multiclass", gamma=None)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert type(make_loss("ce", task="multiclass", max_gamma=None, tau=None)) is CrossEntropyLoss
        assert make_loss("focal", task="multiclass", alpha=None).alpha_ is None
        make_loss(FocalLoss(), task="multiclass", gamma=None)
    with pytest.warns(UserWarning, match="does not use max_gamma"):
        make_loss("ce", task="multiclass", max_gamma=5.0)


@pytest.mark.parametrize("loss, task, params, unused", [
    ("class_balanced", "multiclass", {"gamma": 3.0}, "gamma"),
    ("class_balanced", "multiclass", {"loss__gamma": 3.0, "loss__base": "ce"}, "gamma"),
    ("distribution_balanced", "multilabel", {"gamma": 1.0, "loss__focal": False}, "gamma"),
    ("distribution_balanced", "multilabel", {"loss__balance": 1.0, "loss__focal": False}, "balance"),
])
def test_a_parameter_the_configured_loss_does_not_use_warns(loss, task, params, unused):
    """class_balanced takes gamma for its focal base only, and the distribution-balanced loss gamma and
    balance for its focal term only: a grid over loss__gamma trained the same model silently, where a
    loss without gamma warns (docs/estimators.md: shared names a loss does not use are ignored with a
    warning)."""
    import warnings

    counts = ML_COUNTS if task == "multilabel" else [90, 10]
    n = N_ML if task == "multilabel" else 100
    with pytest.warns(UserWarning, match=rf"does not use {unused} .*; ignored"):
        make_loss(loss, task=task, class_counts=counts, n_samples=n, **params)
    with warnings.catch_warnings():  # where the term is on, nothing to say
        warnings.simplefilter("error")
        on = {"loss__base": "focal"} if loss == "class_balanced" else {"loss__focal": True}
        make_loss(loss, task=task, class_counts=counts, n_samples=n, **{**params, **on})


def test_register_loss():
    @register_loss("unit_test_loss", ("multiclass", "multilabel"))
    class Demo(ImbalanceLoss):
        def __init__(self, class_counts=None, *, scale=1.0, reduction="mean"):
            super().__init__(reduction=reduction)
            self.scale = scale
            self.register_buffer("counts_", torch.as_tensor(class_counts, dtype=torch.float32))

        def _per_sample(self, logits, target):
            return self.scale * logits.sum(1)

    try:
        built = make_loss("unit_test_loss", task="multiclass", class_counts=[1, 2], gamma=1.0,
                          loss__scale=2.0)
        assert isinstance(built, Demo) and built.scale == 2.0
        np.testing.assert_array_equal(built.fitted_attributes()["counts_"], [1.0, 2.0])
        assert "unit_test_loss" in available_losses("multilabel")
        with pytest.raises(ValueError, match="already registered"):
            register_loss("unit_test_loss", "multiclass")(CrossEntropyLoss)
        register_loss("unit_test_loss", "multiclass")(Demo)  # same class: fine
    finally:
        for task in ("multiclass", "multilabel"):
            LOSSES[task].pop("unit_test_loss", None)
    with pytest.raises(ValueError, match="task"):
        register_loss("x", "regression")


# ---------------------------------------------------------------- fitted attributes, devices, pickling
EXPECTED_FITTED = {
    ("multiclass", "ce"): set(),
    ("multiclass", "weighted_ce"): {"class_weight_"},
    ("multiclass", "class_balanced"): {"class_weight_"},
    ("multiclass", "focal"): set(),
    ("multiclass", "dice"): set(),
    ("multiclass", "self_adjusting_dice"): set(),
    ("multiclass", "ldam"): {"margin_", "class_weight_"},
    ("multiclass", "logit_adjusted"): {"logit_adjustment_"},
    ("multiclass", "afl"): {"gamma_", "alpha_"},
    ("multiclass", "ordinal"): set(),
    ("multilabel", "bce"): set(),
    ("multilabel", "weighted_bce"): {"pos_weight_"},
    ("multilabel", "focal_bce"): set(),
    ("multilabel", "distribution_balanced"): {"logit_bias_"},
    ("multilabel", "afl"): {"gamma_", "alpha_"},
}


@pytest.mark.parametrize("task,name", sorted(EXPECTED_FITTED))
def test_fitted_attributes(task, name):
    loss = make_loss(name, task=task, class_counts=ML_COUNTS, n_samples=N_ML)
    fitted = loss.fitted_attributes()
    assert set(fitted) == EXPECTED_FITTED[task, name]
    for key, value in fitted.items():
        assert key.endswith("_") and isinstance(value, np.ndarray) and value.shape == (C,)
    focal = make_loss("focal", task=task, class_counts=ML_COUNTS, n_samples=N_ML, alpha="balanced")
    assert set(focal.fitted_attributes()) == {"alpha_"}


@pytest.mark.parametrize("task,name", _all_losses())
def test_buffers_move_and_state_dict(task, name):
    loss = make_loss(name, task=task, class_counts=ML_COUNTS, n_samples=N_ML)
    names = {k for k, _ in loss.named_buffers()}
    assert set(loss.fitted_attributes()) <= names <= set(loss.state_dict())
    moved = copy.deepcopy(loss).to("meta")
    assert all(b.device.type == "meta" for b in moved.buffers())
    as64 = copy.deepcopy(loss).double()
    assert all(b.dtype == torch.float64 for b in as64.buffers() if b.is_floating_point())
    fresh = make_loss(name, task=task, class_counts=[1, 1, 1, 1], n_samples=N_ML)
    fresh.load_state_dict(loss.state_dict())
    for key, value in loss.fitted_attributes().items():
        np.testing.assert_array_equal(fresh.fitted_attributes()[key], value)


@pytest.mark.parametrize("task,name", _all_losses())
def test_pickle_roundtrip(task, name, mc_data, ml_data):
    _, _, zt, yt = mc_data if task == "multiclass" else ml_data
    extra = {"loss__drw_epoch": 1} if name in ("ldam", "class_balanced") else {}
    loss = make_loss(name, task=task, class_counts=ML_COUNTS, n_samples=N_ML, **extra)
    loss.set_epoch(2, 3)
    clone = pickle.loads(pickle.dumps(loss))
    assert type(clone) is type(loss) and clone.reduction == "none"
    assert_close(clone(zt.float(), yt), loss(zt.float(), yt))
    for key, value in loss.fitted_attributes().items():
        np.testing.assert_array_equal(clone.fitted_attributes()[key], value)


def test_a_class_balanced_loss_pickled_before_the_schedule_loads_unscheduled():
    old = ClassBalancedLoss([90, 10], beta=0.999, reduction="none")
    del old.drw_epoch, old._buffers["drw_weight"]  # the state of a loss pickled before drw_epoch existed
    loaded = pickle.loads(pickle.dumps(old))
    assert loaded.drw_epoch is None and loaded.drw_start(3) is None
    assert torch.equal(loaded.drw_weight, old.class_weight_)
    loaded.set_epoch(2, 3)  # no schedule: the weights stay the class-balanced ones
    z, y = torch.zeros(2, 2), torch.tensor([0, 1])
    assert_close(loaded(z, y), ClassBalancedLoss([90, 10], beta=0.999, reduction="none")(z, y))


def test_repr_mentions_hyperparameters():
    assert "gamma=2.0" in repr(FocalLoss()) and "reduction='mean'" in repr(FocalLoss())
    assert "tau=0.5" in repr(LogitAdjustedLoss([1, 2], tau=0.5))


def test_from_counts():
    loss = AdaptiveFocalLoss.from_counts([10, 5], n_samples=15, gamma=1.0)
    np.testing.assert_array_equal(loss.gamma_.numpy(), [1.0, 2.0])
    assert CrossEntropyLoss.from_counts([10, 5]).reduction == "mean"
    assert "max_gamma" in AdaptiveFocalLoss.accepted_params()
    assert "class_counts" not in AdaptiveFocalLoss.accepted_params()


@pytest.mark.parametrize("name", sorted(available_losses("multilabel")))
def test_per_label_terms_average_to_the_per_sample_loss(ml_data, name):
    """Every registered multi-label loss has per-(sample, label) terms (HAMR weights them one by
    one), and their mean over labels is its per-sample loss."""
    _, _, zt, yt = ml_data
    loss = make_loss(name, task="multilabel", class_counts=ML_COUNTS, n_samples=N_ML)
    assert type(loss).has_per_label()
    terms = loss.per_label(zt, yt)
    assert terms.shape == (N, C)
    assert_close(terms.mean(dim=1), loss.per_sample(zt, yt))
    assert not torch.allclose(terms, terms.mean(dim=1, keepdim=True).expand_as(terms))  # the terms differ


def test_per_label_is_off_where_a_subclass_redefines_the_per_sample_loss(ml_data):
    """A subclass of a multi-label loss that redefines _per_sample would otherwise hand HAMR its
    parent's per-label terms."""
    class Doubled(BinaryCrossEntropyLoss):
        def _per_sample(self, logits, target):
            return 2.0 * super()._per_sample(logits, target)

    class Relabelled(Doubled):  # per-label terms defined below the per-sample loss: its own
        def _per_label(self, logits, target):
            return 2.0 * super()._per_label(logits, target)

    assert not Doubled.has_per_label() and Relabelled.has_per_label() and BinaryCrossEntropyLoss.has_per_label()


def test_per_label_needs_a_loss_with_label_terms(mc_data, ml_data):
    class Summed(ImbalanceLoss):  # multi-label, but only a per-sample loss
        task = "multilabel"

        def _per_sample(self, logits, target):
            return torch.nn.functional.binary_cross_entropy_with_logits(logits, target, reduction="none").sum(1)

    _, _, zt, yt = ml_data
    assert not Summed.has_per_label() and not CrossEntropyLoss.has_per_label()
    with pytest.raises(TypeError, match="Summed has no per-label losses"):
        Summed().per_label(zt, yt)
    _, _, zc, yc = mc_data
    with pytest.raises(TypeError, match="CrossEntropyLoss has no per-label losses"):
        CrossEntropyLoss().per_label(zc, yc)


def test_the_ordinal_loss_warns_where_labels_sort_as_text_and_no_grades_are_given():
    from skimb.losses import loss_classes_warning

    text = ["negative", "neutral", "positive", "very negative", "very positive"]
    message = loss_classes_warning("ordinal", task="multiclass", classes=text)
    assert "the labels ['negative', 'neutral', 'positive', 'very negative', 'very positive'] are sorted as text" \
        in message and "give loss__grades" in message
    assert loss_classes_warning("ordinal", task="multiclass", classes=text, loss__grades=[1, 2, 3, 0, 4]) is None
    assert loss_classes_warning("ordinal", task="multiclass", classes=[0, 1, 2]) is None
    assert loss_classes_warning("ce", task="multiclass", classes=text) is None


def test_the_ordinal_loss_warns_where_numeric_labels_are_not_evenly_spaced():
    """Without grades the loss reads the classes as grades 0, 1, 2: [1, 2, 5] loses its gap (a rating
    missing from training); the warning names loss__grades. The default grades are unchanged."""
    from skimb.losses import loss_classes_warning

    message = loss_classes_warning("ordinal", task="multiclass", classes=np.array([1, 2, 5]))
    assert "evenly spaced grades 0, 1, 2, but the labels [1, 2, 5] are not evenly spaced" in message
    assert "loss__grades=[1, 2, 5]" in message and "loss__grades=[0, 1, 2]" in message
    assert "0, 1, ..., 9" in loss_classes_warning("ordinal", task="multiclass", classes=np.arange(10) ** 2)
    for classes in ([1, 2, 3], [0.5, 1.0, 1.5], [2, 7], [-2, 0, 2, 4], [True, False]):
        assert loss_classes_warning("ordinal", task="multiclass", classes=np.array(classes)) is None, classes
    assert loss_classes_warning("ordinal", task="multiclass", classes=np.array([1, 2, 5]), loss__grades=[1, 2, 5]) \
        is None
    z = torch.tensor([[4.0, 0.0, 0.0], [0.0, 0.0, 4.0]])
    plain = SoftOrdinalLoss(reduction="none")(z, torch.tensor([1, 1]))
    assert plain[0].item() == pytest.approx(plain[1].item())  # the default grades: still evenly spaced


def test_loss_errors_name_the_estimator_parameter():
    """An estimator re-raises a loss's error with the loss's argument written as its own, loss__<name>."""
    from skimb.losses._registry import name_routed_params

    def name(message, loss="focal", **params):
        return name_routed_params(message, loss, task="multiclass", params=params)

    assert name("gamma must be finite and >= 0, got -1.0.", gamma=-1) == \
        ("loss__gamma must be finite and >= 0, got -1.0.", True)
    assert name("FocalLoss: alpha has 2 entries but there are 3 classes.") == \
        ("FocalLoss: loss__alpha has 2 entries but there are 3 classes.", True)  # a constructor parameter
    assert name("a float drw_epoch is a fraction; drw_epoch=2 starts", "ldam", drw_epoch=2.0)[0] == \
        "a float loss__drw_epoch is a fraction; loss__drw_epoch=2 starts"
    # quoted values, parentheses, longer words and names the loss does not have stay
    assert name("base must be 'ce' or 'focal', got 'gamma'.", "class_balanced")[0] == \
        "loss__base must be 'ce' or 'focal', got 'gamma'."
    assert name("got unexpected parameter(s) smoth", "ldam", smoth=1)[0] == "got unexpected parameter(s) loss__smoth"
    assert name("gammas and beta", "focal") == ("gammas and beta", False)
    assert name("loss__catch_all='x' is not a class", "ranking", catch_all="x") == \
        ("loss__catch_all='x' is not a class", True)  # named already
    assert name("gamma must be finite", torch.nn.CrossEntropyLoss()) == ("gamma must be finite", False)


@pytest.mark.parametrize("name", ["class_balanced", "ldam"])
def test_a_beta_given_as_none_is_refused_by_name(name):
    from skimb.losses import make_loss

    with pytest.raises(TypeError, match="beta must be a real number, got NoneType"):
        make_loss(name, task="multiclass", class_counts=[10, 5, 1], beta=None)


def test_an_unregistered_loss_name_says_its_class_reaches_worker_processes():
    # registered in a search's script, a loss name is unknown in the workers (n_jobs=2): its class works there
    with pytest.raises(ValueError, match=r"unknown loss 'hinge_demo'.*registered .*in another process.*pass the "
                                         r"class \(loss=MyLoss\)"):
        make_loss("hinge_demo", task="multiclass", class_counts=MC_COUNTS)
    with pytest.raises(ValueError) as caught:  # a name of the other task: no such hint
        make_loss("bce", task="multiclass", class_counts=MC_COUNTS)
    assert "another process" not in str(caught.value)
