"""Keeping secrets out of messages: every text that may be logged or raised passes through ``scrub``."""

from __future__ import annotations

from typing import Sequence

REDACTED = "***"


def scrub(text: str, secrets: Sequence[str]) -> str:
    """``text`` on one line with every secret replaced by ``***`` (longest first, so none leaks in part)."""
    line = " ".join(str(text).split())
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        line = line.replace(secret, REDACTED)
    return line
