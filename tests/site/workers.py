"""Real Celery worker processes on the test Redis broker, sharing the test database and files."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import redis
from django.conf import settings
from django.db import connection

from config.celery import app
from mica.core.tasks import QUEUES

ROOT = Path(__file__).resolve().parents[2]


def worker_environment(**extra):
    database = settings.DATABASES["default"]
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="tests.settings",
        PYTHONPATH=f"{ROOT / 'platform'}{os.pathsep}{ROOT}",
        # The database pytest-django created for this run, not the configured one.
        DATABASE_URL=f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/{database['NAME']}",
        MICA_VAR_DIR=os.environ["MICA_VAR_DIR"],
        CELERY_BROKER_URL=settings.CELERY_BROKER_URL,
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


def flush_broker():
    """Drop every message the broker holds for Mica (Redis: its unacknowledged ones too)."""
    if settings.CELERY_BROKER_URL.startswith("redis"):
        redis.Redis.from_url(settings.CELERY_BROKER_URL).flushdb()
        return
    with app.connection_for_write() as broker:
        for queue in QUEUES:
            broker.default_channel.queue_declare(queue, durable=True, auto_delete=False)
            broker.default_channel.queue_purge(queue)


def queue_length(queue):
    """How many messages wait in a queue, on whichever broker the suite runs."""
    with app.connection_for_write() as broker:
        return broker.default_channel.queue_declare(queue, durable=True, auto_delete=False).message_count


class Worker:
    """One `celery worker` process group, started in its own session so that it can be killed whole."""

    def __init__(self, log_path, queues="ingest,cpu,gpu", **env):
        self.log_path = log_path
        command = [
            sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", queues,
            "--concurrency", "1", "--pool", "prefork", "--loglevel", "INFO",
            "--hostname", f"test-{os.getpid()}-{time.monotonic_ns()}@%h", "--without-gossip", "--without-mingle",
        ]
        self.log = open(log_path, "ab")
        self.process = subprocess.Popen(
            command, cwd=ROOT, env=worker_environment(**env), stdout=self.log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def kill(self):
        """SIGKILL to the worker and its pool children: no chance to acknowledge or clean up."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)
        self.log.close()

    def stop(self):
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()
        if not self.log.closed:
            self.log.close()

    def output(self):
        return Path(self.log_path).read_text(errors="replace")


def wait_for(predicate, timeout, interval=0.05, what="the condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
        connection.close()  # see other processes' commits on the next query
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")
