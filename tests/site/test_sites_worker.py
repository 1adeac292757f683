"""A hospital's site worker as its own process (``python -m evaluator site-worker``) against a
real HTTP server (pytest-django's live_server), containers in the bwrap sandbox: it scores two
teams' algorithms on data Mica never sees, survives being killed (another worker takes the
expired lease over) and Mica being unreachable (its result waits on disk), and nothing of the
site's data appears in any request it sent or in any table Mica keeps for sites."""

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest
import requests
from django.db import connection

from mica.sites.models import SiteAuditEntry, SiteJob

from .sites import (ALTERNATE, ROOT, audit_bodies, hospital, make_algorithm, site_admin, site_data,  # noqa: F401
                    site_phase, slow, start_worker, token_file, two_algorithms, wait_for)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]


def finished(process, timeout=120):
    out, _ = process.communicate(timeout=timeout)
    return process.returncode, out.decode(errors="replace")


def sites_text_in_database():
    """Every text and JSON column of the sites tables, as one string."""
    chunks = []
    with connection.cursor() as cursor:
        cursor.execute("SELECT table_name, column_name FROM information_schema.columns WHERE table_name LIKE "
                       "'sites\\_%%' AND data_type IN ('text', 'character varying', 'jsonb')")
        for table, column in cursor.fetchall():
            cursor.execute(f'SELECT "{column}"::text FROM "{table}"')
            chunks.extend(str(value) for (value,) in cursor.fetchall())
    assert chunks, "no column of the sites tables was read"
    return "\n".join(chunks)


def assert_nothing_leaked(texts, ids, names):
    for text in texts:
        assert "ZEBRA" not in text and "zebra" not in text
        for private in (*ids[:3], *names[:3], "scan_", "PATIENT"):
            assert private not in text


def test_a_site_scores_two_algorithms_and_compares_them_at_home(live_server, hospital, two_algorithms, site_admin,
                                                                organizer, tmp_path):
    data = tmp_path / "site"
    ids, names = site_data(data)
    token, _ = token_file(hospital, site_admin, tmp_path)
    jobs = hospital.queue_evaluations(organizer)
    assert len(jobs) == 2
    code, log = finished(start_worker(live_server.url, token, data))
    assert code == 0, log
    for job in jobs:
        job.refresh_from_db()
        assert job.status == SiteJob.Status.SUCCEEDED, (job.status_reason, log)
        assert set(job.result["metrics"]) == {"auc", "log_loss"} and job.result["n_cases"] == len(ids)
        assert "per_case" not in job.result  # the site's policy keeps them at home
    coin, alternate = (SiteJob.objects.get(algorithm=a) for a in two_algorithms)
    assert coin.result["metrics"]["auc"] == pytest.approx(0.5)
    assert coin.result["metrics"]["log_loss"] == pytest.approx(0.693147, abs=1e-5)
    for metric in ("auc", "log_loss"):  # the evaluator's intervals: DeLong for AUC, a bootstrap for log loss
        low, high = alternate.result["intervals"][metric]
        assert low <= alternate.result["metrics"][metric] <= high and high > low
    # Full results stay at the site, with the case ids, for comparisons.
    kept = json.loads((data / "results" / f"{two_algorithms[1].image.digest.replace(':', '-')}.json").read_text())
    assert {row["case_id"] for row in kept["result"]["per_case"]} == set(ids)

    comparisons = [SiteJob.queue_comparison(site=hospital, algorithm=two_algorithms[0],
                                            other_algorithm=two_algorithms[1], metric=metric, user=organizer)
                   for metric in ("auc", "log_loss")]
    code, log = finished(start_worker(live_server.url, token, data))
    assert code == 0, log
    for job, method in zip(comparisons, ("DeLong", "Wilcoxon")):
        job.refresh_from_db()
        assert job.status == SiteJob.Status.SUCCEEDED, job.status_reason
        assert set(job.result) == {"status", "p_values", "method"} and method in job.result["method"]
        assert 0 <= job.result["p_values"][job.metric] <= 1

    # What left: the audit rows at Mica are the result bodies the worker logged, one each.
    sent = [line["body"] for line in audit_bodies(data) if line["path"].endswith("/result")]
    assert len(sent) == 4 and SiteAuditEntry.objects.count() == 4
    assert sorted(json.dumps(e.body, sort_keys=True) for e in SiteAuditEntry.objects.all()) == \
        sorted(json.dumps(body, sort_keys=True) for body in sent)
    stored = sites_text_in_database()
    assert "log_loss" in stored and "St Elsewhere" in stored  # the search reads what was stored
    assert_nothing_leaked([(data / "audit.jsonl").read_text(), stored], ids, names)


def test_per_case_values_leave_only_when_the_policy_allows(live_server, hospital, two_algorithms, site_admin,
                                                         organizer, tmp_path):
    hospital.share_per_case = True
    hospital.save()
    data = tmp_path / "site"
    ids, names = site_data(data)
    token, _ = token_file(hospital, site_admin, tmp_path)
    hospital.queue_evaluations(organizer)
    code, log = finished(start_worker(live_server.url, token, data))
    assert code == 0, log
    job = SiteJob.objects.get(algorithm=two_algorithms[1])
    # Bare numbers in the site's own order; AUC has none per case.
    assert list(job.result["per_case"]) == ["log_loss"] and len(job.result["per_case"]["log_loss"]) == len(ids)
    assert_nothing_leaked([(data / "audit.jsonl").read_text(), sites_text_in_database()], ids, names)


def test_a_killed_worker_loses_its_lease_to_another(live_server, hospital, site_phase, team, participant,
                                                    site_admin, organizer, settings, tmp_path):
    settings.MICA_LEASE_SECONDS = 2
    algorithm = make_algorithm(site_phase, team, participant, tmp_path, slow(ALTERNATE, 4), "slow")
    job = hospital.queue_evaluations(organizer)[0]
    token, _ = token_file(hospital, site_admin, tmp_path)
    first_data, second_data = tmp_path / "first", tmp_path / "second"
    site_data(first_data)
    site_data(second_data)
    first = start_worker(live_server.url, token, first_data, idle_exit=False)
    wait_for(lambda: SiteJob.objects.get(pk=job.pk).status == SiteJob.Status.RUNNING, what="the first claim")
    time.sleep(1)
    os.killpg(first.pid, signal.SIGKILL)  # the worker and its sandbox
    first.wait()
    first_lease = SiteJob.objects.get(pk=job.pk).claimed_by
    second = start_worker(live_server.url, token, second_data, idle_exit=False)
    wait_for(lambda: SiteJob.objects.get(pk=job.pk).status == SiteJob.Status.SUCCEEDED, timeout=60,
             what="the takeover")
    os.killpg(second.pid, signal.SIGTERM)
    second.wait()
    job.refresh_from_db()
    assert job.attempts == 2 and job.claimed_by != first_lease and job.result_lease == job.claimed_by
    assert [e.to_status for e in job.events.all()] == ["queued", "running", "running", "succeeded"]
    assert job.algorithm == algorithm and SiteAuditEntry.objects.filter(job=job).count() == 1


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_proxy(port, target, record):
    proxy = subprocess.Popen([sys.executable, str(ROOT / "tests/site/site_proxy.py"), str(port), str(target),
                              str(record)], stdout=subprocess.PIPE)
    assert proxy.stdout.readline().strip() == b"listening"
    return proxy


def test_a_result_waits_on_disk_while_mica_is_unreachable(live_server, hospital, site_phase, team, participant,
                                                          site_admin, organizer, tmp_path):
    make_algorithm(site_phase, team, participant, tmp_path, slow(ALTERNATE, 3), "slow")
    job = hospital.queue_evaluations(organizer)[0]
    token, _ = token_file(hospital, site_admin, tmp_path)
    data, record = tmp_path / "site", tmp_path / "sent.bin"
    ids, names = site_data(data)
    port, target = free_port(), int(live_server.url.rsplit(":", 1)[1])
    proxy = start_proxy(port, target, record)
    worker = start_worker(f"http://127.0.0.1:{port}", token, data, idle_exit=True)
    wait_for(lambda: any((data / "cache").glob("*.tar")), what="the image's download")
    proxy.kill()  # Mica unreachable while the container runs
    proxy.wait()
    wait_for(lambda: any((data / "pending").iterdir()), timeout=60, what="the result kept on disk")
    time.sleep(2)  # a few failed tries, backing off
    assert SiteJob.objects.get(pk=job.pk).status == SiteJob.Status.RUNNING
    proxy = start_proxy(port, target, record)
    try:
        code, log = finished(worker)
    finally:
        proxy.kill()
        proxy.wait()
    assert code == 0, log
    assert "Mica unreachable" in log
    job.refresh_from_db()
    assert job.status == SiteJob.Status.SUCCEEDED and not any((data / "pending").iterdir())
    # The recording proxy saw every byte the worker sent: nothing of the site's data.
    assert_nothing_leaked([record.read_bytes().decode(errors="replace")], ids, names)


def test_a_revoked_token_stops_the_worker(live_server, hospital, site_admin, tmp_path):
    data = tmp_path / "site"
    site_data(data)
    token, raw = token_file(hospital, site_admin, tmp_path)
    hospital.tokens.get().revoke()
    code, log = finished(start_worker(live_server.url, token, data))
    assert code == 3 and "refused the token" in log and raw not in log


def test_a_bad_data_folder_is_named(live_server, tmp_path):
    token = tmp_path / "token"
    token.write_text("mica-site-x")
    (tmp_path / "site").mkdir()
    code, log = finished(start_worker(live_server.url, token, tmp_path / "site"))
    assert code == 2 and "cases.json: missing" in log


def test_a_result_kept_on_disk_is_posted_by_the_next_worker(live_server, hospital, site_phase, team, participant,
                                                            site_admin, organizer, tmp_path):
    """Mica unreachable, then the worker killed too: the result waits in pending/, and a worker
    started later on the same folder posts it before it claims anything."""
    make_algorithm(site_phase, team, participant, tmp_path, slow(ALTERNATE, 3), "slow")
    job = hospital.queue_evaluations(organizer)[0]
    token, _ = token_file(hospital, site_admin, tmp_path)
    data = tmp_path / "site"
    site_data(data)
    port, target = free_port(), int(live_server.url.rsplit(":", 1)[1])
    proxy = start_proxy(port, target, tmp_path / "sent.bin")
    worker = start_worker(f"http://127.0.0.1:{port}", token, data, idle_exit=True)
    wait_for(lambda: any((data / "cache").glob("*.tar")), what="the image's download")
    proxy.kill()
    proxy.wait()
    wait_for(lambda: any((data / "pending").iterdir()), timeout=60, what="the result kept on disk")
    os.killpg(worker.pid, signal.SIGKILL)
    worker.wait()
    assert SiteJob.objects.get(pk=job.pk).status == SiteJob.Status.RUNNING
    code, log = finished(start_worker(live_server.url, token, data))
    assert code == 0, log
    job.refresh_from_db()
    assert job.status == SiteJob.Status.SUCCEEDED and job.attempts == 1
    assert not any((data / "pending").iterdir()) and SiteAuditEntry.objects.filter(job=job).count() == 1


def test_a_rate_limited_worker_waits_as_told_and_keeps_its_result_on_disk(live_server, hospital, site_phase, team,
                                                                          participant, site_admin, organizer,
                                                                          settings, tmp_path):
    """Another client spends the token's requests while the container runs: the worker's result
    post is answered 429, the result waits in pending/ for Retry-After, and is stored once."""
    settings.MICA_SITE_API_REQUESTS, settings.MICA_SITE_API_WINDOW_SECONDS = 5, 2
    make_algorithm(site_phase, team, participant, tmp_path, slow(ALTERNATE, 2), "slow")
    job = hospital.queue_evaluations(organizer)[0]
    token, raw = token_file(hospital, site_admin, tmp_path)
    data = tmp_path / "site"
    site_data(data)
    log = open(tmp_path / "worker.log", "wb")
    worker = start_worker(live_server.url, token, data, log=log)
    wait_for(lambda: any((data / "cache").glob("*.tar")), what="the image's download")
    stop = threading.Event()
    refused = []

    def spend():
        with requests.Session() as session:
            while not stop.is_set():
                answer = session.post(f"{live_server.url}/sites/api/jobs/{job.uuid}/heartbeat", json={"lease": "x"},
                                      headers={"Authorization": f"Bearer {raw}"})
                if answer.status_code == 429:
                    refused.append(answer)
                    time.sleep(0.05)

    spender = threading.Thread(target=spend, daemon=True)
    spender.start()
    try:
        wait_for(lambda: any((data / "pending").iterdir()), timeout=60, what="the result kept on disk")
        wait_for(lambda: b"slow down (429)" in (tmp_path / "worker.log").read_bytes(), what="the worker's 429")
        assert SiteJob.objects.get(pk=job.pk).status == SiteJob.Status.RUNNING
    finally:
        stop.set()
        spender.join()
    assert worker.wait(timeout=120) == 0, (tmp_path / "worker.log").read_text()
    assert refused and all(1 <= int(answer.headers["Retry-After"]) <= 2 for answer in refused)
    job.refresh_from_db()
    assert job.status == SiteJob.Status.SUCCEEDED and not any((data / "pending").iterdir())
    assert SiteAuditEntry.objects.filter(job=job).count() == 1
    posts = [line for line in audit_bodies(data) if line["path"].endswith("/result")]
    assert len(posts) >= 2  # refused at least once, then stored
