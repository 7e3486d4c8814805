"""Tagging-scheme names and their aliases, shared by ``skimb.tokens`` and ``skimb.metrics`` (a leaf
module: it imports nothing, so the span metrics stay free of torch)."""

from __future__ import annotations

__all__ = ["SCHEME_ALIASES", "check_scheme"]

SCHEME_ALIASES = {
    "IOB2": "IOB2",
    "BIO": "IOB2",
    "IOB1": "IOB1",
    "IOB": "IOB1",
    "IOBES": "IOBES",
    "BIOES": "IOBES",
    "BILOU": "BILOU",
}


def check_scheme(scheme, what: str = "scheme") -> str:
    """The canonical name of a tagging scheme (aliases and any case accepted).

    >>> check_scheme("bio"), check_scheme("BIOES")
    ('IOB2', 'IOBES')
    """
    if not isinstance(scheme, str):
        raise TypeError(f"{what} must be a string, got {type(scheme).__name__}.")
    key = scheme.strip().upper()
    if key not in SCHEME_ALIASES:
        raise ValueError(
            f"Unknown {what} {scheme!r}; expected one of 'IOB2' ('BIO'), 'IOB1' ('IOB'), "
            "'IOBES' ('BIOES') or 'BILOU'."
        )
    return SCHEME_ALIASES[key]
