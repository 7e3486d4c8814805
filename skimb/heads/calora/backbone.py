"""CALoRA beyond the head: class-routed adapters on ``nn.Linear`` layers inside the backbone.

METHODS.md §1 lets CALoRA adapt "the classification head, optionally other linear layers". The
adapted layers sit inside the encoder, so their route cannot come from a cached feature: a
prediction runs the frozen (stage-1) model once to rank the classes, then the adapted blocks again
from their input in that pass, with the routed adapters on (:class:`LayerRouting`). Stage 2 trains
the backbone's adapters on the training texts, each routed by its stage-1 logits, one adapted
forward per step (:func:`fit_calora_layers`; the estimator first trains the head's adapters on
cached features, as head-only CALoRA does, and keeps them frozen here).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from ...backbones._modules import float32_head
from ...losses._base import per_item_losses
from .config import CALoRAConfig
from .layer import ClassRoutedLoRA
from .routing import route_from_logits
from .train import _make_generator

__all__ = ["LayerRouting", "RoutedLinear", "RoutedHead", "select_linear_layers", "install_routed_layers",
           "fit_calora_layers"]


def _is_adapter(name: str) -> bool:
    # peft's own LoRA factors are nn.Linear too; never adapt an adapter
    return any(part.startswith("lora_") for part in name.split("."))


def _blocks(model: nn.Module) -> tuple[nn.ModuleList, list[str]]:
    """The transformer blocks (the longest ``nn.ModuleList`` of same-typed modules) and each one's
    name prefix in ``model.named_modules()`` (``"encoder.layer.5."``)."""
    best, best_name = None, None
    for name, module in model.named_modules():
        if isinstance(module, nn.ModuleList) and len(module) and len({type(m) for m in module}) == 1:
            if best is None or len(module) > len(best):
                best, best_name = module, name
    if best is None:
        raise ValueError(f"{type(model).__name__} has no list of transformer blocks; name the layers to adapt.")
    return best, [f"{best_name}.{i}." if best_name else f"{i}." for i in range(len(best))]


def select_linear_layers(model: nn.Module, layers, *, param: str = "layers") -> list[str]:
    """Names (in ``model.named_modules()``) of the ``nn.Linear`` layers that ``layers`` selects.

    ``layers="last"`` selects every linear layer of the last transformer block (the longest
    ``nn.ModuleList`` of same-typed modules); a list of strings selects each linear layer whose
    name equals an entry or ends with ``"." + entry``, and every entry must select one. ``param``
    names ``layers`` in errors (an estimator's ``head__layers``).

    >>> from transformers import BertConfig, BertModel
    >>> bert = BertModel(BertConfig(hidden_size=8, num_hidden_layers=2, num_attention_heads=2,
    ...                             intermediate_size=16, vocab_size=30))
    >>> select_linear_layers(bert, "last")  # doctest: +NORMALIZE_WHITESPACE
    ['encoder.layer.1.attention.self.query', 'encoder.layer.1.attention.self.key',
     'encoder.layer.1.attention.self.value', 'encoder.layer.1.attention.output.dense',
     'encoder.layer.1.intermediate.dense', 'encoder.layer.1.output.dense']
    >>> select_linear_layers(bert, ["1.attention.self.query"])
    ['encoder.layer.1.attention.self.query']
    """
    linear = [name for name, m in model.named_modules() if isinstance(m, nn.Linear) and not _is_adapter(name)]
    if isinstance(layers, str):
        if layers != "last":
            raise ValueError(f"{param} must be 'last' or a list of layer names, got {layers!r}.")
        try:
            last = _blocks(model)[1][-1]
        except ValueError:
            raise ValueError(f"{param}='last': {type(model).__name__} has no list of transformer blocks; name the "
                             f"layers to adapt in {param} (a list of nn.Linear names).") from None
        return [name for name in linear if name.startswith(last)]
    chosen = []
    for entry in layers:
        hits = [name for name in linear if name == entry or name.endswith("." + entry)]
        if not hits:
            shown = ", ".join(linear[-6:])
            raise ValueError(f"{param} entry {entry!r} names no nn.Linear layer of the backbone; its last linear "
                             f"layers are: {shown} (an entry matches a name or its dotted ending).")
        chosen.extend(h for h in hits if h not in chosen)
    return chosen


class LayerRouting:
    """The route shared by a model's routed layers, and the two-pass encoding that sets it.

    ``route`` is None (every adapter off: the frozen stage-1 model) or the ``(batch, C)`` gate of
    the batch being encoded; :meth:`encode` computes it from the frozen model's logits, or takes
    ``preset`` (stage 2 sets it to the training texts' routes). A plain object, not a module: it
    holds no weights, only references to the frozen stage-1 head and the transformer blocks.

    The second pass starts at the first transformer block that holds an adapter (``first_block``),
    from that block's input in the frozen pass, so a prediction costs one pass plus the adapted
    blocks again. ``resume`` records whether that shortcut reproduces the whole second pass for
    this backbone (checked on the first batch; None until then).
    """

    def __init__(self, config: CALoRAConfig, stage1_head: nn.Module, *, multilabel: bool = False, blocks=None,
                 first_block=None):
        self.config = config
        self.stage1_head = stage1_head
        self.multilabel = bool(multilabel)
        self.blocks = blocks
        self.first_block = first_block
        self.resume = None
        self.route = None
        self.preset = None

    def encode(self, encoder, input_ids, attention_mask, token_type_ids=None):
        """Features of the adapted ``encoder`` (a :class:`~skimb.backbones.TextEncoder`) for a
        batch: a frozen pass ranks the classes (unless a route is preset), then the adapted pass
        runs with that route, which stays set for the head (:class:`RoutedHead` takes it)."""
        if self.preset is not None:
            self.route = self.preset
            return encoder.encode_tokens(input_ids, attention_mask, token_type_ids)
        self.route = None
        captured = {}
        hook = None
        if self.first_block is not None and self.resume is not False:
            hook = self.blocks[self.first_block].register_forward_pre_hook(
                lambda module, args, kwargs: captured.update(args=args, kwargs=kwargs), with_kwargs=True)
        try:
            with torch.no_grad():
                stage1 = encoder.encode_tokens(input_ids, attention_mask, token_type_ids)
                logits = float32_head(self.stage1_head, stage1)
        finally:
            if hook is not None:
                hook.remove()
        self.route = route_from_logits(logits, self.config.routing, self.config.k, multilabel=self.multilabel)
        if not captured:
            return encoder.encode_tokens(input_ids, attention_mask, token_type_ids)
        resumed = self._resume(encoder, captured["args"], captured["kwargs"], attention_mask)
        if self.resume is None:  # first batch: keep the shortcut only where it is exact
            full = encoder.encode_tokens(input_ids, attention_mask, token_type_ids)
            self.resume = bool(torch.allclose(full, resumed, rtol=1e-4, atol=1e-5))
            return full
        return resumed

    def _resume(self, encoder, args, kwargs, attention_mask):
        hidden = args[0] if args else kwargs["hidden_states"]
        for block in self.blocks[self.first_block:]:
            out = block(hidden, *args[1:], **kwargs) if args else block(**{**kwargs, "hidden_states": hidden})
            hidden = out[0] if isinstance(out, (tuple, list)) else out
        return encoder.finish(hidden, attention_mask)

    def take(self, n: int):
        """The route of the ``n`` features just encoded, cleared (the head is the last layer to use
        it); None when there is none for them (the head then routes by its frozen logits)."""
        route, self.route = self.route, None
        return route if route is not None and len(route) == n else None


class RoutedLinear(nn.Module):
    """A backbone ``nn.Linear`` with class adapters gated by the shared :class:`LayerRouting`
    (the frozen layer when no route is set)."""

    def __init__(self, base: nn.Linear, config: CALoRAConfig, routing: LayerRouting, *, generator=None):
        super().__init__()
        self.lora = ClassRoutedLoRA(base, config, generator=generator)
        self.routing = routing

    def forward(self, x):
        route = self.routing.route
        if route is None:
            return self.lora.base(x)
        return self.lora(x, route.to(x.dtype))


class RoutedHead(nn.Module):
    """The classification head's class adapters, routed like the backbone's: by the route the
    encoder used for this batch, or, on features alone, by the frozen head's own logits."""

    def __init__(self, layer: ClassRoutedLoRA, routing: LayerRouting):
        super().__init__()
        self.layer = layer
        self.routing = routing

    @property
    def base(self) -> nn.Linear:
        return self.layer.base

    @property
    def out_features(self) -> int:
        return self.layer.out_features

    def adapter_norms(self, **kwargs):
        return self.layer.adapter_norms(**kwargs)

    def forward(self, x):
        return self.layer(x, self.routing.take(len(x)))


def _first_block(backbone: nn.Module, layer_names):
    """``(blocks, index of the first block holding a named layer)``, or ``(None, None)`` when a
    layer lies outside the transformer blocks."""
    try:
        blocks, prefixes = _blocks(backbone)
    except ValueError:
        return None, None
    found = [next((i for i, p in enumerate(prefixes) if name.startswith(p)), None) for name in layer_names]
    if not found or None in found:
        return None, None
    return blocks, min(found)


def install_routed_layers(module: nn.Module, config: CALoRAConfig, layer_names, *, multilabel=False,
                          generator=None, head_layer=None) -> LayerRouting:
    """Wrap ``module.head`` and the named linear layers of ``module.encoder.backbone`` with class
    adapters (zero at first: the model computes what it did) and route them together;
    ``head_layer``: the head's adapters, already wrapped around ``module.head``."""
    backbone = module.encoder.backbone
    blocks, first = _first_block(backbone, layer_names)
    routing = LayerRouting(config, module.head, multilabel=multilabel, blocks=blocks, first_block=first)
    for name in layer_names:
        parent_name, _, attr = name.rpartition(".")
        parent = backbone.get_submodule(parent_name) if parent_name else backbone
        setattr(parent, attr, RoutedLinear(getattr(parent, attr), config, routing, generator=generator))
    if head_layer is None:
        head_layer = ClassRoutedLoRA(module.head, config, multilabel=multilabel, generator=generator)
    elif head_layer.base is not module.head:
        raise ValueError("head_layer must wrap module.head (fit_calora_head(module.head, ...)).")
    module.head = RoutedHead(head_layer, routing)
    module.encoder.routing = routing
    return routing


def adapter_parameters(module: nn.Module) -> list[nn.Parameter]:
    """Every class adapter's parameters in ``module`` (the only ones stage 2 trains)."""
    return [p for m in module.modules() if isinstance(m, ClassRoutedLoRA) for p in m.adapter_parameters()]


def fit_calora_layers(module, input_ids, stage1_logits, y, *, config: CALoRAConfig, layer_names, loss_fn,
                      sample_weight=None, epochs: int = 3, lr: float = 1e-3, batch_size: int = 16,
                      random_state=None, multilabel: bool = False, device="cpu", pad_token_id: int = 0,
                      progress=None, head_layer=None) -> LayerRouting:
    """Stage 2 of CALoRA with adapters inside the backbone: train them (and the head's) in place.

    Every weight of ``module`` (a ``skimb.backbones.SequenceClassifier`` whose
    ``encoder.backbone`` holds ``layer_names``) stays frozen; the adapters train with AdamW on
    ``mean(sample_weight * loss_fn(logits, y))`` over length-grouped batches of ``input_ids``,
    each text routed by its ``stage1_logits`` (``"oracle"``: by ``y``). The model runs in eval mode
    (no dropout). ``head_layer`` (the head's adapters, trained by :func:`fit_calora_head` on
    ``module.head``) is installed and kept frozen, so that only the backbone's adapters train;
    without it the head's adapters start at zero and train with them. Returns the routing;
    ``module`` then predicts with a frozen pass and the adapted blocks again. A ``KeyboardInterrupt``
    ends training with the adapters as they are (``routing.interrupted_``).
    """
    from ...backbones._batching import LengthGroupedBatchSampler, pad_collate

    gen = _make_generator(random_state)
    dev = torch.device(device)
    Y = torch.as_tensor(np.asarray(y)).to(dev)
    Y = Y.float() if multilabel else Y.long()
    W = torch.ones(len(Y)) if sample_weight is None else torch.as_tensor(sample_weight, dtype=torch.float32)
    routes = route_from_logits(torch.as_tensor(stage1_logits), config.routing, config.k, targets=Y.cpu(),
                               training=True, multilabel=multilabel)
    for p in module.parameters():
        p.requires_grad_(False)
    routing = install_routed_layers(module, config, layer_names, multilabel=multilabel, generator=gen,
                                    head_layer=head_layer)
    if head_layer is not None:
        head_layer.requires_grad_(False)
    module.to(dev).eval()
    params = [p for p in adapter_parameters(module) if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    sampler = LengthGroupedBatchSampler([len(ids) for ids in input_ids], batch_size,
                                        seed=int(torch.randint(0, 2**31 - 1, (1,), generator=gen)))
    history = []
    routing.interrupted_ = False
    try:  # an interrupted stage 2 leaves a model that predicts with its adapters as they are
        for epoch in range(epochs):
            total = 0.0
            for idx in sampler:
                batch, _ = pad_collate([({"input_ids": input_ids[i], "index": 0}, 0) for i in idx],
                                       pad_token_id=pad_token_id)
                routing.preset = routes[idx].to(dev)
                logits = module(input_ids=batch["input_ids"].to(dev), attention_mask=batch["attention_mask"].to(dev))
                loss = (W[idx].to(dev) * per_item_losses(loss_fn(logits, Y[idx]), len(idx), loss_fn)).mean()
                value = float(loss.detach())
                if not math.isfinite(value):  # before the step: the adapters keep their last finite values
                    raise FloatingPointError(f"non-finite stage-2 loss at epoch {epoch} ({value}); lower lr.")
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                total += value * len(idx)
            history.append(total / len(Y))
            if progress is not None:
                progress.update()
    except KeyboardInterrupt:
        routing.interrupted_ = True
    finally:
        routing.preset = routing.route = None
    module.loss_history_ = history
    return routing
