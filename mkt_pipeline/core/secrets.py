"""Keeping secrets out of messages: every text that may be logged or raised passes through ``scrub``."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

REDACTED = "***"

# Well-known defaults are not secrets: QuestDB's stock password appears in its docs, and scrubbing
# it would mangle ordinary words ("io.questdb", a table named "market_data_request").
NOT_SECRETS = frozenset({"quest"})

# A short secret is replaced only where it stands as a whole token (not inside a longer run of
# letters, digits or base64 characters), so it never eats part of a word; a long one (a token, a
# key) is replaced wherever it appears, even glued to other text.
_TOKEN_CHARS = r"A-Za-z0-9_\-+/"
_LONG_SECRET = 8


def scrubbable_secrets(candidates: Iterable[str | None]) -> list[str]:
    """The values worth scrubbing: non-empty, not a well-known default; longest first."""
    return sorted({s for s in candidates if s and s not in NOT_SECRETS}, key=len, reverse=True)


def scrub(text: str, secrets: Sequence[str]) -> str:
    """``text`` on one line with every secret replaced by ``***`` (longest first, so none leaks in part)."""
    line = " ".join(str(text).split())
    for secret in scrubbable_secrets(secrets):
        if len(secret) >= _LONG_SECRET:
            line = line.replace(secret, REDACTED)
        else:
            line = re.sub(rf"(?<![{_TOKEN_CHARS}]){re.escape(secret)}(?![{_TOKEN_CHARS}])", REDACTED, line)
    return line


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message, or its type name when it has none."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
