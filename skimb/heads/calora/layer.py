"""``ClassRoutedLoRA``: one low-rank adapter per class around a frozen ``nn.Linear`` (Eq. 2-4)."""

from __future__ import annotations

import math
from contextlib import contextmanager

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .config import CALoRAConfig
from .routing import route_from_logits

__all__ = ["ClassRoutedLoRA", "class_adapters_disabled"]


class ClassRoutedLoRA(nn.Module):
    """A frozen linear layer plus C class-specific LoRA adapters, mixed by a per-input gate.

    ``h = W0 x + scaling * B M A x`` (paper Eq. 4), with the adapters stacked as
    ``A = [A_1; ...; A_C] ∈ R^{(C·r)×d_in}`` (``lora_A``, block i = rows ``i*r:(i+1)*r``) and
    ``B = [B_1 ... B_C] ∈ R^{d_out×(C·r)}`` (``lora_B``, block i = columns ``i*r:(i+1)*r``), and
    ``M = diag(route ⊗ 1_r)`` the block-diagonal gate. M is never materialised: the ``C·r``
    intermediate activations ``A x`` are multiplied by the gate of their class, so the cost is that
    of one wide LoRA, ``O((d_in + d_out)·C·r)`` per input. Equivalently
    ``h = W0 x + scaling * Σ_i route_i · B_i A_i x``.

    Parameters
    ----------
    base : nn.Linear
        The layer to adapt (any ``nn.Linear`` or subclass), typically the stage-1 classification
        head. It is used **by reference**, not copied: wrapping freezes it in place
        (``requires_grad_(False)`` on its parameters) and its weights are never modified; moving
        this module with ``.to()`` moves ``base`` too.
    config : CALoRAConfig
        Stored as given (it is immutable).
    multilabel : bool, default False
        Sigmoid semantics for self-routing (``forward(x)`` without a route, ``"soft"`` gates).
    generator : torch.Generator, optional
        CPU generator for the initialisation of ``lora_A`` (reproducible without touching the
        global RNG). ``lora_A`` is drawn on the CPU in float32, then cast to ``base``'s
        device and dtype, so the initial values do not depend on the device.

    Examples
    --------
    >>> head = nn.Linear(16, 3)
    >>> layer = ClassRoutedLoRA(head, CALoRAConfig(n_classes=3, rank=2, k=2))
    >>> x, route = torch.randn(5, 16), torch.tensor([[1., 1., 0.]]).repeat(5, 1)
    >>> bool(torch.equal(layer(x, route), head(x)))  # B starts at zero
    True
    >>> head.weight.requires_grad
    False
    >>> [n for n, p in layer.named_parameters() if p.requires_grad]
    ['lora_A', 'lora_B']
    """

    #: False: ``forward`` is the frozen ``base`` alone (:func:`class_adapters_disabled`); a class
    #: attribute, so that layers pickled before it existed load.
    adapters_enabled = True

    def __getstate__(self):
        # a copy or a pickle made inside class_adapters_disabled has its adapters on, as outside it
        state = dict(super().__getstate__())
        state.pop("adapters_enabled", None)
        return state

    def __init__(
        self,
        base: nn.Linear,
        config: CALoRAConfig,
        *,
        multilabel: bool = False,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(base, nn.Linear):
            raise TypeError(f"base must be a torch.nn.Linear (or subclass), got {type(base).__name__}.")
        if not isinstance(config, CALoRAConfig):
            raise TypeError(f"config must be a CALoRAConfig, got {type(config).__name__}.")
        if generator is not None and not isinstance(generator, torch.Generator):
            raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}.")
        self.base = base
        self.base.requires_grad_(False)
        self.config = config
        self.multilabel = bool(multilabel)
        C, r = config.n_classes, config.rank
        w = base.weight
        factory = {"device": w.device, "dtype": w.dtype}
        self.lora_A = nn.Parameter(torch.empty(C * r, base.in_features, **factory))
        self.lora_B = nn.Parameter(torch.empty(base.out_features, C * r, **factory))
        self.lora_dropout = nn.Dropout(p=config.dropout) if config.dropout > 0 else nn.Identity()
        self.reset_adapters(generator=generator)

    # ------------------------------------------------------------------ properties
    @property
    def n_classes(self) -> int:
        return self.config.n_classes

    @property
    def rank(self) -> int:
        return self.config.rank

    @property
    def scaling(self) -> float:
        return self.config.scaling

    @property
    def in_features(self) -> int:
        return self.base.in_features

    @property
    def out_features(self) -> int:
        return self.base.out_features

    def extra_repr(self) -> str:
        c = self.config
        return (
            f"n_classes={c.n_classes}, rank={c.rank}, k={c.k}, routing={c.routing!r}, "
            f"scaling={c.scaling:g}, multilabel={self.multilabel}"
        )

    # ------------------------------------------------------------------ init
    @torch.no_grad()
    def reset_adapters(self, generator: torch.Generator | None = None) -> None:
        """Re-initialise the adapters as in peft: A random (see ``CALoRAConfig.init``), B zeros."""
        shape = tuple(self.lora_A.shape)
        if self.config.init == "kaiming":
            # kaiming_uniform_(a=sqrt(5)) with fan_in = d_in gives bound 1/sqrt(d_in)
            bound = 1.0 / math.sqrt(self.in_features) if self.in_features > 0 else 0.0
            a = torch.empty(shape, dtype=torch.float32).uniform_(-bound, bound, generator=generator)
        else:  # "gaussian"
            a = torch.empty(shape, dtype=torch.float32).normal_(0.0, 1.0 / self.rank, generator=generator)
        self.lora_A.copy_(a)
        self.lora_B.zero_()

    def adapter_parameters(self) -> list[nn.Parameter]:
        """The trainable parameters (``[lora_A, lora_B]``)."""
        return [self.lora_A, self.lora_B]

    # ------------------------------------------------------------------ forward
    def _check_route(self, x: torch.Tensor, route) -> torch.Tensor:
        route = torch.as_tensor(route, device=x.device)
        if not route.is_floating_point():
            route = route.float()
        route = route.to(x.dtype)
        C = self.n_classes
        if route.dim() == 0 or route.shape[-1] != C:
            raise ValueError(f"route must have shape (..., n_classes={C}), got {tuple(route.shape)}.")
        lead_x, lead_r = tuple(x.shape[:-1]), tuple(route.shape[:-1])
        if lead_r == lead_x:
            return route
        if x.dim() == 3 and route.dim() == 2 and route.shape[0] == x.shape[0]:
            return route.unsqueeze(1)  # one gate per sequence, shared by its tokens
        raise ValueError(
            f"route of shape {tuple(route.shape)} does not match x of shape {tuple(x.shape)}: "
            f"expected {lead_x + (C,)}" + (f" or {(x.shape[0], C)}" if x.dim() == 3 else "") + "."
        )

    def _check_x(self, x) -> torch.Tensor:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}.")
        if x.dim() == 0 or x.shape[-1] != self.in_features:
            raise ValueError(
                f"x must have shape (..., in_features={self.in_features}), got {tuple(x.shape)}."
            )
        return x

    def adapter_output(self, x: torch.Tensor, route) -> torch.Tensor:
        """The adapter term alone: ``scaling * B M A dropout(x)``, shape ``(..., out_features)``."""
        x = self._check_x(x)
        route = self._check_route(x, route)
        C, r = self.n_classes, self.rank
        z = F.linear(self.lora_dropout(x), self.lora_A)  # (..., C*r)
        z = (z.unflatten(-1, (C, r)) * route.unsqueeze(-1)).flatten(-2)  # gate each class block
        out = F.linear(z, self.lora_B)
        return out * self.scaling if self.scaling != 1.0 else out

    def forward(self, x: torch.Tensor, route=None) -> torch.Tensor:
        """``base(x) + scaling * B M A dropout(x)``.

        Parameters
        ----------
        x : Tensor, shape (N, d_in) or (N, T, d_in)
        route : Tensor, shape (N, C), (N, T, C) (per token) or, for 3-D ``x``, (N, C) shared by
            the tokens of a sequence. Gate weight of each class adapter: 0/1 for
            pseudo/topk/oracle routing, renormalised probabilities for soft routing (see
            :func:`route_from_logits`). ``None`` self-routes from ``base(x)`` with the config's
            inference rule; valid only when ``base`` *is* the stage-1 classification head, whose
            frozen output is exactly the stage-1 logits ("routing at the final layer": a single
            pass).
        """
        x = self._check_x(x)
        out = self.base(x)
        if not self.adapters_enabled:
            return out
        if route is None:
            if self.out_features != self.n_classes:
                raise ValueError(
                    "route=None (self-routing from base(x)) needs base to be the classification head "
                    f"with out_features == n_classes ({self.n_classes}), got {self.out_features}; "
                    "pass route computed from the stage-1 logits."
                )
            route = route_from_logits(
                out, self.config.routing, self.config.k, training=False, multilabel=self.multilabel
            )
        return out + self.adapter_output(x, route)

    # ------------------------------------------------------------------ inspection
    def _check_route_row(self, route_row) -> torch.Tensor:
        w = self.lora_A
        row = torch.as_tensor(route_row, device=w.device)
        row = row.to(w.dtype)
        if row.shape != (self.n_classes,):
            raise ValueError(f"route_row must have shape ({self.n_classes},), got {tuple(row.shape)}.")
        return row

    @torch.no_grad()
    def delta_weight(self, route_row) -> torch.Tensor:
        """``scaling * Σ_i route_row[i] B_i A_i``, shape ``(out_features, in_features)``."""
        row = self._check_route_row(route_row)
        gate = row.repeat_interleave(self.rank)  # diagonal of M
        return (self.lora_B * gate) @ self.lora_A * self.scaling

    @torch.no_grad()
    def merged_weight(self, route_row) -> torch.Tensor:
        """The dense weight ``W0 + scaling * B M A`` for one gate row (C,), a detached new tensor.

        ``F.linear(x, layer.merged_weight(g), layer.base.bias)`` equals ``layer(x, g)`` (no dropout).
        """
        return self.base.weight.detach() + self.delta_weight(route_row)

    @torch.no_grad()
    def adapter_norms(self, *, scaled: bool = True) -> np.ndarray:
        """Per-class Frobenius norm ``||scaling · B_i A_i||_F`` as a float64 array of shape (C,).

        With ``scaled=False`` the scaling factor is left out (identical under the default
        ``alpha=None``). Computed from r×r Gram matrices, never forming the d_out×d_in products.
        """
        C, r = self.n_classes, self.rank
        A = self.lora_A.detach().double().reshape(C, r, self.in_features)
        B = self.lora_B.detach().double().reshape(self.out_features, C, r).permute(1, 0, 2)
        gram_a = A @ A.transpose(1, 2)  # (C, r, r)
        gram_b = B.transpose(1, 2) @ B  # (C, r, r)
        sq = (gram_a * gram_b).sum(dim=(1, 2)).clamp_min(0.0)
        norms = sq.sqrt().cpu().numpy()
        return norms * abs(self.scaling) if scaled else norms


@contextmanager
def class_adapters_disabled(module: nn.Module):
    """Within it every :class:`ClassRoutedLoRA` in ``module`` computes its frozen ``base`` alone,
    so that ``module`` is the stage-1 model again (as peft's ``disable_adapter``); restored on exit,
    also from a nested block or an exception. Copies and pickles made inside it have their adapters
    on. For a fitted estimator use ``est.disable_class_adapters()``.

    Yields the number of layers disabled (0: ``module`` has no class adapters).

    Examples
    --------
    >>> head = nn.Linear(4, 3)
    >>> layer = ClassRoutedLoRA(head, CALoRAConfig(n_classes=3, rank=1, k=2))
    >>> with torch.no_grad():
    ...     _ = layer.lora_B.fill_(1.0)
    >>> x = torch.ones(1, 4)
    >>> with class_adapters_disabled(layer) as n:
    ...     print(n, bool(torch.equal(layer(x), head(x))))
    1 True
    >>> bool(torch.equal(layer(x), head(x)))
    False
    """
    layers = [m for m in module.modules() if isinstance(m, ClassRoutedLoRA)]
    saved = [m.adapters_enabled for m in layers]
    for m in layers:
        m.adapters_enabled = False
    try:
        yield len(layers)
    finally:
        for m, enabled in zip(layers, saved):
            m.adapters_enabled = enabled


def class_adapters_off(module: nn.Module) -> bool:
    """Whether some :class:`ClassRoutedLoRA` in ``module`` is disabled (:func:`class_adapters_disabled`)."""
    return any(isinstance(m, ClassRoutedLoRA) and not m.adapters_enabled for m in module.modules())
