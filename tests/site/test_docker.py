"""The production compose file and images, checked without a Docker engine."""

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker" / "compose.yaml"


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="Debian's docker-compose is not installed")
def test_the_compose_file_is_valid():
    result = subprocess.run(
        ["docker-compose", "-f", str(COMPOSE), "config", "-q"], capture_output=True, text=True,
        env={"PATH": "/usr/bin:/bin", "SECRET_KEY": "x", "POSTGRES_PASSWORD": "x", "MINIO_ROOT_PASSWORD": "x"},
    )
    assert result.returncode == 0, result.stderr


def test_every_service_has_a_healthcheck_and_the_gpu_worker_takes_the_gpu_queue():
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    assert set(services) >= {"web", "worker", "gpu-worker", "postgres", "redis"}
    for name, service in services.items():
        assert "healthcheck" in service, f"{name} has no healthcheck"
    assert "-Q gpu" in " ".join(services["gpu-worker"]["command"])
    assert "gpu" not in " ".join(services["worker"]["command"]).split("-Q", 1)[1].split()[0].split(",")
    assert "gunicorn" in " ".join(services["web"]["command"])


def test_web_and_workers_share_no_disk_and_workers_scale():
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    assert "minio" in services
    for name in ("web", "worker", "gpu-worker", "beat"):
        service = services[name]
        assert not service.get("volumes"), f"{name} mounts a volume: files must go through object storage"
        assert service["environment"]["MICA_S3_ENDPOINT_URL"] == "http://minio:9000"
    for name in ("worker", "gpu-worker"):  # `--scale` needs no fixed name and no host port
        assert "container_name" not in services[name] and "ports" not in services[name]


def test_the_image_installs_the_pinned_requirements_and_drops_root():
    text = (ROOT / "docker" / "Dockerfile").read_text()
    assert "-r requirements.txt" in text
    assert "torch==2.13.0" in text and "torch==2.13.0" in (ROOT / "requirements.txt").read_text()
    assert "\nUSER mica" in text


def test_the_gpu_worker_takes_the_cuda_build_of_torch():
    gpu = yaml.safe_load(COMPOSE.read_text())["services"]["gpu-worker"]
    assert gpu["build"]["args"]["TORCH_INDEX_URL"] == ""
    assert gpu["deploy"]["resources"]["reservations"]["devices"][0]["capabilities"] == ["gpu"]
