"""Dagster resources: QuestDBResource mirrors QuestDBSettings, takes secrets through EnvVar, and
hands out context-managed sinks; ParquetResource does the same for the embedded dataset. Their fields are
the settings model's declarations; QDB_CLIENT_CONF is read below every field that is set."""

from __future__ import annotations

import dataclasses
import os

import dagster as dg
import numpy as np
import pytest

from mkt_pipeline.core.tables import FX_CORE_PRICE
from mkt_pipeline.core.timeline import Window
from mkt_pipeline.defs.resources import ParquetResource, QuestDBResource
from mkt_pipeline.sinks.base import TableNaming
from mkt_pipeline.sinks.parquet import ParquetSink
from mkt_pipeline.sinks.questdb import QuestDBSettings, QuestDBSink
from mkt_pipeline_tests.sinks.test_questdb import T0_US, fx_batches

SECRET = "pw-from-env-93f1"


def test_fields_mirror_settings_and_defaults_match():
    settings_fields = {f.name for f in dataclasses.fields(QuestDBSettings)}
    resource_fields = set(QuestDBResource.model_fields)
    assert resource_fields - {"client_conf"} <= settings_fields
    for required in ("host", "http_port", "ilp_tcp_port", "pg_port", "protocol", "user", "password", "token", "token_x",
                     "token_y", "ilp_user", "tls_verify", "tls_ca", "create_views", "short_ttl", "enterprise"):  # fmt: skip
        assert required in resource_fields
        assert QuestDBResource.model_fields[required].description
    assert QuestDBResource().settings() == QuestDBSettings()


def test_resource_fields_are_the_settings_model_declarations():
    """Each resource field's default and description are the settings model's (one declaration)."""
    from mkt_pipeline.defs.sink_resource import MarketSinkResource
    from mkt_pipeline.settings import (
        PARQUET_RESOURCE_FIELDS,
        SINK_FLAGS,
        SINK_RESOURCE_FIELDS,
        questdb_resource_fields,
    )

    for resource, fields in (
        (QuestDBResource, questdb_resource_fields()),
        (ParquetResource, PARQUET_RESOURCE_FIELDS),
        (MarketSinkResource, SINK_RESOURCE_FIELDS),
    ):
        assert set(resource.model_fields) - {"questdb", "parquet"} == {f.name for f in fields}
        for f in fields:
            declared = resource.model_fields[f.name]
            assert declared.default == f.setting.default and f.setting.help in declared.description, f.name
    # every flag of the QuestDB connection is a field (as its QuestDBSettings name), with the sink's default
    by_help = {f.setting.help: f.name for f in questdb_resource_fields()}
    for flag in SINK_FLAGS:
        if flag.name not in ("sink", "parquet_dir", "suffix", "token_file"):
            field = by_help[flag.help]
            assert getattr(QuestDBSettings(), field) == flag.default, flag.name
    assert "QUESTDB_HTTP_PORT" in QuestDBResource.model_fields["http_port"].description
    assert "EnvVar('QUESTDB_PASSWORD')" in QuestDBResource.model_fields["password"].description


def test_client_conf_is_below_the_fields_that_are_set(monkeypatch):
    """QDB_CLIENT_CONF fills what no field (nor QUESTDB_* variable) sets; its secrets stay out of the config."""
    conf = "https::addr=db.example:19000;username=ingest;password=conf-secret-71;tls_verify=unsafe_off;"
    resource = QuestDBResource(client_conf=conf, host="flag.example")
    s = resource.settings()
    assert (s.protocol, s.host, s.http_port, s.user, s.password, s.tls_verify) == (
        "https", "flag.example", 19000, "ingest", "conf-secret-71", "unsafe_off",
    )  # fmt: skip
    assert "conf-secret-71" not in repr(s)
    for var in [v for v in os.environ if v.startswith("QUESTDB_")]:
        monkeypatch.delenv(var)
    monkeypatch.setenv("QDB_CLIENT_CONF", conf)
    monkeypatch.setenv("QUESTDB_USER", "from-variable")
    from_env = QuestDBResource.from_env()
    assert "conf-secret-71" not in repr(from_env) and isinstance(from_env.client_conf, dg.EnvVar)
    with dg.build_resources({"questdb": from_env}) as resources:
        s = resources.questdb.settings()
        assert (s.host, s.user, s.password) == ("db.example", "from-variable", "conf-secret-71")
    # a bad value inside the connect string is named as the connect string's, never shown with the secret
    from mkt_pipeline.core.engine import ConfigError

    with pytest.raises(ConfigError) as err:
        QuestDBResource(client_conf="tcp::addr=db:9009;token=abc;tls_roots=/nonexistent/ca.pem;").settings()
    assert str(err.value).startswith("QDB_CLIENT_CONF: ") and "abc" not in str(err.value)


def test_secrets_through_envvar_resolve_at_launch_and_stay_out_of_reprs(monkeypatch):
    monkeypatch.setenv("QUESTDB_PASSWORD", SECRET)
    monkeypatch.setenv("QUESTDB_HOST", "db.internal")
    monkeypatch.setenv("QUESTDB_PG_PORT", "18812")
    resource = QuestDBResource.from_env(short_ttl=True)
    with dg.build_resources({"questdb": resource}) as resources:
        live: QuestDBResource = resources.questdb
        settings = live.settings()
        assert (settings.host, settings.pg_port, settings.password, settings.short_ttl) == (
            "db.internal",
            18812,
            SECRET,
            True,
        )
        with live.get_sink(TableNaming(suffix="_r")) as sink:
            assert isinstance(sink, QuestDBSink) and sink.naming.suffix == "_r"
            assert SECRET not in repr(sink) and SECRET not in repr(sink.settings)
    # only the variable's name is in the definition-time config
    assert SECRET not in repr(resource)


def test_get_sink_closes_on_exit():
    closed = []
    resource = QuestDBResource()
    with resource.get_sink() as sink:
        sink.close = lambda: closed.append(True)
    assert closed == [True]


def test_resource_used_by_an_asset(tmp_path):
    @dg.asset
    def core_prices(parquet: ParquetResource) -> dg.MaterializeResult:
        batch = fx_batches(n=7)[1]
        with parquet.get_sink(TableNaming(suffix="_a")) as sink:
            sink.prepare([FX_CORE_PRICE])
            with sink.window(Window(T0_US, T0_US + 3_600_000_000)) as writer:
                writer.write(batch)
        return dg.MaterializeResult(metadata={"rows": len(batch)})

    result = dg.materialize([core_prices], resources={"parquet": ParquetResource(root_dir=str(tmp_path))})
    assert result.success
    table = ParquetSink(tmp_path, TableNaming(suffix="_a")).read(FX_CORE_PRICE)
    assert table.num_rows == 7
    np.testing.assert_array_equal(table.column("bid_volume").to_numpy(), fx_batches(n=7)[1].columns["bid_volume"])


def test_parquet_resource_returns_a_parquet_sink(tmp_path):
    with ParquetResource(root_dir=str(tmp_path)).get_sink() as sink:
        assert isinstance(sink, ParquetSink) and sink.root == tmp_path
