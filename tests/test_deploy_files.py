"""The Dockerfile, the compose stack and the Kubernetes manifests, parsed and checked on
the fields that matter (no container engine runs here; where one does, the image is
built and its health check run)."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import subprocess

import pytest
import yaml

from middleware.service import SERVICE_NAME
from middleware.settings import Settings
from tests.conftest import ROOT

COMPOSE = ROOT / "deploy" / "compose"
K8S = ROOT / "deploy" / "kubernetes"
SETTINGS = {f.name for f in dataclasses.fields(Settings)}


def _env_names_are_settings(names) -> None:
    for name in names:
        if name.startswith("RAGPRESS_"):
            assert name[len("RAGPRESS_"):].lower() in SETTINGS, f"{name} is not a setting"


def _dockerfile() -> list[str]:
    text = (ROOT / "Dockerfile").read_text()
    return [line for line in text.replace("\\\n", " ").splitlines() if line.strip() and not line.startswith("#")]


def test_dockerfile_is_multi_stage_non_root_with_models_baked_in_and_a_grpc_health_check():
    lines = _dockerfile()
    froms = [line for line in lines if line.startswith("FROM ")]
    assert len(froms) >= 2 and " AS build" in froms[0]
    runs = " ".join(line for line in lines if line.startswith("RUN "))
    assert "python -m middleware.embedders" in runs and "converted_smollm2" in runs  # models in the image
    assert "requirements.lock" in runs  # the exact pins
    user = next(line for line in lines if line.startswith("USER ")).split()[1]
    assert user.split(":")[0] not in ("0", "root")
    health = next(line for line in lines if line.startswith("HEALTHCHECK "))
    assert '"health"' in health and "50051" in health
    assert any(line.startswith("EXPOSE ") and "50051" in line for line in lines)
    assert any(line.startswith("ENTRYPOINT") and "ragpress" in line for line in lines)
    env = " ".join(line for line in lines if line.startswith("ENV "))
    _env_names_are_settings(re.findall(r"(RAGPRESS_[A-Z_]+)=", env))
    for line in lines:  # every COPY source of the build context exists
        if line.startswith("COPY ") and "--from" not in line:
            for source in line.split()[1:-1]:
                assert (ROOT / source).exists(), source


def _compose() -> dict:
    return yaml.safe_load((COMPOSE / "docker-compose.yml").read_text())


def test_compose_runs_ragpress_with_redis_postgres_prometheus_and_grafana():
    compose = _compose()
    services = compose["services"]
    assert {"ragpress", "redis", "postgres", "prometheus", "grafana"} <= set(services)
    rp = services["ragpress"]
    env = rp["environment"]
    _env_names_are_settings(env)
    assert env["RAGPRESS_REDIS_URL"].startswith("redis://redis:")
    assert env["RAGPRESS_LEDGER_URL"].startswith("postgresql://") and "@postgres:" in env["RAGPRESS_LEDGER_URL"]
    assert env["RAGPRESS_API_KEYS_FILE"].startswith("/run/secrets/")
    assert "health" in rp["healthcheck"]["test"] and rp["depends_on"]["redis"]["condition"] == "service_healthy"
    assert (COMPOSE / rp["build"]["context"] / rp["build"]["dockerfile"]).is_file()
    assert all(port.startswith("127.0.0.1:") for s in services.values() for port in s.get("ports", []))
    assert "allkeys-lru" in services["redis"]["command"]
    for service in services.values():  # every file mounted into a container exists
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (COMPOSE / source).exists(), source


def test_compose_prometheus_scrapes_ragpress_with_a_key_and_grafana_finds_it():
    prom = yaml.safe_load((COMPOSE / "prometheus.yml").read_text())
    job = prom["scrape_configs"][0]
    assert job["static_configs"][0]["targets"] == ["ragpress:9464"]
    assert job["authorization"]["credentials_file"].startswith("/run/secrets/")
    env = _compose()["services"]["ragpress"]["environment"]
    assert env["RAGPRESS_METRICS_PORT"] == "9464" and env["RAGPRESS_METRICS_HOST"] == "0.0.0.0"
    source = yaml.safe_load((COMPOSE / "grafana-datasource.yaml").read_text())["datasources"][0]
    assert source["url"] == "http://prometheus:9090"
    dashboard = json.loads((ROOT / "deploy" / "grafana" / "dashboards" / "ragpress.json").read_text())
    uids = {p.get("datasource", {}).get("uid") for p in dashboard.get("panels", []) if isinstance(p.get("datasource"), dict)}
    assert source["uid"] in uids


def _manifests() -> dict[str, dict]:
    out = {}
    for path in sorted(K8S.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                out[f"{doc['kind']}/{doc['metadata']['name'] if 'metadata' in doc else path.stem}"] = doc
    return out


def test_kubernetes_deployment_probes_grpc_health_and_drains_before_it_is_killed():
    m = _manifests()
    deploy = m["Deployment/ragpress"]
    pod = deploy["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["readinessProbe"]["grpc"] == {"port": 50051, "service": SERVICE_NAME}
    assert container["livenessProbe"]["grpc"]["port"] == 50051 and "service" not in container["livenessProbe"]["grpc"]
    assert "startupProbe" in container
    assert pod["securityContext"]["runAsNonRoot"] and pod["securityContext"]["runAsUser"] != 0
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    env = {e["name"]: e for e in container["env"]}
    _env_names_are_settings(env)
    drain = float(env["RAGPRESS_DRAIN_SECONDS"]["value"])
    pause = float(container["lifecycle"]["preStop"]["exec"]["command"][-1])
    assert pod["terminationGracePeriodSeconds"] > drain + pause
    secret = m["Secret/ragpress"]
    for e in env.values():
        ref = e.get("valueFrom", {}).get("secretKeyRef")
        if ref:
            assert ref["name"] == "ragpress" and ref["key"] in secret["stringData"]
    assert env["RAGPRESS_API_KEYS_FILE"]["value"].startswith(
        next(v["mountPath"] for v in container["volumeMounts"] if v["name"] == "keys"))
    assert deploy["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    assert int(env["RAGPRESS_MAX_RSS_BYTES"]["value"]) < 4 * 2**30  # sheds before the 4Gi limit kills it


def test_kubernetes_service_is_headless_and_hpa_and_pdb_select_the_pods():
    m = _manifests()
    labels = m["Deployment/ragpress"]["spec"]["template"]["metadata"]["labels"]
    service = m["Service/ragpress"]
    assert service["spec"]["clusterIP"] == "None"
    assert service["spec"]["selector"].items() <= labels.items()
    assert {p["port"] for p in service["spec"]["ports"]} == {50051, 9464}
    hpa = m["HorizontalPodAutoscaler/ragpress"]
    assert hpa["apiVersion"] == "autoscaling/v2" and hpa["spec"]["scaleTargetRef"]["name"] == "ragpress"
    assert hpa["spec"]["minReplicas"] >= 2
    pdb = m["PodDisruptionBudget/ragpress"]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert pdb["spec"]["minAvailable"] < hpa["spec"]["minReplicas"]
    from middleware.auth import parse_file

    assert parse_file(m["Secret/ragpress"]["stringData"]["keys.toml"], "Secret")  # a valid key file
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    assert {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"} == set(kustomization["resources"])


def _engine_runs() -> bool:
    docker = shutil.which("docker")
    return bool(docker) and subprocess.run([docker, "info"], capture_output=True, timeout=20).returncode == 0


@pytest.mark.slow
@pytest.mark.skipif(not _engine_runs(), reason="no container engine runs on this machine")
def test_the_image_builds_and_reports_healthy(tmp_path):  # pragma: no cover - needs a container engine
    subprocess.run(["docker", "build", "-t", "ragpress:test", str(ROOT)], check=True, timeout=3600)
    run = subprocess.run(["docker", "run", "--rm", "-e", "RAGPRESS_INSECURE=true", "--entrypoint", "sh",
                          "ragpress:test", "-c", "ragpress serve & sleep 60; ragpress health"],
                         capture_output=True, text=True, timeout=300)
    assert "SERVING" in run.stdout
