"""A real S3-compatible server for the tests: moto's server mode, started as its own process."""

import os
import socket
import subprocess
import sys
import time

import boto3
from config.object_storage import object_storages

BUCKET = "mica-tests"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "mica-test-key", "AWS_SECRET_ACCESS_KEY": "mica-test-secret"}


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class ObjectStore:
    """``python -m moto.server`` on a free port of 127.0.0.1, with one empty bucket."""

    def __init__(self, log_path):
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.log = open(log_path, "ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=self.log, stderr=subprocess.STDOUT, env={**os.environ, **CREDENTIALS},
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise RuntimeError(f"moto's server did not start; see {log_path}")
                time.sleep(0.1)
        self.client.create_bucket(Bucket=BUCKET)

    @property
    def client(self):
        return boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1",
                            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
                            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"])

    def keys(self):
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
        return {item["Key"] for page in pages for item in page.get("Contents", [])}

    def environment(self):
        """What a Mica process needs in its environment to keep its files here."""
        return {"MICA_S3_BUCKET": BUCKET, "MICA_S3_ENDPOINT_URL": self.endpoint, **CREDENTIALS}

    def storages(self, base):
        """The STORAGES setting of a site on this server."""
        return {**base, **object_storages(BUCKET, endpoint_url=self.endpoint, presigned_seconds=60)}

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=10)
        self.log.close()
