"""deploy/ as an operator would use it, checked where it can be here (no Docker daemon, no promtool): the compose
file's stack, the app's settings in it accepted by the production start checks, the image's user and health check,
and every metric the alerts and the dashboard name being one the server exports — and every one it exports shown.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp.test_utils import TestClient

from auth.startup_checks import production_problems
from settings import Settings

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
# Metric names as PromQL writes them; a histogram's series end in _bucket/_sum/_count, and the text format
# declares every counter's and histogram's start time as a gauge of its own, `_created`.
_METRIC = re.compile(r"\bcase_repository_[a-z_]+")
_HISTOGRAM_SERIES = re.compile(r"_(bucket|sum|count|created)$")
# ${NAME:?message} and ${NAME:-default}: what compose substitutes from the caller's environment.
_VARIABLE = re.compile(r"\$\{([A-Z_]+)(?::([?-])([^}]*))?\}")
# What an operator would put in .env: a realm of the bank's Keycloak and a key of their own.
OPERATOR_ENV = {
    "AUTH_JWKS_URL": "https://sso.bank.example/realms/staff/protocol/openid-connect/certs",
    "AUTH_ISSUER": "https://sso.bank.example/realms/staff",
    "DATA_ENCRYPTION_KEY": "q83vEjRWeJq83vEjRWeJq83vEjRWeJq83vEjRWeJq80=",
}


def _compose() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def _substituted(value: str, env: dict[str, str]) -> str:
    def one(match: re.Match[str]) -> str:
        name, kind, rest = match.groups()
        if name in env:
            return env[name]
        if kind == "?":
            pytest.fail(f"compose requires {name}: {rest}")
        return rest or ""
    return _VARIABLE.sub(one, value)


def _metric_names(text: str) -> set[str]:
    """Family names: a histogram's series and a counter's `_total` sample name the same family."""
    return {_family(name) for name in _METRIC.findall(text)}


def _family(name: str) -> str:
    return _HISTOGRAM_SERIES.sub("", name).removesuffix("_total")


async def _exported(client: TestClient) -> set[str]:
    """The metric families GET /metrics declares (labelled ones are declared before their first sample)."""
    response = await client.get("/metrics")
    assert response.status == 200
    families = {line.split()[2] for line in (await response.text()).splitlines() if line.startswith("# TYPE ")}
    return {_family(name) for name in families if name.startswith("case_repository_")}


def test_the_stack_has_a_replica_set_kraft_kafka_two_app_replicas_a_gateway_and_prometheus() -> None:
    services = _compose()["services"]
    assert {"mongo", "kafka", "kafka-topics", "app", "gateway", "prometheus", "grafana"} <= services.keys()
    assert services["mongo"]["image"].startswith("mongo:7")
    assert services["mongo"]["command"][:2] == ["--replSet", "rs0"]
    assert "rs.initiate" in " ".join(services["mongo"]["healthcheck"]["test"])
    kafka = services["kafka"]["environment"]
    assert kafka["KAFKA_PROCESS_ROLES"] == "broker,controller"  # KRaft: no ZooKeeper
    assert not any("zookeeper" in name.lower() for name in services)
    assert services["app"]["deploy"]["replicas"] == 2
    assert services["app"]["build"] == {"context": "..", "dockerfile": "deploy/Dockerfile"}
    assert services["app"]["read_only"] is True


def test_the_topics_made_at_start_are_the_ones_the_app_reads_and_writes() -> None:
    command = " ".join(_compose()["services"]["kafka-topics"]["command"])
    made = set(re.search(r"for topic in ([^;]+);", command).group(1).split())
    defaults = Settings()
    assert made == {defaults.kafka_topic_events, defaults.kafka_topic_updates, defaults.kafka_topic_commands,
                    defaults.kafka_topic_dlq}
    assert "--partitions 6" in command


def test_the_apps_environment_passes_the_production_start_checks() -> None:
    environment = _compose()["services"]["app"]["environment"]
    env = {name: _substituted(str(value), OPERATOR_ENV) for name, value in environment.items()}
    settings = Settings.from_env(env)
    assert production_problems(settings) == []
    assert not settings.is_dev and not settings.embedded_store and settings.kafka_enabled
    # Acknowledged means journaled on a majority: what a replica set's failover must not lose.
    assert "replicaSet=rs0" in settings.mongodb_uri
    assert "w=majority" in settings.mongodb_uri and "journal=true" in settings.mongodb_uri
    assert settings.otel_exporter_otlp_endpoint is None  # tracing stays off unless the operator names a collector


def test_compose_refuses_to_start_without_the_secrets() -> None:
    environment = _compose()["services"]["app"]["environment"]
    required = {match.group(1) for value in environment.values()
                for match in _VARIABLE.finditer(str(value)) if match.group(2) == "?"}
    assert required == {"AUTH_JWKS_URL", "AUTH_ISSUER", "DATA_ENCRYPTION_KEY"}


def test_every_file_the_stack_mounts_is_in_the_repository() -> None:
    generated = {"../graphql/supergraph.graphql"}  # written by `make supergraph`
    for name, service in _compose()["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith(".") and source not in generated:
                assert (DEPLOY / source).exists(), f"{name} mounts {source}, which is missing"
    assert "\nsupergraph:" in (ROOT / "Makefile").read_text()


def test_the_gateway_image_runs_the_gateway_script_the_tests_run() -> None:
    gateway = _compose()["services"]["gateway"]
    assert gateway["build"] == {"context": "..", "dockerfile": "deploy/gateway/Dockerfile"}
    dockerfile = (DEPLOY / "gateway" / "Dockerfile").read_text()
    assert "COPY deploy/gateway/gateway.mjs" in dockerfile and "npm ci" in dockerfile
    assert re.search(r"^USER node$", dockerfile, re.M)
    mounted = {volume.split(":")[1] for volume in gateway["volumes"]}
    assert "/gateway/supergraph.graphql" in mounted and "/gateway/supergraph.graphql" in dockerfile


def test_the_image_runs_as_an_unprivileged_user_with_a_health_check() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    final_stage = dockerfile.split("\nFROM ")[-1]
    assert final_stage.startswith("python:3.11-slim")
    user = re.search(r"^USER (\S+)$", final_stage, re.M).group(1)
    assert user.split(":")[0] not in ("root", "0")
    assert "HEALTHCHECK" in final_stage and "/healthz" in final_stage
    assert re.search(r'^CMD \["python", "server.py"\]$', final_stage, re.M)
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {".git", ".venv", ".venv-wire", "node_modules", ".data", "tests"} <= ignored


def test_every_alert_is_complete_and_prometheus_loads_the_file_compose_mounts() -> None:
    rules = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())["groups"][0]["rules"]
    assert len(rules) >= 8
    for rule in rules:
        assert rule["alert"] and rule["expr"], rule
        assert rule["labels"]["severity"] in {"critical", "warning"}, rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]
        assert rule["expr"].count("(") == rule["expr"].count(")"), rule["alert"]
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    mounts = _compose()["services"]["prometheus"]["volumes"]
    assert [f"./prometheus/alerts.yml:{config['rule_files'][0]}:ro"] == [m for m in mounts if "alerts" in m]


async def test_the_alerts_and_the_dashboard_name_only_metrics_the_server_exports(client: TestClient) -> None:
    exported = await _exported(client)
    alerts = _metric_names((DEPLOY / "prometheus" / "alerts.yml").read_text())
    dashboard = json.loads((DEPLOY / "grafana" / "case-repository.json").read_text())
    shown = _metric_names(" ".join(t["expr"] for panel in dashboard["panels"] for t in panel["targets"]))
    assert alerts and shown
    assert (alerts | shown) - exported == set(), "alerts or panels name metrics the server does not export"
    # The other way round: a metric added to the server without a panel fails here, so the dashboard stays whole.
    assert exported - shown == set(), "metrics the dashboard does not show"


def test_the_dashboard_is_one_grafana_provisions() -> None:
    dashboard = json.loads((DEPLOY / "grafana" / "case-repository.json").read_text())
    assert dashboard["uid"] == "case-repository"
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    provider = yaml.safe_load((DEPLOY / "grafana" / "provisioning" / "dashboards" / "case-repository.yml").read_text())
    mount = next(m for m in _compose()["services"]["grafana"]["volumes"] if m.endswith(".json:ro") or ".json:" in m)
    assert mount.split(":")[1].startswith(provider["providers"][0]["options"]["path"])
