"""LEIs, deterministic UUIDs, and reference prices (yfinance replaced by a fake module; cache, fallback)."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import types
import uuid

import numpy as np
import pandas as pd
import pytest

from mkt_pipeline.core.keyed_random import uuid4_words, uuid_strings
from mkt_pipeline.core.lei import check_digits, is_valid_lei, lei_pool
from mkt_pipeline.core.reference_prices import ReferencePrices, load_reference_prices, reference_days
from mkt_pipeline.fx import universe as fxu


def test_lei_pool_valid_deterministic_prefix_stable():
    small, big = lei_pool(50), lei_pool(2000)
    assert big[:50] == small and len(set(big)) == 2000
    assert all(len(x) == 20 and is_valid_lei(x) for x in big)
    assert check_digits("5493001KJTIIGC8Y1R") == "12"  # a published LEI: 5493001KJTIIGC8Y1R12
    assert not is_valid_lei(big[0][:-1] + ("0" if big[0][-1] != "0" else "1"))


def test_uuid4_words_are_valid_deterministic_and_keyed():
    counters = np.arange(1000, dtype=np.uint64)
    a = uuid_strings(*uuid4_words(42, "x", counters))
    assert list(a) == list(uuid_strings(*uuid4_words(42, "x", counters)))
    assert set(a).isdisjoint(uuid_strings(*uuid4_words(43, "x", counters)))
    parsed = [uuid.UUID(s) for s in a]
    assert all(u.version == 4 and u.variant == uuid.RFC_4122 for u in parsed) and len(set(a)) == 1000


class _FakeYfinance(types.ModuleType):
    """Stands in for the ``yfinance`` module: ``download`` answers from a table, shaped as yfinance's frame."""

    def __init__(self):
        super().__init__("yfinance")
        self.calls: list[dict] = []

    def download(self, tickers, start=None, end=None, **kwargs):
        self.calls.append({"tickers": list(tickers), "start": start, "end": end, **kwargs})
        days = pd.date_range("2025-11-03", "2025-11-13", freq="D", name="Date")  # 3 to 13 November
        closes = {t: [1.1] * 8 + [np.nan, 1.3, 1.35] for t in tickers}  # no close on the 11th
        if "USDTRY=X" in closes:
            closes["USDTRY=X"] = [np.nan] * len(days)  # yfinance's answer for a ticker that failed
        fields = ("Adj Close", "Close", "High", "Low", "Open", "Volume")
        columns = pd.MultiIndex.from_product([fields, list(tickers)], names=["Price", "Ticker"])
        data = np.column_stack([np.asarray(closes[t], dtype=float) for _ in fields for t in tickers])
        return pd.DataFrame(data, index=days, columns=columns)


@pytest.fixture
def yahoo_answers(monkeypatch):
    """A local listener stands in for Yahoo's address, so the reachability probe succeeds offline."""
    import socket

    import mkt_pipeline.core.reference_prices as rp

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    monkeypatch.setattr(rp, "YAHOO_ADDRESS", listener.getsockname())
    yield listener
    listener.close()


@pytest.fixture
def fake_yfinance(monkeypatch, yahoo_answers):
    fake = _FakeYfinance()
    monkeypatch.setitem(sys.modules, "yfinance", fake)
    return fake


def test_yahoo_closes_cached_and_gap_filled_with_per_symbol_fallback(fake_yfinance, tmp_path):
    days = reference_days(dt.date(2025, 11, 11), dt.date(2025, 11, 13))
    refs = load_reference_prices(
        fxu.SYMBOLS, fxu.YAHOO_TICKERS, fxu.FALLBACK_LEVELS, days, offline=False, cache_dir=tmp_path
    )
    eur = fxu.SYMBOLS.index("EURUSD")
    # two days before the window (its look-back); a missing close carried forward
    assert [refs.close(d)[eur] for d in days] == [1.1, 1.1, 1.1, 1.3, 1.35]
    assert refs.sources["EURUSD"] == "yahoo" and refs.sources["USDTRY"] == "fallback"
    assert refs.source == "yahoo+fallback"
    assert refs.close(days[0])[fxu.SYMBOLS.index("USDTRY")] == fxu.FALLBACK_LEVELS["USDTRY"]
    # one threaded batch for every ticker, a week before the first day through the last, short timeout
    (call,) = fake_yfinance.calls
    assert sorted(call["tickers"]) == sorted(fxu.YAHOO_TICKERS.values())
    assert (call["start"], call["end"], call["interval"]) == ("2025-11-02", "2025-11-14", "1d")
    assert call["threads"] is True and call["timeout"] <= 5 and call["progress"] is False
    load_reference_prices(fxu.SYMBOLS, fxu.YAHOO_TICKERS, fxu.FALLBACK_LEVELS, days, offline=False, cache_dir=tmp_path)
    assert fake_yfinance.calls[1]["tickers"] == ["USDTRY=X"]  # cached: only the failing ticker is asked again
    assert ReferencePrices.from_json(json.loads(json.dumps(refs.to_json()))) == refs


def test_todays_bar_is_never_cached(fake_yfinance, tmp_path, monkeypatch):
    """A bar of the current UTC day is still moving: it is used by no day and never written to the cache."""
    import mkt_pipeline.core.reference_prices as rp

    monkeypatch.setattr(rp, "utc_today", lambda: dt.date(2025, 11, 13))
    days = reference_days(dt.date(2025, 11, 12), dt.date(2025, 11, 13))
    refs = load_reference_prices(
        ("EURUSD",), {"EURUSD": "EURUSD=X"}, {"EURUSD": 1.16}, days, offline=False, cache_dir=tmp_path
    )
    assert refs.close(dt.date(2025, 11, 13))[0] == 1.3  # yesterday's close carried forward, not today's 1.35
    cached = json.loads((tmp_path / "yahoo" / "EURUSD=X.json").read_text())
    assert max(cached) == "2025-11-12" and "2025-11-11" not in cached


def test_offline_never_imports_yfinance(monkeypatch, tmp_path):
    """MKT_OFFLINE=1: the built-in table, recorded as the source, without touching yfinance at all."""
    monkeypatch.setitem(sys.modules, "yfinance", None)  # an import would raise ImportError
    monkeypatch.setenv("MKT_OFFLINE", "1")
    days = reference_days(dt.date(2025, 11, 11), dt.date(2025, 11, 11))
    refs = load_reference_prices(
        fxu.SYMBOLS, fxu.YAHOO_TICKERS, fxu.FALLBACK_LEVELS, days, offline=True, cache_dir=tmp_path
    )
    assert refs.source == "fallback" and set(refs.sources.values()) == {"fallback"}
    assert refs.close(days[-1])[fxu.SYMBOLS.index("USDJPY")] == fxu.FALLBACK_LEVELS["USDJPY"]


def test_failing_yfinance_falls_back_per_symbol(monkeypatch, tmp_path, yahoo_answers):
    fake = types.ModuleType("yfinance")

    def download(*args, **kwargs):
        raise ConnectionError("Failed to perform, curl: (7) Could not connect to server")

    fake.download = download
    monkeypatch.setitem(sys.modules, "yfinance", fake)
    days = reference_days(dt.date(2025, 11, 11), dt.date(2025, 11, 11))
    refs = load_reference_prices(
        fxu.SYMBOLS, fxu.YAHOO_TICKERS, fxu.FALLBACK_LEVELS, days, offline=False, cache_dir=tmp_path
    )
    assert refs.source == "fallback"
    assert refs.close(days[1])[0] == fxu.FALLBACK_LEVELS["EURUSD"]
    assert not (tmp_path / "yahoo").exists()  # nothing cached from a failure


def test_unreachable_yahoo_costs_a_second_once_and_is_remembered(monkeypatch, tmp_path):
    """Out of reach: fall back within about a second, write a marker, and skip Yahoo until it expires."""
    import time

    import mkt_pipeline.core.reference_prices as rp
    from mkt_pipeline_tests.questdb_server import closed_port

    fake = _FakeYfinance()
    monkeypatch.setitem(sys.modules, "yfinance", fake)
    monkeypatch.setattr(rp, "YAHOO_ADDRESS", ("127.0.0.1", closed_port()))  # connection refused
    days = reference_days(dt.date(2025, 11, 11), dt.date(2025, 11, 11))

    def load():
        started = time.monotonic()
        refs = load_reference_prices(
            fxu.SYMBOLS, fxu.YAHOO_TICKERS, fxu.FALLBACK_LEVELS, days, offline=False, cache_dir=tmp_path
        )
        return refs, time.monotonic() - started

    refs, elapsed = load()
    assert refs.source == "fallback" and fake.calls == [] and elapsed < rp.PROBE_TIMEOUT_S + 0.5
    marker = json.loads((tmp_path / rp.UNREACHABLE_MARKER).read_text())
    assert marker["until"] == pytest.approx(time.time() + rp.UNREACHABLE_REMEMBER_S, abs=5) and marker["why"]
    # while the marker holds, Yahoo is not asked (nor probed), even once it would answer
    monkeypatch.setattr(rp, "YAHOO_ADDRESS", ("192.0.2.1", 443))  # TEST-NET: a probe here would take the whole second
    refs, elapsed = load()
    assert refs.source == "fallback" and fake.calls == [] and elapsed < 0.5
    # once it expires, the next run tries again
    (tmp_path / rp.UNREACHABLE_MARKER).write_text(json.dumps({**marker, "until": time.time() - 1}))
    with __import__("socket").socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        monkeypatch.setattr(rp, "YAHOO_ADDRESS", listener.getsockname())
        refs, _ = load()
    assert len(fake.calls) == 1 and refs.sources["EURUSD"] == "yahoo"


def test_engine_imports_do_not_load_yfinance():
    """yfinance is imported lazily: building engines (and the CLI's --help) never pays for it."""
    code = "import sys, mkt_pipeline.markets, mkt_pipeline.fx.engine, mkt_pipeline.equities.engine; print('yfinance' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_offline_closes_wander_like_real_closes():
    """Long-run level (docs/data-model.md#realism-bands): the built-in closes move day to day (>= 3 % over 120 days
    for EURUSD), each day's close a function of the symbol and the date only."""
    import datetime as dt

    import numpy as np

    from mkt_pipeline.core.reference_prices import fallback_reference_prices
    from mkt_pipeline.fx import universe as fxu

    days = [dt.date(2025, 7, 14) + dt.timedelta(days=i) for i in range(120)]
    refs = fallback_reference_prices(fxu.SYMBOLS, fxu.FALLBACK_LEVELS, days, fxu.FALLBACK_VOLS)
    eurusd = np.array([refs.close(d)[0] for d in days])
    assert eurusd.max() / eurusd.min() - 1 >= 0.03
    daily = np.diff(np.log(eurusd)).std() * np.sqrt(260)
    assert 0.5 * fxu.FALLBACK_VOLS["EURUSD"] <= daily <= 1.5 * fxu.FALLBACK_VOLS["EURUSD"]
    assert 0.85 <= eurusd.mean() / fxu.FALLBACK_LEVELS["EURUSD"] <= 1.15  # near the built-in level
    alone = fallback_reference_prices(fxu.SYMBOLS, fxu.FALLBACK_LEVELS, days[50:51], fxu.FALLBACK_VOLS)
    assert alone.close(days[50]).tolist() == refs.close(days[50]).tolist()
    flat = fallback_reference_prices(fxu.SYMBOLS, fxu.FALLBACK_LEVELS, days[:3])
    assert flat.close(days[0])[0] == flat.close(days[2])[0] == fxu.FALLBACK_LEVELS["EURUSD"]
