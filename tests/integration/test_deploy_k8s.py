"""deploy/k8s: every overlay renders (kustomize, as `kubectl kustomize`), built-in objects decode
strictly into the k8s.io/api types (unknown fields fail), custom resources carry the fields
Holdline relies on, and the manifests agree with the code (consumer groups, topics, ports).
Fails, never skips, without Go."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
TOOL = ROOT / "deploy/tools/k8scheck"
K8S = ROOT / "deploy/k8s"
TARGETS = [".", "overlays/dev", "overlays/prod"]


@pytest.fixture(scope="module")
def k8scheck(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The checker, built from its committed go.mod/go.sum (Go's build cache keeps reruns fast)."""
    go = shutil.which("go")
    if go is None:
        pytest.fail("go is missing: install Go 1.26 or later to validate deploy/k8s")
    binary = tmp_path_factory.mktemp("k8scheck") / "k8scheck"
    done = subprocess.run(
        [go, "build", "-mod=readonly", "-o", str(binary), "."],
        cwd=TOOL, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return binary


def _check(binary: Path, root: Path, *targets: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(binary), *targets], cwd=root, capture_output=True, text=True, timeout=120
    )


def test_every_overlay_renders_and_validates(k8scheck: Path) -> None:
    done = _check(k8scheck, K8S, *TARGETS)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = {line.split(":")[0].removeprefix("ok "): line for line in done.stdout.splitlines()}
    assert set(lines) == set(TARGETS), done.stdout
    for line in lines.values():
        for kind in ("Deployment=4", "Service=4", "ScaledObject=3", "HorizontalPodAutoscaler=1",
                     "PodDisruptionBudget=4", "KafkaTopic=8", "Kafka=1", "Cluster=1",
                     "Database=4", "NetworkPolicy=3", "ServiceMonitor=1"):  # fmt: skip
            assert f" {kind}" in line or f"({kind}" in line, (kind, line)
    # production holds references to Secrets only; development generates placeholder ones
    assert "Secret=" not in lines["overlays/prod"] and "Secret=" not in lines["."]
    assert "Secret=5" in lines["overlays/dev"]


def test_dashboards_and_rules_copies_are_fresh() -> None:
    done = subprocess.run(
        [sys.executable, "deploy/tools/sync_k8s.py", "--check"],
        cwd=ROOT, capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


def _docs(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def test_autoscaling_follows_the_consumers_in_the_code() -> None:
    """risk, assistance and notify scale on the lag of the group and topic their ConsumerSpec
    declares; intake (HTTP first, with a side consumer) scales on CPU."""
    scaled = {d["metadata"]["name"]: d for d in _docs(K8S / "base/autoscaling.yaml")
              if d["kind"] == "ScaledObject"}  # fmt: skip
    hpa = [d for d in _docs(K8S / "base/autoscaling.yaml") if d["kind"] != "ScaledObject"]
    assert [d["spec"]["scaleTargetRef"]["name"] for d in hpa] == ["intake"]
    declared: dict[str, dict[str, list[str]]] = {}
    for app in sorted(ROOT.glob("services/*/app.py")):
        specs = re.findall(
            r'ConsumerSpec\(\s*name="([^"]+)",\s*topics=\[([^\]]*)\]', app.read_text()
        )
        declared[app.parent.name] = {n: re.findall(r'"(\w+)"', t) for n, t in specs}
    assert set(scaled) == {"risk", "assistance", "notify"}
    topics = {d["metadata"]["name"] for d in _docs(K8S / "base/topics.yaml")}
    notify_metrics = (ROOT / "services/notify/metrics.py").read_text()
    for name, obj in scaled.items():
        groups = set()
        for trigger in obj["spec"]["triggers"]:
            if trigger["type"] == "prometheus":  # notify's dispatch queue, a metric it exports
                assert name == "notify", name
                metric = re.search(r"\((holdline_\w+)\)", trigger["metadata"]["query"])
                assert metric and f'"{metric.group(1)}"' in notify_metrics, trigger
                continue
            group = trigger["metadata"]["consumerGroup"].removeprefix("holdline.")  # prefix
            assert group in declared[name], (name, declared[name])
            topic = trigger["metadata"]["topic"]
            assert topic in {f"holdline.{t}.v1" for t in declared[name][group]}
            groups.add(group)
        # every group that reads a service's scaling topic has a trigger (risk: two groups)
        main = obj["spec"]["triggers"][0]["metadata"]["topic"]
        assert groups == {g for g, ts in declared[name].items() if main in
                          {f"holdline.{t}.v1" for t in ts}}, (name, groups)  # fmt: skip
        assert obj["spec"]["scaleTargetRef"]["name"] == name
    for short in ("signals", "cases", "assistance", "notifications"):
        assert {f"holdline.{short}.v1", f"holdline.{short}.v1.dlq"} <= topics


def test_ports_match_the_service_settings() -> None:
    for name in ("intake", "risk", "assistance", "notify"):
        config = (ROOT / f"services/{name}/config.py").read_text()
        port = int(re.search(r"port: int = (\d+)", config).group(1))  # type: ignore[union-attr]
        docs = {d["kind"]: d for d in _docs(K8S / f"base/services/{name}.yaml")}
        container = docs["Deployment"]["spec"]["template"]["spec"]["containers"][0]
        assert container["ports"][0]["containerPort"] == port
        assert container["args"] == [name]
        assert docs["Service"]["spec"]["ports"][0]["port"] == port


BROKEN = [
    # (what is broken, file under deploy/k8s, pattern, replacement, expected message)
    ("unknown Deployment field", "base/services/risk.yaml", r"revisionHistoryLimit:",
     "revisionHistoryLimits:", 'unknown field "spec.revisionHistoryLimits"'),
    ("wrong type in a Service", "base/services/intake.yaml", r"port: 8001, targetPort",
     'port: "eight", targetPort', "ServicePort.spec.ports.port of type int32"),
    ("writable root filesystem", "base/services/notify.yaml", r"readOnlyRootFilesystem: true",
     "readOnlyRootFilesystem: false", "readOnlyRootFilesystem must be true"),
    ("liveness on the wrong path", "base/services/risk.yaml",
     r"livenessProbe:\n            httpGet: \{path: /healthz",
     "livenessProbe:\n            httpGet: {path: /live", 'path is "/live", want "/healthz"'),
    ("lag trigger on an undeclared topic", "base/autoscaling.yaml", r"topic: holdline\.cases\.v1",
     "topic: holdline.case.v1", 'topic "holdline.case.v1" is not a KafkaTopic'),
    ("more consumers than partitions", "base/autoscaling.yaml", r"maxReplicaCount: 12",
     "maxReplicaCount: 24", "exceeds the 12 partitions"),
    ("topic without partitions", "base/topics.yaml", r"  partitions: 12\n", "",
     "spec.partitions must be an integer >= 1"),
    ("Kafka without KRaft controllers", "base/kafka.yaml", r"roles: \[controller\]",
     "roles: [broker]", "no KafkaNodePool with the controller role"),
    ("database owned by an unknown role", "base/postgres.yaml", r"owner: notify\n",
     "owner: nobody\n", 'owner "nobody" is not a managed role'),
    ("PDB selecting nothing", "base/pdb.yaml", r"app.kubernetes.io/name: notify",
     "app.kubernetes.io/name: notifier", "PodDisruptionBudget/notify: selector matches no"),
    ("HPA fighting KEDA", "base/autoscaling.yaml", r"name: intake\}",
     "name: risk}", 'Deployment "risk" is also scaled by ScaledObject'),
    ("an untagged image", "overlays/prod/kustomization.yaml", r"    newTag: 0\.1\.0\n", "",
     'image "ghcr.io/holdline/holdline" needs an explicit tag'),
    ("an unknown kind", "base/servicemonitor.yaml", r"kind: ServiceMonitor",
     "kind: ServiceMonitorr", "neither a built-in kind Holdline uses nor a custom resource"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("what", "file", "old", "new", "message"), BROKEN, ids=[b[0] for b in BROKEN]
)
def test_a_broken_copy_is_rejected(
    k8scheck: Path, tmp_path: Path, what: str, file: str, old: str, new: str, message: str
) -> None:
    root = tmp_path / "k8s"
    shutil.copytree(K8S, root)
    target = root / file
    text, found = re.subn(old, new, target.read_text(), count=1)
    assert found, f"the text broken for {what!r} is gone from {file}; update the test"
    target.write_text(text)
    done = _check(k8scheck, root, "overlays/prod")
    assert done.returncode == 1, done.stdout + done.stderr
    assert message in done.stdout, done.stdout
