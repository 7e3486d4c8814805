"""HAMR's bi-level meta step (adaptive weight estimation, Rao et al., 2025, §2.1), model-agnostic.

One call per training step:

1. per-sample losses ``l`` of the batch at the current parameters θ, pre-meta weights
   ``w = batch_weights(wnet, l)`` (a function of WNet's parameters φ only);
2. a virtual SGD step ``θ' = θ − meta_update_lr · ∇θ mean(w·l)``, or ``∇θ sum(w·t)`` where the
   per-sample loss function also returns the terms ``t`` of the caller's real update loss;
3. the meta loss of ``θ'`` on one batch of the balanced meta set, differentiated with respect to
   φ only; WNet's optimiser steps;
4. post-meta weights from the updated WNet (no graph) for the real update of the task model,
   which the caller performs.

The task model is only ever called through :func:`torch.func.functional_call`; its parameters,
buffers and ``.grad`` are left exactly as they were.

What the meta-gradient is
-------------------------
``w`` depends on φ only (the losses fed to WNet are detached) and enters ``θ'`` linearly:
``θ' = θ − (lr/B) Σ_i w_i g_i`` with ``g_i = ∇θ l_i(θ)``. Hence, exactly,

    ∂L_meta(θ')/∂w_i = −(lr/B) · g_iᵀ ∇L_meta(θ'),

(with terms, ``θ' = θ − lr Σ_i w_i ∇θ t_i`` and ``−lr · (∇θ t_i)ᵀ ∇L_meta(θ')``), and ∂/∂φ follows by the chain rule through ``w``. There is no Hessian in this expression:
"second order" in the reference means *differentiating through a gradient* (double backward),
which is how autograd obtains the per-sample dot products ``g_iᵀ v`` without materialising the
per-sample gradients ``g_i``. Keeping the graph from ``w`` to ``θ'`` while treating the ``g_i``
as constants (the usual first-order trick) therefore gives the *same* meta-gradient as the full
computation; the modes below differ in how ``g_iᵀ v`` is obtained and on which parameters the
virtual step acts:

``"full"`` (the reference)
    ``torch.autograd.grad(mean(w·l), θ, create_graph=True)`` on every trainable parameter, then
    backward from the meta loss through that graph (double backward). Exact; memory-hungry.
    The batch forward runs with the MATH scaled-dot-product-attention kernel, since the fused
    kernels have no double backward.
``"first_order"``
    No double backward. ``θ'`` is built from a plain first-order gradient, ``v = ∇L_meta(θ')`` is
    a plain backward at ``θ'``, and the directional derivatives ``g_iᵀ v`` come from a central
    finite difference of the per-sample losses (or terms) along ``v`` (two extra forward passes without
    graph, same dropout masks as the batch forward, step ``fd_eps / ‖v‖``; the DARTS
    approximation). Equal to ``"full"`` up to O(fd_eps²) and float rounding: different but
    close; no second-order graph in memory, fused attention kernels allowed.
``"head"``
    The virtual step (second order, exact) updates only the ``head_param_names`` parameters; the
    rest of the model is fixed in ``θ'`` (and detached, so no graph is built through it unless
    ``keep_graph``). A different, cheaper bi-level problem, not an approximation of "full".
    Only the head is differentiated twice, so attention runs on the fused kernels.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import Callable, Iterable

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from .._net import NON_FINITE_REMEDY
from ._wnet import batch_weights

__all__ = ["MetaStepResult", "meta_step", "sequence_loss", "META_MODES"]

META_MODES = ("full", "first_order", "head")


@dataclass
class MetaStepResult:
    """What :func:`meta_step` returns.

    Attributes
    ----------
    weights : tensor of shape (B,)
        Post-meta weights from the updated WNet, no graph: weight the real loss with them and
        record them in the :class:`~skimb.training.hamr.HardnessTracker`.
    pre_weights : tensor of shape (B,)
        Pre-meta weights (detached), for diagnostics.
    losses : tensor of shape (B,)
        Per-sample losses of the batch at the current parameters; detached, unless
        ``keep_graph=True``, in which case they still hold the graph to the model's parameters
        and ``(weights * losses).mean().backward()`` is the real update's backward (no second
        forward needed).
    meta_loss : tensor (scalar, detached)
        Meta loss of the virtually updated model ``θ'`` on the meta batch.
    wnet_grad_norm : float
        L2 norm of the meta-gradient applied to WNet.
    terms : tensor of shape (B,) or None
        Each sample's term of the weighted update loss ``sum(weights · terms)`` where
        ``per_sample_loss_fn`` returned ``(losses, terms)`` (None otherwise: the update loss is
        ``mean(weights · losses)``); attached to the graph like ``losses``.
    """

    weights: torch.Tensor
    pre_weights: torch.Tensor
    losses: torch.Tensor
    meta_loss: torch.Tensor
    wnet_grad_norm: float
    terms: torch.Tensor | None = None


def split_losses(out) -> tuple[torch.Tensor, torch.Tensor | None]:
    """A per-sample loss function's output as flat ``(losses, terms)`` (``terms`` None for a
    plain tensor of losses, whose update loss is their weighted mean)."""
    losses, terms = out if isinstance(out, tuple) else (out, None)
    return losses.reshape(-1), None if terms is None else terms.reshape(-1)


def weighted_update_loss(weights, losses, terms=None) -> torch.Tensor:
    """The update loss at per-sample ``weights``: ``sum(w · terms)``, or ``mean(w · losses)``
    without terms (:func:`meta_step`'s virtual step and the real update share it)."""
    if terms is None:
        return (weights.to(losses.dtype) * losses.reshape(weights.shape)).mean()
    return (weights.to(terms.dtype) * terms.reshape(weights.shape)).sum()


def sequence_loss(
    logits: torch.Tensor,
    targets: torch.Tensor,
    *,
    reduction: str = "max",
    ignore_index: int = -100,
) -> torch.Tensor:
    """Per-sequence loss for token classification: the max (or mean) token cross-entropy.

    HAMR's per-example loss for NER is the largest token loss of the sentence over labelled
    tokens (``targets != ignore_index``); a sequence without labelled tokens gets 0.

    Parameters
    ----------
    logits : tensor of shape (B, T, C)
    targets : tensor of shape (B, T), int
    reduction : {"max", "mean"}, default="max"
    ignore_index : int, default=-100

    Returns
    -------
    loss : tensor of shape (B,)

    Examples
    --------
    >>> import torch
    >>> logits = torch.zeros(2, 3, 2)
    >>> targets = torch.tensor([[0, 1, -100], [-100, -100, -100]])
    >>> sequence_loss(logits, targets)
    tensor([0.6931, 0.0000])
    """
    if logits.dim() != 3:
        raise ValueError(f"logits must be (B, T, C), got shape {tuple(logits.shape)}.")
    tok = F.cross_entropy(
        logits.transpose(1, 2), targets.long(), reduction="none", ignore_index=ignore_index
    )  # (B, T), 0 where ignored
    mask = targets != ignore_index
    if reduction == "max":
        return tok.masked_fill(~mask, 0.0).max(dim=1).values
    if reduction == "mean":
        return tok.masked_fill(~mask, 0.0).sum(dim=1) / mask.sum(dim=1).clamp(min=1)
    raise ValueError(f"reduction must be 'max' or 'mean', got {reduction!r}.")


# ---------------------------------------------------------------------------------------------


def _logits(out):
    """Accept a tensor, an object with ``.logits`` (Hugging Face) or a tuple (first item)."""
    if isinstance(out, torch.Tensor):
        return out
    logits = getattr(out, "logits", None)
    if logits is not None:
        return logits
    if isinstance(out, (tuple, list)) and out and isinstance(out[0], torch.Tensor):
        return out[0]
    raise TypeError(
        f"the model must return logits (a tensor), got {type(out).__name__}; "
        "wrap it so that forward(**inputs) returns the logits."
    )


def _matches(name: str, wanted: list[str]) -> bool:
    """``name`` is one of ``wanted`` or lies under one of them as a module prefix."""
    return any(name == h or name.startswith(h.rstrip(".") + ".") for h in wanted)


def _select_head(names: list[str], head_param_names: Iterable[str] | None) -> list[str]:
    if head_param_names is None:
        raise ValueError("mode='head' needs head_param_names (parameter names or module prefixes).")
    if isinstance(head_param_names, str):
        head_param_names = [head_param_names]
    wanted = [str(h) for h in head_param_names]
    if not wanted:
        raise ValueError("head_param_names is empty.")
    chosen = [n for n in names if _matches(n, wanted)]
    if not chosen:
        shown = ", ".join(names[:8]) + (", ..." if len(names) > 8 else "")
        raise ValueError(
            f"head_param_names {wanted} match no trainable parameter; trainable parameters: {shown}."
        )
    return chosen


@contextlib.contextmanager
def _math_sdpa(enabled: bool):
    """Force the MATH attention kernel (the only one with a double backward) when enabled."""
    if not enabled:
        yield
        return
    try:
        from torch.nn.attention import SDPBackend, sdpa_kernel
    except ImportError:  # pragma: no cover - torch < 2.3
        yield
        return
    with sdpa_kernel([SDPBackend.MATH]):
        yield


class _RngState:
    """CPU and CUDA generator states, so that a forward can replay the same dropout masks."""

    def __init__(self, devices: list[torch.device]):
        self.cpu = torch.get_rng_state()
        self.cuda = {}
        for d in devices:
            if d.type == "cuda":
                idx = d.index if d.index is not None else torch.cuda.current_device()
                self.cuda[idx] = torch.cuda.get_rng_state(idx)

    def restore(self) -> None:
        torch.set_rng_state(self.cpu)
        for idx, state in self.cuda.items():
            torch.cuda.set_rng_state(state, idx)


def _zero_like_or(g, p):
    return torch.zeros_like(p) if g is None else g


def meta_step(
    model: nn.Module,
    wnet: nn.Module,
    wnet_optimizer: torch.optim.Optimizer,
    per_sample_loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor | tuple[torch.Tensor, torch.Tensor]],
    batch_inputs: dict,
    batch_targets: torch.Tensor,
    meta_inputs: dict,
    meta_targets: torch.Tensor,
    meta_loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    *,
    meta_update_lr: float,
    mode: str = "full",
    head_param_names: Iterable[str] | None = None,
    detach_mean: bool = False,
    keep_graph: bool = False,
    fd_eps: float = 1e-2,
    wnet_features: torch.Tensor | None = None,
    wnet_groups: torch.Tensor | None = None,
    fixed_param_names: Iterable[str] | None = None,
) -> MetaStepResult:
    """One HAMR meta step: update WNet from the meta batch, return the post-meta weights.

    See the module docstring for the computation and the three modes.

    Parameters
    ----------
    model : nn.Module
        The task model, called as ``functional_call(model, params, args=(), kwargs=inputs)``;
        must return logits (a Hugging Face output's ``.logits`` or a tuple's first item are
        accepted). Its train/eval mode is left to the caller (the reference trains with
        dropout on). Only parameters with ``requires_grad`` take part in the virtual step.
    wnet : nn.Module
        The weight network (:class:`~skimb.training.hamr.WeightNet`).
    wnet_optimizer : torch.optim.Optimizer
        Over ``wnet``'s parameters (:func:`~skimb.training.hamr.make_wnet_optimizer`).
    per_sample_loss_fn : callable
        ``(logits, targets) -> (B,)`` per-sample losses, differentiable (CLS: cross-entropy with
        ``reduction="none"``; NER: :func:`sequence_loss`); the virtual step descends
        ``mean(w · losses)``. Or ``-> (losses, terms)``: WNet weighs ``losses`` and the virtual
        step descends ``sum(w · terms)``, the real update's loss where it is not the weighted
        mean of WNet's inputs (a tagger that trains every token of a window at the window's
        weight).
    batch_inputs, batch_targets
        The training batch (keyword inputs of the model, targets of ``per_sample_loss_fn``).
    meta_inputs, meta_targets
        One batch of the balanced meta set.
    meta_loss_fn : callable
        ``(logits, targets) -> scalar`` (METHODS: mean cross-entropy; NER: token-level mean
        cross-entropy with ``ignore_index=-100``).
    meta_update_lr : float
        Step size of the virtual SGD step.
    mode : {"full", "first_order", "head"}, default="full"
    head_param_names : iterable of str, optional
        ``mode="head"`` only: parameter names or module prefixes (``"classifier"`` selects
        ``classifier.weight`` and ``classifier.bias``) updated in the virtual step.
    detach_mean : bool, default=False
        Passed to :func:`~skimb.training.hamr.batch_weights` (``True`` = the reference's
        ``w / w.mean().detach()``).
    keep_graph : bool, default=False
        Return ``losses`` still attached to the model's parameters (the batch forward then
        also uses the model's real buffers, as an ordinary forward would), so the caller's real
        update can reuse this forward, as the reference does (``terms`` likewise). Otherwise the
        batch forward sees copies of the buffers and ``losses`` and ``terms`` are detached.
    fd_eps : float, default=1e-2
        ``mode="first_order"`` only: norm of the finite-difference step in parameter space.
    wnet_features : tensor of shape (B, n_features), optional
        WNet's inputs besides the losses (:func:`~skimb.training.hamr.batch_weights`'s ``features``).
    wnet_groups : tensor of shape (B,), optional
        Groups within which the weights are normalised (:func:`~skimb.training.hamr.batch_weights`'s
        ``groups``).
    fixed_param_names : iterable of str, optional
        Parameter names or module prefixes that the virtual step leaves at ``θ`` in every mode:
        parameters that ``meta_loss_fn`` reads from the live module rather than through the
        virtual parameters (a tagger's CRF), whose second-order graph would be built for nothing.

    Returns
    -------
    MetaStepResult

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> import torch.nn.functional as F
    >>> from skimb.training.hamr import WeightNet, make_wnet_optimizer
    >>> class Net(nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.fc = nn.Linear(4, 3)
    ...     def forward(self, x):
    ...         return self.fc(x)
    >>> _ = torch.manual_seed(0)
    >>> model, wnet = Net(), WeightNet()
    >>> opt = make_wnet_optimizer(wnet, lr=1e-3)
    >>> x, y = torch.randn(8, 4), torch.randint(0, 3, (8,))
    >>> res = meta_step(model, wnet, opt, lambda lo, t: F.cross_entropy(lo, t, reduction="none"),
    ...                 {"x": x}, y, {"x": x}, y, F.cross_entropy, meta_update_lr=0.1)
    >>> res.weights.shape, res.weights.requires_grad, model.fc.weight.grad is None
    (torch.Size([8]), False, True)
    """
    if mode not in META_MODES:
        raise ValueError(f"mode must be one of {META_MODES}, got {mode!r}.")
    if not meta_update_lr > 0:
        raise ValueError(f"meta_update_lr must be > 0, got {meta_update_lr}.")
    lr = float(meta_update_lr)

    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if not named:
        raise ValueError("the model has no trainable parameter (requires_grad=True).")
    names = [n for n, _ in named]
    params = dict(named)
    if mode == "head":
        step_names = _select_head(names, head_param_names)
    else:
        step_names = names
    if fixed_param_names is not None:
        fixed = [fixed_param_names] if isinstance(fixed_param_names, str) else [str(f) for f in fixed_param_names]
        step_names = [n for n in step_names if not _matches(n, fixed)]
        if not step_names:
            raise ValueError(f"fixed_param_names {fixed} leave the virtual step no parameter to move.")
    step_set = set(step_names)

    wnet_params = [p for p in wnet.parameters() if p.requires_grad]
    if not wnet_params:
        raise ValueError("wnet has no trainable parameter.")

    def buffers_copy():
        return {n: b.clone() for n, b in model.named_buffers()}

    def call(param_dict, buffers, inputs):
        return _logits(functional_call(model, {**buffers, **param_dict}, args=(), kwargs=inputs))

    # ---- (1) batch forward at θ, pre-meta weights -------------------------------------------
    if mode == "head" and not keep_graph:
        fwd_params = {n: (p if n in step_set else p.detach()) for n, p in params.items()}
    else:
        fwd_params = params
    batch_buffers = dict(model.named_buffers()) if keep_graph else buffers_copy()
    devices = sorted({p.device for p in params.values()}, key=str)
    rng_before = _RngState(devices) if mode == "first_order" else None

    # Only "full" double-backpropagates through attention; "head" differentiates twice through
    # the head alone, so the fused kernels (flash / memory-efficient) serve it.
    with _math_sdpa(mode == "full"):
        logits = call(fwd_params, batch_buffers, batch_inputs)
    losses, terms = split_losses(per_sample_loss_fn(logits, batch_targets))
    if not torch.all(torch.isfinite(losses.detach())):
        raise FloatingPointError("the batch's training loss became non-finite (its per-sample losses in the meta "
                                 f"step's forward). {NON_FINITE_REMEDY}")
    w_pre = batch_weights(wnet, losses, detach_mean=detach_mean, features=wnet_features, groups=wnet_groups)
    B = losses.numel()
    step_params = [params[n] for n in step_names]

    wnet_optimizer.zero_grad(set_to_none=True)
    if mode in ("full", "head"):
        # ---- (2) virtual step with the graph kept (double backward later) -------------------
        inner = weighted_update_loss(w_pre, losses, terms)
        grads = torch.autograd.grad(inner, step_params, create_graph=True, allow_unused=True)
        virtual = {n: p.detach() for n, p in fwd_params.items() if n not in step_set}
        for n, p, g in zip(step_names, step_params, grads):
            virtual[n] = p if g is None else p - lr * g
        # ---- (3) meta loss at θ', gradient to WNet only -------------------------------------
        meta_loss = meta_loss_fn(call(virtual, buffers_copy(), meta_inputs), meta_targets)
        wgrads = torch.autograd.grad(
            meta_loss, wnet_params, allow_unused=True, retain_graph=keep_graph
        )
        del grads, virtual
    else:  # first_order
        inner = weighted_update_loss(w_pre.detach(), losses, terms)
        grads = torch.autograd.grad(inner, step_params, allow_unused=True, retain_graph=keep_graph)
        with torch.no_grad():
            theta = {n: p.detach() for n, p in params.items()}
            virtual = {
                n: (theta[n] - lr * g).requires_grad_(True) if g is not None else theta[n]
                for n, g in zip(step_names, grads)
            }
        meta_loss = meta_loss_fn(call(virtual, buffers_copy(), meta_inputs), meta_targets)
        diff_names = [n for n in step_names if virtual[n].requires_grad]
        vs = torch.autograd.grad(meta_loss, [virtual[n] for n in diff_names], allow_unused=True)
        v = {n: _zero_like_or(g, virtual[n]) for n, g in zip(diff_names, vs)}
        del grads, vs, virtual
        v_norm = math.sqrt(sum(float(t.double().pow(2).sum()) for t in v.values()))
        if v_norm > 0 and math.isfinite(v_norm):
            eps = float(fd_eps) / v_norm
            rng_after = _RngState(devices)
            with torch.no_grad():
                rng_before.restore()
                plus = {**theta, **{n: theta[n] + eps * t for n, t in v.items()}}
                l_plus = _update_terms(per_sample_loss_fn(call(plus, buffers_copy(), batch_inputs), batch_targets))
                del plus
                rng_before.restore()
                minus = {**theta, **{n: theta[n] - eps * t for n, t in v.items()}}
                l_minus = _update_terms(per_sample_loss_fn(call(minus, buffers_copy(), batch_inputs), batch_targets))
                del minus
            rng_after.restore()
            directional = (l_plus - l_minus).double() / (2.0 * eps)
        else:
            directional = torch.zeros(B, dtype=torch.float64, device=losses.device)
        # ∂L_meta/∂w_i = −(lr/B)·g_iᵀv (without terms; with them −lr·(∇θ t_i)ᵀv), pushed through
        # w's graph to φ
        scale = lr / B if terms is None else lr
        coef = (-scale * directional).to(device=w_pre.device, dtype=w_pre.dtype)
        wgrads = torch.autograd.grad(w_pre, wnet_params, grad_outputs=coef, allow_unused=True)

    grad_sq = 0.0
    for p, g in zip(wnet_params, wgrads):
        g = _zero_like_or(g, p).detach()
        p.grad = g
        grad_sq += float(g.double().pow(2).sum())
    if not (math.isfinite(grad_sq) and torch.isfinite(meta_loss.detach()).all()):
        wnet_optimizer.zero_grad(set_to_none=True)  # never step WNet into non-finite weights
        raise FloatingPointError("the meta loss or WNet's gradient became non-finite; WNet was not updated. "
                                 "Lower meta_update_lr, wnet_lr or lr, or check the meta set.")
    wnet_optimizer.step()

    # ---- (4) post-meta weights ------------------------------------------------------------
    with torch.no_grad():
        w_post = batch_weights(wnet, losses.detach(), detach_mean=detach_mean, features=wnet_features,
                               groups=wnet_groups)

    return MetaStepResult(
        weights=w_post.detach(),
        pre_weights=w_pre.detach(),
        losses=losses if keep_graph else losses.detach(),
        meta_loss=meta_loss.detach(),
        wnet_grad_norm=math.sqrt(grad_sq),
        terms=None if terms is None else (terms if keep_graph else terms.detach()),
    )


def _update_terms(out) -> torch.Tensor:
    """What the update loss weighs: the terms where given, else the losses."""
    losses, terms = split_losses(out)
    return losses if terms is None else terms
