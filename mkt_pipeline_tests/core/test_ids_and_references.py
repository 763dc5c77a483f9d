"""LEIs, deterministic UUIDs, and reference prices (Yahoo parsing via a local fake, cache, fallback)."""

from __future__ import annotations

import datetime as dt
import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler, HTTPServer

import numpy as np
import pytest

from mkt_pipeline.fx import universe as fxu
from mkt_pipeline.core.keyed_random import uuid4_words, uuid_strings
from mkt_pipeline.core.lei import check_digits, is_valid_lei, lei_pool
from mkt_pipeline.core.reference_prices import ReferencePrices, load_reference_prices, reference_days


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


class _FakeYahoo(BaseHTTPRequestHandler):
    calls: list[str] = []

    def do_GET(self):  # noqa: N802
        _FakeYahoo.calls.append(self.path)
        ticker = self.path.split("/")[-1].split("?")[0]
        if ticker == "USDTRY=X":
            self.send_response(404)
            self.end_headers()
            return
        base = dt.datetime(2025, 11, 3, tzinfo=dt.timezone.utc)
        stamps = [int((base + dt.timedelta(days=i)).timestamp()) for i in range(11)]  # 3 to 13 November
        closes = [1.1] * 8 + [None, 1.3, 1.35]  # no close on the 11th
        body = {"chart": {"result": [{"meta": {"gmtoffset": 0}, "timestamp": stamps, "indicators": {"quote": [{"close": closes}]}}]}}
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def fake_yahoo():
    server = HTTPServer(("127.0.0.1", 0), _FakeYahoo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _FakeYahoo.calls.clear()
    yield f"http://127.0.0.1:{server.server_port}/chart"
    server.shutdown()


def test_yahoo_closes_cached_and_gap_filled_with_per_symbol_fallback(fake_yahoo, tmp_path):
    days = reference_days(dt.date(2025, 11, 11), dt.date(2025, 11, 13))
    refs = load_reference_prices(fxu.SYMBOLS, fxu.YAHOO_TICKERS, fxu.FALLBACK_LEVELS, days, offline=False, cache_dir=tmp_path, base_url=fake_yahoo)
    eur = fxu.SYMBOLS.index("EURUSD")
    # two days before the window (its look-back), the first close carried back; a missing close carried forward
    assert [refs.close(d)[eur] for d in days] == [1.1, 1.1, 1.1, 1.3, 1.35]
    assert refs.sources["EURUSD"] == "yahoo" and refs.sources["USDTRY"] == "fallback"
    assert refs.source == "yahoo+fallback"
    assert refs.close(days[0])[fxu.SYMBOLS.index("USDTRY")] == fxu.FALLBACK_LEVELS["USDTRY"]
    calls = len(_FakeYahoo.calls)
    assert calls == 30  # one request per ticker
    load_reference_prices(fxu.SYMBOLS, fxu.YAHOO_TICKERS, fxu.FALLBACK_LEVELS, days, offline=False, cache_dir=tmp_path, base_url=fake_yahoo)
    assert len(_FakeYahoo.calls) == calls + 1  # cached: only the failing ticker is asked again
    assert ReferencePrices.from_json(json.loads(json.dumps(refs.to_json()))) == refs


def test_unreachable_yahoo_falls_back_quickly(tmp_path):
    days = reference_days(dt.date(2025, 11, 11), dt.date(2025, 11, 11))
    refs = load_reference_prices(
        fxu.SYMBOLS, fxu.YAHOO_TICKERS, fxu.FALLBACK_LEVELS, days, offline=False, cache_dir=tmp_path, base_url="http://127.0.0.1:9/none", timeout_s=0.5
    )
    assert refs.source == "fallback"
    assert refs.close(days[1])[0] == fxu.FALLBACK_LEVELS["EURUSD"]


def test_offline_closes_wander_like_real_closes():
    """SPEC §11 long-run level: the built-in closes move day to day (>= 3 % over 120 days for EURUSD),
    each day's close a function of the symbol and the date only."""
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
