"""Counter-based random streams keyed by (seed, stream, *parts).

Every random number the engines draw comes from a Philox generator whose key is a pure function of
the dataset seed, a stream name and integer parts such as an absolute second or an hour index. No
generator is ever carried from one window to the next, so the rows of a window do not depend on
how the work was split (docs/data-model.md#stateless-time).
"""

from __future__ import annotations

import hashlib
from functools import cache

import numpy as np

_MASK64 = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15


def _splitmix64(z: int) -> int:
    z = (z + _GOLDEN) & _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return z ^ (z >> 31)


@cache
def _stream_id(stream: str) -> int:
    return int.from_bytes(hashlib.blake2b(stream.encode(), digest_size=8).digest(), "little")


def stream_key(seed: int, stream: str, *parts: int) -> tuple[int, int]:
    """Two 64-bit words identifying one random stream."""
    h = _splitmix64((seed & _MASK64) ^ _stream_id(stream))
    for part in parts:
        h = _splitmix64(h ^ (int(part) & _MASK64))
    return h, _splitmix64(h ^ 0xD1B54A32D192ED03)


def keyed_rng(seed: int, stream: str, *parts: int) -> np.random.Generator:
    """A fresh generator for one (seed, stream, parts) key; same key, same numbers."""
    return np.random.Generator(np.random.Philox(key=np.array(stream_key(seed, stream, *parts), dtype=np.uint64)))


def mix64(values: np.ndarray, key: int) -> np.ndarray:
    """Vectorised splitmix64 of ``values ^ key`` (uint64); a cheap keyed hash for ids."""
    z = values.astype(np.uint64) ^ np.uint64(key & _MASK64)
    z += np.uint64(_GOLDEN)
    z ^= z >> np.uint64(30)
    z *= np.uint64(0xBF58476D1CE4E5B9)
    z ^= z >> np.uint64(27)
    z *= np.uint64(0x94D049BB133111EB)
    z ^= z >> np.uint64(31)
    return z


def uuid4_words(seed: int, stream: str, counters: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic version-4 UUIDs as (high, low) uint64 words, one per counter value."""
    k1, k2 = stream_key(seed, stream)
    hi = mix64(counters, k1)
    lo = mix64(counters, k2)
    # version nibble 4 in bits 12-15 of time_hi; RFC 4122 variant 0b10 in the top bits of clock_seq
    hi = (hi & np.uint64(0xFFFFFFFFFFFF0FFF)) | np.uint64(0x0000000000004000)
    lo = (lo & np.uint64(0x3FFFFFFFFFFFFFFF)) | np.uint64(0x8000000000000000)
    return hi, lo


def uuid_strings(hi: np.ndarray, lo: np.ndarray) -> np.ndarray:
    """Canonical 36-character strings for UUID words (object array)."""
    out = np.empty(len(hi), dtype=object)
    for i, (h, l) in enumerate(zip(hi.tolist(), lo.tolist())):
        x = f"{h:016x}{l:016x}"
        out[i] = f"{x[:8]}-{x[8:12]}-{x[12:16]}-{x[16:20]}-{x[20:]}"
    return out
