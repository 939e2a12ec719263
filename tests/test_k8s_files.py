"""The Kubernetes manifests (deploy/k8s) checked without a cluster: services select the
workloads whose ports they name, pods run as the image's user with probes and the bot's
settings, and kustomize renders them where kubectl is installed."""

from __future__ import annotations

import shutil
import subprocess
from typing import Any

import pytest
import yaml

from tests.test_deploy_files import DEPLOY, IMAGE_UID, _bot_yaml_refs, _compose, _flags

# ---- Kubernetes -----------------------------------------------------------------------------

def _k8s() -> list[dict[str, Any]]:
    kustomization = yaml.safe_load((DEPLOY / "kustomization.yaml").read_text())
    documents = []
    for resource in kustomization["resources"]:
        documents += [d for d in yaml.safe_load_all((DEPLOY / resource).read_text()) if d]
    return documents


def _workloads() -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in _k8s()
            if d["kind"] in ("Deployment", "StatefulSet")}


def test_k8s_services_select_workloads_whose_ports_they_name() -> None:
    documents = _k8s()
    kinds = {(d["kind"], d["metadata"]["name"]) for d in documents}
    assert {("Deployment", "bot"), ("Deployment", "model"), ("StatefulSet", "redis"),
            ("HorizontalPodAutoscaler", "bot"), ("Ingress", "bot")} <= kinds
    workloads = _workloads()
    for workload in workloads.values():
        labels = workload["spec"]["template"]["metadata"]["labels"]
        assert workload["spec"]["selector"]["matchLabels"].items() <= labels.items()
    for service in (d for d in documents if d["kind"] == "Service"):
        target = next(w for w in workloads.values() if service["spec"]["selector"].items()
                      <= w["spec"]["template"]["metadata"]["labels"].items())
        ports = {p["name"] for c in target["spec"]["template"]["spec"]["containers"]
                 for p in c["ports"]}
        assert {p["targetPort"] for p in service["spec"]["ports"]} <= ports
    assert "volumeClaimTemplates" in workloads["redis"]["spec"]
    redis_args = workloads["redis"]["spec"]["template"]["spec"]["containers"][0]["args"]
    assert redis_args[redis_args.index("--appendonly") + 1] == "yes"


def test_k8s_pods_run_as_the_image_user_with_probes_and_the_bots_settings() -> None:
    workloads = _workloads()
    for name, workload in workloads.items():
        pod = workload["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        for container in pod["containers"]:
            assert container["readinessProbe"] and container["livenessProbe"], name
            assert container["securityContext"]["allowPrivilegeEscalation"] is False
            if container["image"] == "supportbot":
                assert pod["securityContext"]["runAsUser"] == IMAGE_UID
    bot = workloads["bot"]["spec"]["template"]["spec"]["containers"][0]
    assert bot["readinessProbe"]["httpGet"]["path"] == "/health"
    assert "httpGet" not in bot["livenessProbe"]  # a Redis outage must not restart workers
    env = {e["name"] for e in bot["env"]}
    secret_keys = {"BOT_API_TOKEN", "SESSION_SECRET"}  # the documented Secret
    required = {n for n, needed in _bot_yaml_refs().items() if needed}
    assert required <= env | secret_keys
    assert bot["volumeMounts"][0]["mountPath"] == "/srv/bot/bot.yaml"
    model = workloads["model"]["spec"]["template"]["spec"]["containers"][0]
    compose_model = _compose()["services"]["model"]["command"]
    assert set(_flags(model["command"])) == set(_flags(compose_model))
    assert _flags(model["command"])["--model"] == _flags(compose_model)["--model"]


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_kustomize_renders_the_manifests() -> None:
    result = subprocess.run(["kubectl", "kustomize", str(DEPLOY)], capture_output=True,
                            text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    rendered = [d for d in yaml.safe_load_all(result.stdout) if d]
    config = next(d for d in rendered if d["kind"] == "ConfigMap")
    assert config["data"]["bot.yaml"] == (DEPLOY / "acme_bank.yaml").read_text()
    mounted = next(d for d in rendered if d["kind"] == "Deployment"
                   and d["metadata"]["name"] == "bot")["spec"]["template"]["spec"]["volumes"]
    assert mounted[0]["configMap"]["name"] == config["metadata"]["name"]
