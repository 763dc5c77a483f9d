"""Deployment configs: the docker-compose instance (PostgreSQL storage shared by the webserver and
the daemon) and the run-launcher instance for running beyond one machine. Schema-checked as Dagster
instance configs without a running PostgreSQL or Docker."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest
import yaml
from dagster._core.instance.config import dagster_instance_config
from dagster_docker import DockerRunLauncher
from dagster_postgres.utils import pg_url_from_config

from mkt_pipeline.defs import config
from mkt_pipeline.defs.hourly import build_hourly_asset
from mkt_pipeline.defs.partitions import backfill_policy

ROOT = Path(__file__).resolve().parents[1]
DEV_INSTANCE = ROOT / "dagster_home" / "dagster.yaml"
COMPOSE_INSTANCE = ROOT / "deploy" / "dagster.yaml"
RUN_LAUNCHER_INSTANCE = ROOT / "deploy" / "docker_run_launcher.yaml"
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
PG_ENV = {
    "DAGSTER_PG_HOST": "postgres",
    "DAGSTER_PG_USER": "dagster",
    "DAGSTER_PG_PASSWORD": "pw-not-logged",
    "DAGSTER_PG_DB": "dagster",
}
# the settings every instance of the project shares with `make dev`
SHARED_SECTIONS = ("concurrency", "run_retries", "run_monitoring")


def load_instance_config(path: Path, home: Path) -> dict:
    """``path`` validated against Dagster's instance schema, as DAGSTER_HOME/dagster.yaml would be."""
    home.mkdir(parents=True, exist_ok=True)
    shutil.copy(path, home / "dagster.yaml")
    config, _ = dagster_instance_config(str(home))
    return dict(config)


@pytest.fixture
def pg_env(monkeypatch):
    for name, value in PG_ENV.items():
        monkeypatch.setenv(name, value)


def test_compose_instance_keeps_dagster_storage_in_postgres(tmp_path, pg_env):
    config = load_instance_config(COMPOSE_INSTANCE, tmp_path / "home")
    db = config["storage"]["postgres"]["postgres_db"]
    # what dagster-postgres connects to once the env values are resolved (no connection is made)
    resolved = {key: os.environ[value["env"]] if isinstance(value, dict) else value for key, value in db.items()}
    url = pg_url_from_config({"postgres_db": resolved})
    assert url.startswith("postgresql://dagster:") and url.endswith("@postgres:5432/dagster")
    assert "pw-not-logged" not in COMPOSE_INSTANCE.read_text()  # the password comes from the environment only


@pytest.mark.parametrize("path", [COMPOSE_INSTANCE, RUN_LAUNCHER_INSTANCE], ids=lambda p: p.name)
def test_deployment_instances_share_the_dev_pools_limits_and_retries(path, tmp_path, pg_env):
    dev = load_instance_config(DEV_INSTANCE, tmp_path / "dev")
    deployed = load_instance_config(path, tmp_path / "deployed")
    assert "storage" not in dev  # make dev keeps the default SQLite storage
    for section in SHARED_SECTIONS:
        assert deployed[section] == dev[section], section


def test_compose_webserver_and_daemon_are_one_instance():
    services = COMPOSE["services"]
    web, daemon, pg = services["dagster-webserver"], services["dagster-daemon"], services["postgres"]
    instance_mount = "./deploy/dagster.yaml:/opt/dagster/dagster_home/dagster.yaml:ro"
    for service in (web, daemon):
        assert instance_mount in service["volumes"]
        assert service["environment"]["DAGSTER_HOME"] == "/opt/dagster/dagster_home"
        assert service["environment"]["DAGSTER_PG_HOST"] == "postgres"
        assert service["depends_on"]["postgres"] == {"condition": "service_healthy"}
    # the same database, user and password on both sides of the connection
    for name in ("USER", "PASSWORD", "DB"):
        assert (
            web["environment"][f"DAGSTER_PG_{name}"]
            == daemon["environment"][f"DAGSTER_PG_{name}"]
            == pg["environment"][f"POSTGRES_{name}"]
        )


def test_run_launcher_instance_launches_runs_as_containers(tmp_path, pg_env):
    config = load_instance_config(RUN_LAUNCHER_INSTANCE, tmp_path / "checked")
    launcher = config["run_launcher"]
    assert (launcher["module"], launcher["class"]) == ("dagster_docker", "DockerRunLauncher")
    assert launcher["config"]["network"] == f"{COMPOSE['name']}_default"
    assert launcher["config"]["image"] == COMPOSE["x-pipeline"]["image"]

    # the same launcher on a local SQLite instance: Dagster builds it (no Docker needed until a launch)
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text(yaml.safe_dump({"run_launcher": launcher, "telemetry": {"enabled": False}}))
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert isinstance(instance.run_launcher, DockerRunLauncher)
        assert instance.run_launcher.container_kwargs == {"shm_size": "1g"}
        assert "QUESTDB_PASSWORD" in instance.run_launcher.env_vars


def test_definitions_load_with_the_run_launcher_and_split_backfills(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    launcher = yaml.safe_load(RUN_LAUNCHER_INSTANCE.read_text())["run_launcher"]
    (home / "dagster.yaml").write_text(yaml.safe_dump({"run_launcher": launcher, "telemetry": {"enabled": False}}))
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "MKT_BACKFILL_PARTITIONS_PER_RUN": "2",
        "MKT_SINK": "parquet",
        "MKT_OFFLINE": "1",
    }
    dagster = Path(sys.executable).with_name("dagster")
    done = subprocess.run(
        [str(dagster), "definitions", "validate", "-m", "mkt_pipeline.definitions"],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Validation successful" in done.stdout + done.stderr


def test_backfill_policy_from_the_environment(monkeypatch):
    assert backfill_policy() == dg.BackfillPolicy.single_run()
    monkeypatch.setenv("MKT_BACKFILL_PARTITIONS_PER_RUN", "3")
    assert build_hourly_asset("fx").backfill_policy == dg.BackfillPolicy.multi_run(3)
    # a bad value never stops the code location: the default policy is kept and every run fails naming it
    monkeypatch.setattr(config, "_PROBLEMS", {})
    monkeypatch.setenv("MKT_BACKFILL_PARTITIONS_PER_RUN", "0")
    assert backfill_policy() == dg.BackfillPolicy.single_run()
    (problem,) = config.deployment_problems("fx")
    assert "MKT_BACKFILL_PARTITIONS_PER_RUN" in problem
    with pytest.raises(dg.Failure, match="MKT_BACKFILL_PARTITIONS_PER_RUN"):
        config.fail_on_deployment_problems("fx")


HELM_VALUES = ROOT / "deploy" / "helm-values.yaml"


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name)


def test_compose_celery_profile_has_broker_and_workers_on_the_shared_instance():
    services = COMPOSE["services"]
    redis, worker, daemon = services["redis"], services["celery-worker"], services["dagster-daemon"]
    assert redis["profiles"] == worker["profiles"] == ["celery"]
    assert (
        worker["command"][:3] == ["celery", "-A", "mkt_pipeline.defs.celery_worker"] and "dagster" in worker["command"]
    )
    # the worker is a machine of the same deployment: the same settings, instance and storage volume as the daemon
    assert worker["environment"] == daemon["environment"]
    assert worker["volumes"] == daemon["volumes"]
    assert daemon["environment"]["MKT_CELERY_BROKER_URL"] == "redis://redis:6379/0"
    assert worker["depends_on"]["redis"] == {"condition": "service_started"}


def test_helm_values_match_dagster_k8s_schemas():
    from dagster._config import validate_config
    from dagster_k8s import K8sRunLauncher, k8s_job_executor

    values = yaml.safe_load(HELM_VALUES.read_text())
    deployment = values["dagster-user-deployments"]["deployments"][0]
    assert deployment["dagsterApiGrpcArgs"] == ["-m", "mkt_pipeline.definitions"]
    assert f"{deployment['image']['repository']}:{deployment['image']['tag']}" == COMPOSE["x-pipeline"]["image"]
    code_env = {e["name"]: e["value"] for e in deployment["env"]}
    assert code_env["MKT_EXECUTOR"] == "k8s"

    launcher = values["runLauncher"]
    assert launcher["type"] == "K8sRunLauncher"
    chart = launcher["config"]["k8sRunLauncher"]
    # the instance config the chart renders from these values (plus what the chart fills in itself)
    config = {_snake(k): v for k, v in chart.items()}
    config["run_k8s_config"] = {_snake(k): v for k, v in config["run_k8s_config"].items()}
    config["env_secrets"] = [s["name"] for s in config["env_secrets"]]
    config.update(
        instance_config_map="mkt-dagster-instance",
        dagster_home="/opt/dagster/dagster_home",
        postgres_password_secret="mkt-postgresql-secret",
    )
    checked = validate_config(K8sRunLauncher.config_type(), config)
    assert checked.success, [e.message for e in checked.errors]
    # run and step pods get the code location's settings, and the storage the steps share
    assert {e.split("=", 1)[0]: e.split("=", 1)[1] for e in chart["envVars"]} == code_env
    assert [m["mountPath"] for m in chart["volumeMounts"]] == ["/opt/dagster/dagster_home/storage"]

    # the executor takes its pods' settings from the run launcher; its own config is optional
    executor = validate_config(
        k8s_job_executor.config_schema.config_type, {"job_namespace": "dagster", "max_concurrent": 8}
    )
    assert executor.success, [e.message for e in executor.errors]


@pytest.mark.parametrize("executor", ["k8s", "celery"])
def test_definitions_load_with_a_distributed_executor(tmp_path, executor):
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "MKT_EXECUTOR": executor,
        "MKT_STEP_HOURS": "2",
        "MKT_SINK": "parquet",
        "MKT_OFFLINE": "1",
    }
    dagster = Path(sys.executable).with_name("dagster")
    done = subprocess.run(
        [str(dagster), "definitions", "validate", "-m", "mkt_pipeline.definitions"],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    script = (
        "from mkt_pipeline.definitions import defs; j = defs.resolve_job_def('fx_hourly_job'); "
        "print(j.executor_def.name, sorted(n.name for n in j.graph.node_dict['fx_hourly'].definition.node_dict.values()))"
    )
    shown = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", script], env=env, capture_output=True, text=True, timeout=180
    )
    assert shown.returncode == 0, shown.stderr[-2000:]
    assert shown.stdout.split()[0] == ("mkt_celery" if executor == "celery" else "k8s")
    assert "fx_report" in shown.stdout  # the hours of a range become steps


def test_distributed_settings_are_checked(monkeypatch):
    from mkt_pipeline.core.engine import ConfigError
    from mkt_pipeline.defs.distributed import CelerySettings, executor_kind, step_hours

    assert executor_kind({}) == "in_process" and step_hours({"MKT_STEP_HOURS": "3"}) is None
    assert step_hours({"MKT_EXECUTOR": "celery", "MKT_STEP_HOURS": "3"}) == 3
    with pytest.raises(ConfigError, match=r"^MKT_EXECUTOR: 'dask' is not one of in_process, celery, k8s$"):
        executor_kind({"MKT_EXECUTOR": "dask"})
    with pytest.raises(ConfigError, match=r"^MKT_STEP_HOURS must be >= 1 \(got 0\)$"):
        step_hours({"MKT_EXECUTOR": "k8s", "MKT_STEP_HOURS": "0"})
    with pytest.raises(ConfigError, match=r"^MKT_CELERY_BROKER_URL: 'redis:6379' is not a broker URL"):
        CelerySettings.from_env({"MKT_CELERY_BROKER_URL": "redis:6379"})
    monkeypatch.delenv("MKT_EXECUTOR", raising=False)
    assert build_hourly_asset("fx").node_def.name == "fx_hourly"
