"""Deterministic pool of Legal Entity Identifiers (ISO 17442).

LEI ``i`` depends on ``i`` alone, so a pool of N is a prefix of every larger pool: growing
``lei_pool_size`` never renames existing counterparties.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache

# The pool is built in Python once per size; about 2.4 million LEIs exist worldwide, and a pool of
# this size already takes seconds to build.
MAX_POOL_SIZE = 100_000

_ALNUM = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
# Prefixes of real LEI issuing organisations (LOUs): four characters each.
_LOU_PREFIXES = ("5493", "2138", "9695", "7245", "5299", "8156", "3912", "9845", "635400", "HWUP")


def check_digits(base18: str) -> str:
    """The two ISO 7064 mod 97-10 check digits for an 18-character LEI base."""
    numeric = int("".join(str(_ALNUM.index(c)) for c in base18.upper()) + "00")
    return f"{98 - numeric % 97:02d}"


def is_valid_lei(lei: str) -> bool:
    if len(lei) != 20 or any(c not in _ALNUM for c in lei):
        return False
    return int("".join(str(_ALNUM.index(c)) for c in lei)) % 97 == 1


def lei(index: int) -> str:
    """The ``index``-th LEI of the pool."""
    digest = hashlib.blake2b(f"mkt_pipeline/lei/{index}".encode(), digest_size=16).digest()
    prefix = _LOU_PREFIXES[digest[0] % len(_LOU_PREFIXES)]
    body = "".join(_ALNUM[b % 36] for b in digest[1:])
    base = (prefix + "00" + body)[:18] if len(prefix) == 4 else (prefix + body)[:18]
    return base + check_digits(base)


@lru_cache(maxsize=8)
def lei_pool(size: int) -> tuple[str, ...]:
    """The first ``size`` LEIs."""
    return tuple(lei(i) for i in range(size))
