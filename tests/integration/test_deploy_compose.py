"""docker-compose.yml: valid against the Compose specification (compose-go, the loader `docker
compose` uses) and wired the way the stack needs: built image, non-root, healthchecks, Prometheus
rules, Grafana provisioning. No Docker engine is needed; Go is (it fails, never skips, without)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TOOL = ROOT / "deploy/tools/composecheck"
COMPOSE = ROOT / "docker-compose.yml"


@pytest.fixture(scope="module")
def composecheck(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The checker, built from its committed go.mod/go.sum (Go's build cache keeps reruns fast)."""
    go = shutil.which("go")
    if go is None:
        pytest.fail("go is missing: install Go 1.26 or later to validate docker-compose.yml")
    binary = tmp_path_factory.mktemp("composecheck") / "composecheck"
    done = subprocess.run(
        [go, "build", "-mod=readonly", "-o", str(binary), "."],
        cwd=TOOL, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return binary


def _check(binary: Path, compose: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(binary), str(compose)], cwd=compose.parent, capture_output=True, text=True, timeout=60
    )


def _copy_stack(dest: Path) -> Path:
    """The compose file with everything it refers to, so a copy can be broken on purpose."""
    shutil.copy(COMPOSE, dest / "docker-compose.yml")
    shutil.copy(ROOT / "Dockerfile", dest / "Dockerfile")
    for part in ("prometheus", "grafana", "compose"):
        shutil.copytree(ROOT / "deploy" / part, dest / "deploy" / part)
    return dest / "docker-compose.yml"


def test_compose_file_is_valid_and_complete(composecheck: Path) -> None:
    done = _check(composecheck, COMPOSE)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ok " in done.stdout and 'project "holdline", 8 services' in done.stdout
    for service in ("intake", "risk", "assistance", "notify"):
        assert f"service {service}=holdline:local (built)" in done.stdout
    assert "service kafka=apache/kafka:" in done.stdout
    assert "service postgres=postgres:" in done.stdout


def test_the_copy_used_by_the_negative_cases_passes(composecheck: Path, tmp_path: Path) -> None:
    done = _check(composecheck, _copy_stack(tmp_path))
    assert done.returncode == 0, done.stdout + done.stderr


BROKEN = [
    # (what is broken, pattern, replacement, file, expected message)
    ("unknown top-level key", r"\nvolumes:\n", "\nvolums:\n", "docker-compose.yml",
     "additional properties 'volums' not allowed"),
    ("ports of the wrong type", r'ports: \["8002:8002"\]', "ports: 8002", "docker-compose.yml",
     "services.risk.ports must be a array"),
    ("unknown service key", r'    command: \["notify"\]', '    commands: ["notify"]',
     "docker-compose.yml", "services.notify.commands false schema"),
    ("a service without healthcheck", r"test: \[.*:8003/readyz.*\]", 'test: ["NONE"]',
     "docker-compose.yml", "assistance: needs a healthcheck"),
    ("Prometheus without its rules", r"\n      - \./deploy/prometheus/alerts\.yml:.*", "",
     "docker-compose.yml", "must mount prometheus.yml and alerts.yml"),
    ("the image running as root", r"USER 10001:10001", "USER root", "Dockerfile",
     "must switch to a numeric non-root USER"),
    ("a user name Kubernetes cannot verify", r"USER 10001:10001", "USER holdline", "Dockerfile",
     "must switch to a numeric non-root USER"),
    ("a BuildKit build check", r"AS runtime", "as runtime", "Dockerfile",
     "build check FromAsCasing"),
    ("a Dockerfile syntax error", r"\nWORKDIR /home/holdline", "\nWORKDIR", "Dockerfile",
     "WORKDIR requires exactly one argument"),
    ("a single-stage image", r"(?s)# build:.*?(?=# runtime)", "",
     "Dockerfile", "must be a multi-stage build"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("what", "old", "new", "file", "message"), BROKEN, ids=[b[0] for b in BROKEN]
)
def test_a_broken_copy_is_rejected(
    composecheck: Path, tmp_path: Path, what: str, old: str, new: str, file: str, message: str
) -> None:
    compose = _copy_stack(tmp_path)
    target = tmp_path / file
    text, found = re.subn(old, new, target.read_text(), count=1)
    assert found, f"the text broken for {what!r} is gone from {file}; update the test"
    target.write_text(text)
    done = _check(composecheck, compose)
    assert done.returncode == 1, done.stdout + done.stderr
    assert message in done.stdout, done.stdout
