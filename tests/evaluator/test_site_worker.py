"""The site worker's own parts, without Mica: its data folder's checks (each bad input named),
what a result body carries (no case id, per-case values only when allowed, in the site's
order), retries with backoff until a server answers, and no framework imported."""

import json
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from evaluator.site_worker import DataFolder, SiteWorker, WorkerStopped, paired_wilcoxon, site_result

ROOT = Path(__file__).resolve().parents[2]


def folder(tmp_path, cases=None, truth=True):
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "a.png").write_bytes(b"x")
    if cases is not None:
        (tmp_path / "cases.json").write_text(cases if isinstance(cases, str) else json.dumps(cases))
    if truth:
        (tmp_path / "truth.csv").write_text("case_id,label\nA-1,1\n")
    return tmp_path


@pytest.mark.parametrize("cases, truth, message", [
    (None, True, "cases.json: missing"),
    ("{not json", True, "cases.json: expected"),
    ({"cases": [{"id": "A-1"}]}, True, "cases.json: expected"),
    ({"cases": []}, True, "lists no case"),
    ({"cases": [{"case_id": "A-1", "files": ["images/a.png"]}]}, False, "no truth"),
])
def test_a_bad_data_folder_is_named(tmp_path, cases, truth, message):
    with pytest.raises(ValueError, match=message):
        DataFolder(folder(tmp_path, cases, truth))


def test_a_listed_file_outside_the_folder_is_refused(tmp_path):
    data = DataFolder(folder(tmp_path, {"cases": [{"case_id": "A-1", "files": ["../outside.png"]}]}))
    (tmp_path.parent / "outside.png").write_bytes(b"x")
    (tmp_path / "input").mkdir()
    with pytest.raises(ValueError, match="is not a file inside"):
        data.prepare_input(tmp_path / "input")


def test_the_input_holds_the_images_and_cases_json_but_not_the_truth(tmp_path):
    data = DataFolder(folder(tmp_path, {"cases": [{"case_id": "A-1", "files": ["images/a.png"]}]}))
    (tmp_path / "input").mkdir()
    data.prepare_input(tmp_path / "input")
    assert sorted(str(p.relative_to(tmp_path / "input")) for p in (tmp_path / "input").rglob("*")) == \
        ["cases.json", "images", "images/a.png"]


RESULT = {"n_cases": 3, "missing_cases": 1,
          "metrics": {"auc": 0.7, "log_loss": 0.5, "sensitivity": 0.9},
          "intervals": {"auc": {"low": 0.6, "high": 0.8, "level": 0.95, "method": "delong", "degenerate": False},
                        "log_loss": {"low": None, "high": None, "level": 0.95, "method": "bootstrap",
                                     "degenerate": False}},
          "per_case": [{"case_id": "C-2", "log_loss": 0.2}, {"case_id": "C-1", "log_loss": 0.1},
                       {"case_id": "C-3", "log_loss": 0.3}]}


def test_the_caps_on_output_are_the_sites_own_and_fit_its_cases(tmp_path):
    """The claim brings the phase's time, memory and CPUs; the caps on /output guard the
    hospital's disk (its own flags), and the file cap never stops a run writing one file per case."""
    cases = {"cases": [{"case_id": f"A-{index}", "files": ["images/a.png"]} for index in range(300)]}
    claimed = {"wall_seconds": 600, "memory_bytes": 2**30, "cpus": 2.0, "max_unpacked_bytes": 2**31}
    worker = SiteWorker("http://127.0.0.1:9", "mica-site-x", folder(tmp_path, cases), output_bytes=2**20,
                        output_files=50)
    limits = worker.container_limits(claimed)
    assert (limits.wall_seconds, limits.memory_bytes, limits.cpus) == (600, 2**30, 2.0)
    assert (limits.output_bytes, limits.output_files) == (2**20, 400)
    by_default = SiteWorker("http://127.0.0.1:9", "mica-site-x", tmp_path).container_limits(claimed)
    assert (by_default.output_bytes, by_default.output_files) == (2 * 1024**3, 50_000)
    for bad in ({"output_bytes": 0}, {"output_files": -1}):
        with pytest.raises(ValueError, match=f"Limits.{next(iter(bad))} must be a positive number"):
            SiteWorker("http://127.0.0.1:9", "mica-site-x", tmp_path, **bad)


def test_a_result_body_carries_no_case_id():
    body = site_result(RESULT, ["auc", "log_loss"], ["C-1", "C-2", "C-3"], share_per_case=False)
    assert body == {"status": "succeeded", "n_cases": 3, "missing_cases": 1,
                    "metrics": {"auc": 0.7, "log_loss": 0.5}, "intervals": {"auc": [0.6, 0.8]}}  # no made-up bounds
    shared = site_result(RESULT, ["auc", "log_loss"], ["C-1", "C-2", "C-3"], share_per_case=True)
    assert shared["per_case"] == {"log_loss": [0.1, 0.2, 0.3]}  # the site's order, bare numbers
    assert "C-" not in json.dumps(shared)


def test_the_paired_test_is_scipys_wilcoxon():
    from scipy.stats import wilcoxon

    a, b = [0.1, 0.5, 0.3, 0.9, 0.4, 0.7], [0.2, 0.1, 0.35, 0.5, 0.45, 0.2]
    assert paired_wilcoxon(a, b)[0] == pytest.approx(wilcoxon(a, b).pvalue)
    assert paired_wilcoxon([0.1, 0.2], [0.1, 0.2])[0] == 1.0


class Answer(BaseHTTPRequestHandler):
    status = 204

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(self.status)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_requests_back_off_until_the_server_answers(tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    data = folder(tmp_path, {"cases": [{"case_id": "A-1", "files": ["images/a.png"]}]})
    worker = SiteWorker(f"http://127.0.0.1:{port}", "mica-site-x", data, max_backoff=0.5, request_timeout=2)
    servers = []

    def listen():
        servers.append(ThreadingHTTPServer(("127.0.0.1", port), Answer))
        servers[0].serve_forever()

    starter = threading.Timer(1.5, listen)  # nothing listens for 1.5 s
    started = time.monotonic()
    starter.start()
    try:
        response = worker._send_until_answered("POST", "/sites/api/claim", {})
    finally:
        starter.join(0.1)
        servers[0].shutdown()
        servers[0].server_close()
    assert response.status_code == 204 and time.monotonic() - started >= 1.5
    tries = [json.loads(line) for line in (data / "audit.jsonl").read_text().splitlines()]
    assert len(tries) >= 3 and all(t["body"] == {} and t["path"] == "/sites/api/claim" for t in tries)
    Answer.status = 401
    server = ThreadingHTTPServer(("127.0.0.1", port), Answer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with pytest.raises(WorkerStopped, match="refused the token"):
            worker._send_until_answered("POST", "/sites/api/claim", {})
    finally:
        server.shutdown()
        Answer.status = 204


def test_the_site_worker_imports_no_framework():
    code = "import sys, evaluator.site_worker; assert not {'django', 'celery'} & set(sys.modules), sys.modules.keys()"
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


class Archive(BaseHTTPRequestHandler):
    body = b"not the announced image"

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args):
        pass


def test_an_image_whose_sha256_differs_is_refused_and_not_kept(tmp_path):
    import hashlib

    server = ThreadingHTTPServer(("127.0.0.1", 0), Archive)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    data = folder(tmp_path, {"cases": [{"case_id": "A-1", "files": ["images/a.png"]}]})
    worker = SiteWorker(f"http://127.0.0.1:{server.server_address[1]}", "mica-site-x", data)
    job = {"job": "j", "lease": "l", "image": {"url": "/image", "digest": "sha256:" + "0" * 64,
                                               "sha256": hashlib.sha256(b"the real image").hexdigest()}}
    try:
        with pytest.raises(ValueError, match="sha256 does not match"):
            worker.download_image(job)
    finally:
        server.shutdown()
    assert not any((data / "cache").iterdir())
