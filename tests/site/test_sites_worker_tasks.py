"""Detection and segmentation at a hospital, end to end: the site worker as its own process
against the live server, a busybox container in the bwrap sandbox, the site's own truth (a
CSV of boxes; a folder of PNG masks), and only the site's metrics coming back."""

import json

import numpy as np
import pytest

from mica.sites.models import Site, SiteAuditEntry, SiteJob

from .sites import (COPY_MASK, ONE_BOX, audit_bodies, png, square, start_worker, task_phase, team_algorithm,
                    token_file)
from .test_sites_worker import assert_nothing_leaked, finished, sites_text_in_database

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]

N_CASES = 8


def case_ids():
    return [f"ZEBRA-PATIENT-{i:04d}" for i in range(N_CASES)]


def listed(data, names):
    (data / "cases.json").write_text(json.dumps({"cases": [
        {"case_id": case_id, "files": [name]} for case_id, name in zip(case_ids(), names)]}))


def detection_site_data(data):
    """Every case has one box: at (10, 10, 50, 50) for even cases, far from it for odd ones."""
    (data / "images").mkdir(parents=True)
    names = [f"images/scan_zebra_{i:04d}_private.png" for i in range(N_CASES)]
    for name in names:
        (data / name).write_bytes(b"\x89PNG not really an image")
    listed(data, names)
    boxes = ["10,10,50,50" if i % 2 == 0 else "100,100,40,60" for i in range(N_CASES)]
    (data / "truth.csv").write_text("patientId,x,y,width,height,Target\n"
                                    + "".join(f"{c},{b},1\n" for c, b in zip(case_ids(), boxes)))
    return names


def segmentation_site_data(data):
    """Truth: a square per case. Images (the container copies them): the square itself for even
    cases (Dice 1), an empty mask for odd ones (Dice 0)."""
    (data / "images").mkdir(parents=True)
    (data / "truth").mkdir()
    names = [f"images/scan_zebra_{i:04d}_private.png" for i in range(N_CASES)]
    for i, (case_id, name) in enumerate(zip(case_ids(), names)):
        truth = square(32, 2 + i, 3, 10)
        (data / "truth" / f"{case_id}.png").write_bytes(png(truth))
        (data / name).write_bytes(png(truth if i % 2 == 0 else np.zeros_like(truth)))
    listed(data, names)
    return names


def run_site(live_server, phase, metrics, algorithm, organizer, site_admin, tmp_path, write_data, share=False):
    site = Site.objects.create(phase=phase, name="St Elsewhere", metrics=metrics, admin=site_admin,
                               created_by=organizer, share_per_case=share)
    [job] = site.queue_evaluations(organizer)
    data = tmp_path / "site"
    names = write_data(data)
    token, _ = token_file(site, site_admin, tmp_path)
    code, log = finished(start_worker(live_server.url, token, data))
    assert code == 0, log
    job.refresh_from_db()
    assert job.status == SiteJob.Status.SUCCEEDED, (job.status_reason, log)
    assert job.algorithm == algorithm and SiteAuditEntry.objects.filter(job=job).count() == 1
    sent = [line["body"] for line in audit_bodies(data) if line["path"].endswith("/result")]
    assert sent == [SiteAuditEntry.objects.get(job=job).body]
    assert_nothing_leaked([(data / "audit.jsonl").read_text(), sites_text_in_database()], case_ids(), names)
    return job, data


def test_a_detection_site_scores_map_and_froc(live_server, organizer, participant, tmp_path):
    from .conftest import make_user

    truth = "patientId,x,y,width,height,Target\np1,10,10,50,50,1\np2,100,100,40,60,1\n"
    phase = task_phase(organizer, "detection", "map", "truth.csv", truth.encode())
    algorithm = team_algorithm(phase, participant, tmp_path, ONE_BOX, "one-box")
    job, data = run_site(live_server, phase, ["map", "froc"], algorithm, organizer, make_user("hana"), tmp_path,
                         detection_site_data, share=True)
    result = job.result
    # Half the cases hit (AP 1), half miss (AP 0).
    assert result["n_cases"] == N_CASES and result["metrics"]["map"] == pytest.approx(0.5)
    assert 0 < result["metrics"]["froc"] < 1
    for metric in ("map", "froc"):
        low, high = result["intervals"][metric]
        assert low <= result["metrics"][metric] <= high
    # Per-case values leave as the policy allows, for the metric that has them (FROC has none).
    assert result["per_case"] == {"map": [1.0, 0.0] * (N_CASES // 2)}
    kept = json.loads((data / "results" / f"{algorithm.image.digest.replace(':', '-')}.json").read_text())
    assert [row["case_id"] for row in kept["result"]["per_case"]] == case_ids()


def test_a_segmentation_site_scores_masks(live_server, organizer, participant, tmp_path):
    from .conftest import make_user

    truth = {"lung-1": square(32, 4, 4, 10), "lung-2": square(32, 10, 10, 8)}
    phase = task_phase(organizer, "segmentation", "dice", "truth.zip", masks_zip(truth))
    algorithm = team_algorithm(phase, participant, tmp_path, COPY_MASK, "copy-mask")
    job, data = run_site(live_server, phase, ["dice", "iou"], algorithm, organizer, make_user("hana"), tmp_path,
                         segmentation_site_data)
    result = job.result
    assert result["n_cases"] == N_CASES and result["missing_cases"] == 0
    assert result["metrics"] == {"dice": pytest.approx(0.5), "iou": pytest.approx(0.5)}
    assert "per_case" not in result  # the default policy keeps them at the site
    low, high = result["intervals"]["dice"]
    assert low <= 0.5 <= high and high > low
    # The container's masks stay at the site, beside the full result.
    folder = data / "results" / algorithm.image.digest.replace(":", "-")
    assert sorted(path.name for path in folder.iterdir()) == sorted(f"{c}.png" for c in case_ids())


def masks_zip(masks):
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for case_id, mask in masks.items():
            archive.writestr(f"truth/{case_id}.png", png(mask))
    return buffer.getvalue()
