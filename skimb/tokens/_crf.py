"""A linear-chain CRF over IOB2 tags: learned tag-to-tag scores on top of per-word emissions.

The tagger's linear head gives each word an emission score per tag; the CRF adds a score for
every pair of consecutive tags, one for the first tag and one for the last, and trains them with
the model by the negative log-likelihood of the gold sequence (Lafferty et al., 2001; the
BERT-CRF taggers of Souza et al., 2019). Transitions that no IOB2 sequence takes (``I-X`` after
anything but ``B-X`` or ``I-X``) are forbidden in training and decoding alike.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ._bio import iob2_transitions, validate_tags

__all__ = ["LinearChainCRF"]

#: The score of a forbidden transition: finite, so that no log-sum-exp of forbidden paths alone
#: is NaN, and low enough that no allowed path loses to a forbidden one.
_FORBIDDEN = -1e4


class LinearChainCRF(nn.Module):
    """Learned transition, start and end scores over the IOB2 tags ``labels``.

    A sentence never begins with ``I-X``: training and decoding alike forbid it there. A window
    of a long sentence may start or end inside an entity, so where the windows' ``edges`` say a
    window's first (last) word is not its sentence's, training leaves that tag free (``I-X`` may
    come first) and without a start (end) score: those scores learn how sentences begin and end,
    not where windows are cut.

    Parameters
    ----------
    labels : sequence of str
        The IOB2 tag of each emission column (``O``, ``B-X``, ``I-X``).

    Examples
    --------
    >>> import torch
    >>> crf = LinearChainCRF(["O", "B-PER", "I-PER"])
    >>> emissions = torch.zeros(1, 3, 3)
    >>> tags = torch.tensor([[1, -100, 2]])          # a sub-token between two words: no label
    >>> mask = tags != -100
    >>> round(crf.nll(emissions, tags, mask).detach()[0].item(), 4)  # log 5: the 5 tag pairs IOB2 allows a sentence to open with
    1.6094
    >>> cut = torch.tensor([[False, True]])            # a window cut inside its sentence: I-PER may come first
    >>> round(crf.nll(emissions, tags, mask, edges=cut).detach()[0].item(), 4)  # log 8
    2.0794
    """

    #: The CRF's learning rate over the tagger's: its scores start at 0 and must move by whole
    #: units in a few thousand steps at the encoder's rate of 1e-4 to 4e-4.
    lr_multiplier = 100.0

    def __init__(self, labels):
        super().__init__()
        labels = [str(t) for t in labels]
        validate_tags([labels], "IOB2")  # the forbidden transitions are IOB2's
        repeated = sorted({t for t in labels if labels.count(t) > 1})
        if repeated:
            raise ValueError(f"labels must be distinct (one emission column each); {repeated} repeat.")
        allowed, inside = iob2_transitions(labels)
        n = len(labels)
        self.transitions = nn.Parameter(torch.zeros(n, n))  # [previous tag, next tag]
        self.start = nn.Parameter(torch.zeros(n))
        self.end = nn.Parameter(torch.zeros(n))
        self.register_buffer("allowed", torch.from_numpy(allowed), persistent=False)
        self.register_buffer("inside", torch.from_numpy(inside), persistent=False)

    def _transition_scores(self):
        return self.transitions.masked_fill(~self.allowed, _FORBIDDEN)

    def nll(self, emissions, tags, mask, edges=None):
        """Negative log-likelihood of each row's gold tags, ``(B,)``.

        Parameters
        ----------
        emissions : tensor of shape (B, T, L)
            Per-position tag scores (float32 or wider).
        tags : tensor of shape (B, T), int
            Gold tag indices; read only where ``mask`` holds.
        mask : tensor of shape (B, T), bool
            The labelled positions (a word's first sub-token); the others (further sub-tokens,
            special tokens, padding) are skipped, so a row's tags chain word to word. A row
            without a labelled position has loss 0.
        edges : tensor of shape (B, 2), bool, optional
            Whether each row's first labelled position is its sentence's first word, and its last
            the sentence's last: the start (end) score, and the rule that no ``I-X`` comes first,
            apply only there. None: every row is a whole sentence.
        """
        em, tg, valid, _ = _pack(emissions, tags, mask)
        if em.shape[1] == 0:
            return emissions.new_zeros(len(emissions))
        trans = self._transition_scores()
        lengths = valid.sum(1)
        start, end = self._edge_scores(self._start_scores(), edges, len(em), em.device)
        # the partition function, by the forward algorithm
        alpha = start + em[:, 0]
        for t in range(1, em.shape[1]):
            step = torch.logsumexp(alpha[:, :, None] + trans, dim=1) + em[:, t]
            alpha = torch.where(valid[:, t, None], step, alpha)
        log_z = torch.logsumexp(alpha + end, dim=1)
        # the gold path's score
        tg = tg.clamp(min=0)
        gold = (em.gather(2, tg[..., None]).squeeze(-1) * valid).sum(1)
        gold = gold + (trans[tg[:, :-1], tg[:, 1:]] * valid[:, 1:]).sum(1) + start.gather(1, tg[:, :1]).squeeze(1)
        last = tg.gather(1, (lengths - 1).clamp(min=0)[:, None]).squeeze(1)
        gold = gold + end.gather(1, last[:, None]).squeeze(1)
        return torch.where(lengths > 0, log_z - gold, torch.zeros_like(log_z))

    def _start_scores(self):
        return self.start.masked_fill(self.inside, _FORBIDDEN)

    def _edge_scores(self, start, edges, n_rows, device):
        """Each row's ``start`` and end scores, ``(n_rows, L)`` each: 0 where ``edges`` says the row's
        first (last) position is a window's cut, not its sentence's edge."""
        start, end = start.expand(n_rows, -1), self.end.expand(n_rows, -1)
        if edges is None:
            return start, end
        edges = edges.to(device=device, dtype=torch.bool)
        return torch.where(edges[:, :1], start, 0.0), torch.where(edges[:, 1:], end, 0.0)

    def viterbi(self, emissions, mask, edges=None):
        """Each row's best tag path over its labelled positions, as :meth:`nll` chains them:
        ``(B, T)`` tag indices, -1 where ``mask`` is False. Where a row starts its sentence
        (``edges[:, 0]``; every row without ``edges``) the start scores apply and no ``I-X`` may come
        first; where it ends it (``edges[:, 1]``) the end scores apply; a cut edge is free.

        >>> crf = LinearChainCRF(["O", "B-PER", "I-PER"])
        >>> em = torch.log(torch.tensor([[[0.1, 0.2, 0.7], [0.9, 0.05, 0.05], [0.1, 0.1, 0.8]]]))
        >>> crf.viterbi(em, torch.tensor([[True, False, True]]))  # I-PER cannot open the sentence
        tensor([[ 1, -1,  2]])
        """
        with torch.no_grad():
            em, _, valid, order = _pack(emissions.float(), mask.long(), mask)
            out = torch.full(mask.shape, -1, dtype=torch.long, device=mask.device)
            if em.shape[1] == 0:
                return out
            n_rows, width, n_tags = em.shape
            trans = self._transition_scores()
            start, end = self._edge_scores(self._start_scores(), edges, n_rows, em.device)
            score, back = start + em[:, 0], []
            stay = torch.arange(n_tags, device=em.device).expand(n_rows, -1)  # past a row's end: keep its tag
            for t in range(1, width):
                best, prev = (score[:, :, None] + trans).max(dim=1)
                score = torch.where(valid[:, t, None], best + em[:, t], score)
                back.append(torch.where(valid[:, t, None], prev, stay))
            tag = (score + end).argmax(dim=1)
            path = [tag]
            for prev in reversed(back):
                tag = prev.gather(1, tag[:, None]).squeeze(1)
                path.append(tag)
            path = torch.stack(path[::-1], dim=1)
            return out.scatter(1, order, torch.where(valid, path, torch.full_like(path, -1)))

    def decoding_scores(self) -> dict:
        """``transitions``, ``start`` and ``end`` as float64 arrays for a whole sentence's decoding
        (:func:`skimb.tokens.constrained_decode`'s keyword arguments)."""
        with torch.no_grad():
            return {"transitions": self.transitions.detach().double().cpu().numpy(),
                    "start": self.start.detach().double().cpu().numpy(),
                    "end": self.end.detach().double().cpu().numpy()}

    def marginals(self, emissions) -> np.ndarray:
        """Each word's tag probabilities under the CRF, ``(T, L)`` (forward-backward over valid
        sequences; rows sum to 1).

        >>> crf = LinearChainCRF(["O", "B-PER", "I-PER"])
        >>> crf.marginals(np.zeros((2, 3))).round(4)  # 5 valid sequences, I-PER never first
        array([[0.4, 0.6, 0. ],
               [0.4, 0.4, 0.2]])
        """
        em = torch.as_tensor(np.asarray(emissions), dtype=torch.float64)
        if em.ndim != 2 or em.shape[1] != len(self.allowed):
            raise ValueError(f"emissions must be (n_words, {len(self.allowed)}), got shape {tuple(em.shape)}.")
        if not len(em):
            return np.zeros((0, em.shape[1]))
        with torch.no_grad():  # on the CPU, wherever the model is
            allowed, inside = self.allowed.cpu(), self.inside.cpu()
            trans = self.transitions.detach().double().cpu().masked_fill(~allowed, -torch.inf)
            start = self.start.detach().double().cpu().masked_fill(inside, -torch.inf)
            fwd = [start + em[0]]
            for t in range(1, len(em)):
                fwd.append(torch.logsumexp(fwd[-1][:, None] + trans, dim=0) + em[t])
            bwd = [self.end.detach().double().cpu()]
            for t in range(len(em) - 1, 0, -1):
                bwd.append(torch.logsumexp(trans + (em[t] + bwd[-1])[None, :], dim=1))
            log_p = torch.stack(fwd) + torch.stack(bwd[::-1])
            return torch.softmax(log_p, dim=1).numpy()


def _pack(emissions, tags, mask):
    """The labelled positions of each row moved to its front, in order: ``(emissions, tags, valid,
    order)`` of width the most labelled positions of any row (``order``: their original positions)."""
    order = torch.sort((~mask).to(torch.int8), dim=1, stable=True).indices
    width = int(mask.sum(1).max()) if mask.numel() else 0
    order = order[:, :width]
    em = emissions.gather(1, order[..., None].expand(-1, -1, emissions.shape[-1]))
    return em, tags.gather(1, order), mask.gather(1, order), order
