"""Settings come from the environment and fail loudly on bad values."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from config.env import env_bool, env_int, env_list

ROOT = Path(__file__).resolve().parents[2]


def test_env_bool_names_the_variable_it_cannot_read(monkeypatch):
    monkeypatch.setenv("DEBUG", "maybe")
    with pytest.raises(ImproperlyConfigured, match="DEBUG='maybe' is not a boolean"):
        env_bool("DEBUG")
    monkeypatch.setenv("DEBUG", "Yes")
    assert env_bool("DEBUG") is True


def test_env_int_checks_number_and_minimum(monkeypatch):
    monkeypatch.setenv("MICA_SCORING_TIME_LIMIT", "ten")
    with pytest.raises(ImproperlyConfigured, match="not a whole number"):
        env_int("MICA_SCORING_TIME_LIMIT", 1)
    monkeypatch.setenv("MICA_SCORING_TIME_LIMIT", "0")
    with pytest.raises(ImproperlyConfigured, match="below its minimum of 1"):
        env_int("MICA_SCORING_TIME_LIMIT", 1, minimum=1)


def test_env_list_splits_on_commas(monkeypatch):
    monkeypatch.setenv("ALLOWED_HOSTS", "a.org, b.org,,")
    assert env_list("ALLOWED_HOSTS") == ["a.org", "b.org"]


def run_django(args, **env):
    inherited = ("SECRET_KEY", "DEBUG", "DATABASE_URL", "CELERY_BROKER_URL", "DJANGO_SETTINGS_MODULE",
                 "SECURE_SSL_REDIRECT", "ALLOWED_HOSTS", "MICA_VAR_DIR")
    clean = {k: v for k, v in os.environ.items() if k not in inherited}
    clean.update(env, PYTHONPATH=f"{ROOT / 'platform'}{os.pathsep}{ROOT}")
    return subprocess.run([sys.executable, str(ROOT / "manage.py"), *args], capture_output=True, text=True,
                          env=clean, cwd=ROOT)


def test_production_refuses_to_start_without_a_secret_key(tmp_path):
    result = run_django(["check"], MICA_VAR_DIR=str(tmp_path))
    assert result.returncode != 0
    assert "SECRET_KEY must be set when DEBUG is off" in result.stderr


def test_a_newcomer_runs_on_sqlite_with_no_configuration(tmp_path):
    result = run_django(["check"], DEBUG="1", MICA_VAR_DIR=str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "mica.sqlite3").exists() or "no issues" in result.stdout


def test_check_deploy_is_clean_in_production_mode(tmp_path):
    result = run_django(
        ["check", "--deploy", "--fail-level", "WARNING"],
        SECRET_KEY="x" * 60 + "production-grade-secret-key-of-sufficient-length",
        DATABASE_URL="postgres://postgres@127.0.0.1:5432/mica",
        CELERY_BROKER_URL="redis://127.0.0.1:6379/0",
        ALLOWED_HOSTS="mica.example.org",
        MICA_VAR_DIR=str(tmp_path),
    )
    assert result.returncode == 0, result.stderr + result.stdout


def test_check_deploy_warns_about_sqlite_and_the_file_broker(tmp_path):
    result = run_django(["check", "--deploy"], SECRET_KEY="y" * 80, MICA_VAR_DIR=str(tmp_path))
    assert "mica.W001" in result.stderr and "mica.W002" in result.stderr
