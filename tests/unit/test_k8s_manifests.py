"""The Kubernetes manifests in infra/k8s: valid against the Kubernetes API schemas (kubernetes-validate
ships them, so no cluster is needed), and consistent with the code — every queue Hark routes work to
has a worker pool consuming it and a KEDA trigger scaling that pool, GPU work lands on GPU nodes."""

from __future__ import annotations

import shlex
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml

from hark.queues import CPU_QUEUE, MODEL_KINDS, WEBHOOK_QUEUE

K8S = Path(__file__).resolve().parents[2] / "infra" / "k8s"
KUBE_VERSION = "1.33.0"


def _resources() -> list[dict]:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    docs = []
    for name in kustomization["resources"]:
        docs += [d for d in yaml.safe_load_all((K8S / name).read_text()) if d]
    return docs


def _by_kind(kind: str) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in _resources() if d["kind"] == kind}


def test_kustomization_lists_every_manifest() -> None:
    listed = set(yaml.safe_load((K8S / "kustomization.yaml").read_text())["resources"])
    on_disk = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == on_disk


KEDA = "keda.sh/"  # a CRD: kubernetes-validate has no schema for it, so it gets one of ours below
SCALED_OBJECT = {
    "type": "object",
    "required": ["metadata", "spec"],
    "properties": {
        "spec": {
            "type": "object",
            "required": ["scaleTargetRef", "triggers"],
            "additionalProperties": False,
            "properties": {
                "scaleTargetRef": {"type": "object", "required": ["name"]},
                "minReplicaCount": {"type": "integer", "minimum": 0},
                "maxReplicaCount": {"type": "integer", "minimum": 1},
                "cooldownPeriod": {"type": "integer", "minimum": 0},
                "triggers": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "required": ["type", "metadata"],
                        "properties": {
                            "type": {"const": "redis"},
                            "metadata": {
                                "type": "object",
                                "required": ["address", "listName", "listLength"],
                                "additionalProperties": {"type": "string"},
                            },
                        },
                    },
                },
            },
        }
    },
}


@pytest.mark.parametrize(
    "doc",
    [d for d in _resources() if not d["apiVersion"].startswith(KEDA)],
    ids=lambda d: f"{d['kind']}/{d['metadata']['name']}",
)
def test_core_objects_are_valid_kubernetes(doc: dict) -> None:
    kubernetes_validate.validate(doc, KUBE_VERSION, strict=True)


@pytest.mark.parametrize("doc", list(_by_kind("ScaledObject").values()), ids=lambda d: d["metadata"]["name"])
def test_scaled_objects_are_well_formed(doc: dict) -> None:
    jsonschema.validate(doc, SCALED_OBJECT)
    assert doc["spec"]["scaleTargetRef"]["name"] in _by_kind("Deployment")


def test_every_routed_queue_has_a_consuming_pool_and_a_scaler() -> None:
    consumed: dict[str, str] = {}
    for name, dep in _by_kind("Deployment").items():
        for container in dep["spec"]["template"]["spec"]["containers"]:
            cmd = container.get("command", [])
            if "celery" in cmd and "-Q" in cmd:
                for queue in cmd[cmd.index("-Q") + 1].split(","):
                    consumed[queue] = name
    assert set(consumed) == {CPU_QUEUE, *MODEL_KINDS, WEBHOOK_QUEUE}, shlex.join(sorted(consumed))

    scaled = _by_kind("ScaledObject")
    for queue, deployment in consumed.items():
        owners = [s for s in scaled.values() if s["spec"]["scaleTargetRef"]["name"] == deployment]
        assert owners, f"no ScaledObject scales {deployment}"
        lists = {t["metadata"]["listName"] for s in owners for t in s["spec"]["triggers"] if t["type"] == "redis"}
        assert queue in lists, f"{deployment} is not scaled on the length of queue {queue!r}"


def test_exactly_one_beat_runs_the_janitor() -> None:
    beats = [
        d
        for d in _by_kind("Deployment").values()
        if "beat" in d["spec"]["template"]["spec"]["containers"][0]["command"]
    ]
    assert len(beats) == 1 and beats[0]["spec"]["replicas"] == 1
    assert beats[0]["spec"]["strategy"]["type"] == "Recreate"


def test_model_pool_runs_on_gpu_nodes_with_models_mounted() -> None:
    dep = _by_kind("Deployment")["hark-worker-gpu"]
    pod = dep["spec"]["template"]["spec"]
    assert pod["nodeSelector"].get("nvidia.com/gpu.present") == "true"
    (container,) = pod["containers"]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    claims = {v["persistentVolumeClaim"]["claimName"] for v in pod["volumes"] if "persistentVolumeClaim" in v}
    assert claims <= set(_by_kind("PersistentVolumeClaim"))
    assert any(m["mountPath"] == "/models" and m.get("readOnly") for m in container["volumeMounts"])


def test_pods_read_config_that_exists_and_names_real_settings() -> None:
    from dataclasses import fields

    from hark.settings import Settings

    known = {"HARK_" + f.name.upper() for f in fields(Settings)}
    maps = _by_kind("ConfigMap")
    generated = yaml.safe_load((K8S / "kustomization.yaml").read_text()).get("secretGenerator", [])
    secrets = {**_by_kind("Secret"), **{g["name"]: g for g in generated}}
    for kind in ("Deployment", "Job"):
        for name, obj in _by_kind(kind).items():
            for container in obj["spec"]["template"]["spec"]["containers"]:
                for source in container.get("envFrom", []):
                    if "configMapRef" in source:
                        assert source["configMapRef"]["name"] in maps, name
                    if "secretRef" in source:
                        assert source["secretRef"]["name"] in secrets, name
                for var in container.get("env", []):
                    assert var["name"] in known, f"{name} sets unknown {var['name']}"
    for obj in [*maps.values(), *secrets.values()]:
        keys = set(obj.get("data", {})) | set(obj.get("stringData", {}))
        assert keys <= known, f"{obj['metadata']['name']}: unknown settings {sorted(keys - known)}"


def test_no_credentials_are_committed() -> None:
    """The Secret is generated from secrets.env, which is git-ignored: without it nothing deploys,
    so no placeholder password can reach a cluster. Its example names only real settings."""
    from dataclasses import fields

    from hark.settings import Settings

    assert not _by_kind("Secret")
    (generator,) = yaml.safe_load((K8S / "kustomization.yaml").read_text())["secretGenerator"]
    assert generator["name"] == "hark-secrets" and generator["envs"] == ["secrets.env"]
    ignored = (K8S.parents[1] / ".gitignore").read_text().split()
    assert "infra/k8s/secrets.env" in ignored
    example = (K8S / "secrets.env.example").read_text().splitlines()
    keys = {line.split("=", 1)[0] for line in example if line and not line.startswith("#")}
    assert keys <= {"HARK_" + f.name.upper() for f in fields(Settings)} and "HARK_DATABASE_URL" in keys


def test_pods_run_unprivileged() -> None:
    for kind in ("Deployment", "Job"):
        for name, obj in _by_kind(kind).items():
            pod = obj["spec"]["template"]["spec"]
            assert pod["securityContext"]["runAsNonRoot"] is True, name
            assert pod["securityContext"]["runAsUser"] != 0, name
            for container in pod["containers"]:
                assert container["securityContext"]["allowPrivilegeEscalation"] is False, name
                assert container["securityContext"]["capabilities"]["drop"] == ["ALL"], name
