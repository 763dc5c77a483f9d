"""Scrubbing removes secrets and nothing else."""

from __future__ import annotations

from mkt_pipeline.core.secrets import scrub, scrubbable_secrets


def test_the_stock_password_and_ordinary_words_survive():
    text = (
        "io.questdb.cairo.CairoException: table market_data_request_quest does not exist (user admin, password quest)"
    )
    assert scrub(text, ["quest"]) == text
    assert scrubbable_secrets(["quest", "", None]) == []


def test_a_short_secret_goes_only_where_it_stands_alone():
    text = "password=abc1 rejected; table abc1x and xabc1 kept; 'abc1'"
    assert scrub(text, ["abc1"]) == "password=*** rejected; table abc1x and xabc1 kept; '***'"


def test_long_secrets_go_everywhere_longest_first():
    token = "Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MA"
    text = f"Bearer {token} and glued{token}tail and part {token[:20]}\nsecond line"
    out = scrub(text, [token, token[:20]])
    assert token not in out and token[:20] not in out
    assert out == "Bearer *** and glued***tail and part *** second line"
