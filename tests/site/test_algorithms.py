"""Model containers: a team's image is uploaded (tus), run for real in the bwrap sandbox on the
test set, and its outputs are validated and scored like an uploaded predictions file.

Bad inputs tried: a file that is no image archive, an image over the phase's size limit, a
phase that takes no containers, a user with no team, a team over its daily limit; containers
that crash, hang, eat memory, write nothing or write too much; a dead worker's run; a truth version of another
test set for a re-run."""

import base64
import json
import zipfile
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from rest_framework.test import APIClient

from mica.accounts.tokens import issue_token
from mica.algorithms.models import Algorithm, ContainerImage, InferenceRun
from mica.algorithms.tasks import run_inference
from mica.challenges.models import Phase, Team, TestSet
from mica.core.storage import private_storage
from mica.core.tasks import sweep
from mica.submissions.models import Submission
from mica.submissions.tasks import validate_submission

from .conftest import PASSWORD, csv_bytes, make_user, run_evaluations, upload
from .containers import CRASH, GREEDY, HANG, HUGE_OUTPUT, MANY_OUTPUTS, NO_OUTPUT, PREDICT, image_archive

pytestmark = pytest.mark.django_db

TUS = {"HTTP_TUS_RESUMABLE": "1.0.0"}


@pytest.fixture
def container_phase(phase):
    Phase.objects.filter(pk=phase.pk).update(accepts_containers=True, container_max_mb=50, container_case_seconds=2,
                                             container_total_seconds=20, container_memory_mb=128, container_cpus=1)
    phase.refresh_from_db()
    return phase


@pytest.fixture
def archive(tmp_path):
    return image_archive(tmp_path / "model.tar", PREDICT)[0]


def api_client(user):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {issue_token(user).key}")
    return client


def metadata(**pairs):
    return ",".join(f"{key} {base64.b64encode(str(value).encode()).decode()}" for key, value in pairs.items())


def send(client, phase, path, *, chunk=256 * 1024, comment=""):
    """Uploads an archive with tus in chunks; returns the last answer."""
    data = path.read_bytes()
    created = client.post("/uploads/", HTTP_UPLOAD_LENGTH=str(len(data)), **TUS, HTTP_UPLOAD_METADATA=metadata(
        purpose="container-submission", phase=phase.pk, filename=path.name, comment=comment))
    if created.status_code != 201:
        return created
    offset = 0
    while True:
        response = client.generic("PATCH", created["Location"], data[offset:offset + chunk],
                                  content_type="application/offset+octet-stream", HTTP_UPLOAD_OFFSET=str(offset), **TUS)
        if response.status_code != 204 or "Mica-Result-Url" in response:
            return response
        offset = int(response["Upload-Offset"])


def run_container(submission):
    """The worker's steps, run here: the container, the validation of its outputs, the scoring."""
    run_inference(submission.inference_run.pk)
    submission.refresh_from_db()
    if submission.status == Submission.Status.RECEIVED:
        validate_submission(submission.pk)
        submission.refresh_from_db()
    return run_evaluations(submission)


def test_a_container_is_run_and_scored_like_an_uploaded_file(container_phase, team, participant, archive, truth):
    answer = send(api_client(participant), container_phase, archive, comment="first try")
    assert answer.status_code == 204, answer.content
    submission = Submission.objects.get()
    assert answer["Mica-Result-Url"] == submission.get_absolute_url()
    assert submission.status == Submission.Status.RECEIVED and not submission.file
    assert submission.original_filename == "model.tar" and submission.comment == "first try"
    assert submission.dispatch() is False  # the run, not the validation, is the work in the outbox

    evaluations = run_container(submission)
    run = InferenceRun.objects.get()
    assert run.status == "succeeded" and run.outcome == "succeeded" and run.exit_code == 0
    assert run.wall_seconds > 0 and run.peak_memory_bytes > 0
    assert "cases.json" in run.stdout and run.stderr == "done\n"
    assert submission.status == Submission.Status.ACCEPTED
    assert {split: e.status for split, e in evaluations.items()} == {"public": "succeeded", "private": "succeeded"}

    # The same predictions uploaded as a file by another team score the same.
    case_ids, _ = truth
    expected = csv_bytes(["case_id", "score"], [(case_id, 0.5) for case_id in container_phase.test_set.case_ids()])
    assert submission.file.read() == expected
    rival_user = make_user("ria")
    container_phase.challenge.register(rival_user)
    Team.create_for(container_phase.challenge, rival_user, "Files")
    by_file = Submission.create(phase=container_phase, user=rival_user, uploaded_file=upload("p.csv", expected))
    assert run_evaluations(by_file)["public"].metrics == evaluations["public"].metrics


def test_the_same_image_is_stored_once(container_phase, team, participant, rival, archive):
    assert send(api_client(participant), container_phase, archive).status_code == 204
    assert send(api_client(rival), container_phase, archive).status_code == 204
    assert ContainerImage.objects.count() == 1 and Algorithm.objects.count() == 2
    # One file for the digest (a second save would have been given a suffixed name).
    stem = Path(ContainerImage.objects.get().file.name).stem
    assert [name for name in private_storage().listdir("containers")[1] if name.startswith(stem)] == [f"{stem}.tar"]
    assert not private_storage().listdir("tus")[0]  # the parts are gone


@pytest.mark.parametrize("script, limits, reason", [
    (CRASH, {}, "The container exited with code 3."),
    (HANG, {"container_case_seconds": 1, "container_total_seconds": 2}, "The container did not finish within 2 seconds."),
    (GREEDY, {"container_memory_mb": 64}, "The container used more than its 64 MiB of memory."),
    (NO_OUTPUT, {}, "The container wrote no /output/predictions.csv."),
])
def test_a_failing_container_ends_as_failed_with_its_reason(container_phase, team, participant, tmp_path, script,
                                                            limits, reason):
    Phase.objects.filter(pk=container_phase.pk).update(**limits)
    path, _ = image_archive(tmp_path / "bad.tar", script)
    assert send(api_client(participant), container_phase, path).status_code == 204
    submission = Submission.objects.get()
    run_inference(submission.inference_run.pk)
    submission.refresh_from_db()
    run = submission.inference_run
    assert run.status == "failed" and run.status_reason == reason
    assert submission.status == Submission.Status.FAILED
    assert submission.status_reason == f"The container's run failed: {reason}"
    assert not submission.evaluations.exists() and not submission.file
    if script is CRASH:
        assert run.exit_code == 3 and run.stderr == "model weights missing\n"


@pytest.mark.parametrize("script, setting, value", [
    (HUGE_OUTPUT, "MICA_CONTAINER_OUTPUT_BYTES", 1024**2),
    (MANY_OUTPUTS, "MICA_CONTAINER_OUTPUT_FILES", 10),
])
def test_a_container_over_an_output_cap_fails_naming_the_cap_and_nothing_is_scored(
        container_phase, team, participant, tmp_path, settings, script, setting, value):
    setattr(settings, setting, value)
    n_cases = container_phase.test_set.cases.count()
    assert n_cases > 0
    # The cap on files never falls below one file per case (and some more): a segmentation run's masks.
    cap = "1 MiB" if script is HUGE_OUTPUT else f"{n_cases + 100} files and folders"
    path, _ = image_archive(tmp_path / "big.tar", script)
    assert send(api_client(participant), container_phase, path).status_code == 204
    submission = Submission.objects.get()
    run_inference(submission.inference_run.pk)
    submission.refresh_from_db()
    run = submission.inference_run
    assert (run.status, run.outcome) == ("failed", "output")
    assert run.status_reason.startswith(f"The container's outputs were deleted: it wrote more than {cap} to /output")
    assert submission.status == Submission.Status.FAILED and not submission.file
    assert not submission.evaluations.exists()


def test_a_run_whose_worker_keeps_dying_is_failed_by_the_sweep(container_phase, team, participant, archive, settings):
    send(api_client(participant), container_phase, archive)
    run = InferenceRun.objects.get()
    InferenceRun.objects.filter(pk=run.pk).update(status="running", attempts=settings.MICA_MAX_ATTEMPTS,
                                                  claimed_by="dead", lease_expires_at=timezone.now() - timedelta(1))
    sweep()
    run.refresh_from_db()
    assert run.status == "failed" and "stopped its worker" in run.status_reason
    submission = Submission.objects.get()
    assert submission.status == "failed" and "stopped its worker" in submission.status_reason


@pytest.mark.parametrize("change, status, words", [
    ({"accepts_containers": False}, 400, "does not take container images"),
    ({"daily_limit": 0}, 400, "submissions for today"),
    ({"container_max_mb": 0}, 413, "over the limit of 0 bytes"),
])
def test_a_phase_refuses_what_its_rules_refuse(container_phase, team, participant, archive, change, status, words):
    Phase.objects.filter(pk=container_phase.pk).update(**change)
    answer = send(api_client(participant), container_phase, archive)
    assert answer.status_code == status and words in answer.json()["detail"]
    assert not Submission.objects.exists()


def test_a_file_that_is_no_image_is_refused_and_nothing_is_stored(container_phase, team, participant, tmp_path):
    junk = tmp_path / "weights.tar"
    junk.write_bytes(b"not a tar at all" * 100)
    answer = send(api_client(participant), container_phase, junk)
    assert answer.status_code == 422
    assert answer.json()["detail"].startswith("The file is not a container image archive")
    assert not Submission.objects.exists() and not ContainerImage.objects.exists()
    assert not private_storage().listdir("tus")[0]


def test_logs_are_shown_to_the_team_only_where_the_phase_allows(client, container_phase, team, participant,
                                                                  organizer, archive):
    send(api_client(participant), container_phase, archive)
    submission = Submission.objects.get()
    run_container(submission)
    url = submission.inference_run.get_absolute_url()
    client.login(username=participant.username, password=PASSWORD)
    page = client.get(url).content.decode()
    assert 'id="logs-hidden"' in page and "cases seen by the container" not in page
    assert "Exit code" in page
    Phase.objects.filter(pk=container_phase.pk).update(container_logs_visible=True)
    assert "cases seen by the container" in client.get(url).content.decode()
    Phase.objects.filter(pk=container_phase.pk).update(container_logs_visible=False)
    client.login(username=organizer.username, password=PASSWORD)
    assert "cases seen by the container" in client.get(url).content.decode()
    submission_page = client.get(submission.get_absolute_url()).content.decode()
    assert url in submission_page


def test_the_submit_page_offers_a_container_only_where_the_phase_takes_them(client, phase, team, participant):
    client.login(username=participant.username, password=PASSWORD)
    url = f"/submissions/phases/{phase.pk}/submit/"
    assert "container-submission" not in client.get(url).content.decode()
    Phase.objects.filter(pk=phase.pk).update(accepts_containers=True)
    page = client.get(url).content.decode()
    assert 'data-tus-purpose="container-submission"' in page and "uploads/upload-form.js" in page


def test_an_organizer_reruns_an_image_elsewhere_and_compares(client, container_phase, team, participant, organizer,
                                                             archive, truth):
    send(api_client(participant), container_phase, archive)
    submission = Submission.objects.get()
    run_container(submission)
    algorithm = Algorithm.objects.get()

    # Another test set (other cases) in another phase, and a corrected truth of the first one.
    challenge = container_phase.challenge
    other_ids = [f"ext-{i:03d}" for i in range(30)]
    other = TestSet.create_from_upload(
        challenge, "External hospital", SimpleUploadedFile("t.csv", csv_bytes(
            ["case_id", "pneumonia"], [(case_id, i % 2) for i, case_id in enumerate(other_ids)])), user=organizer, seed=3)
    external = Phase.objects.create(challenge=challenge, name="External", test_set=other, primary_metric="auc",
                                    starts_at=container_phase.starts_at, ends_at=container_phase.ends_at)
    case_ids, labels = truth
    corrected = container_phase.test_set.correct_truth(
        SimpleUploadedFile("t2.csv", csv_bytes(["case_id", "pneumonia"], zip(case_ids, 1 - labels))),
        user=organizer, note="labels flipped")

    client.login(username=organizer.username, password=PASSWORD)
    refused = client.post(f"/algorithms/{algorithm.pk}/rerun/", {"phase": external.pk, "truth_version": corrected.pk})
    assert "another test set" in refused.content.decode()
    for phase, version in ((external, ""), (container_phase, corrected.pk)):
        response = client.post(f"/algorithms/{algorithm.pk}/rerun/", {"phase": phase.pk, "truth_version": version})
        assert response.status_code == 302
    reruns = InferenceRun.objects.filter(submission=None)
    assert reruns.count() == 2
    for rerun in reruns:
        run_inference(rerun.pk)
        rerun.refresh_from_db()
        assert rerun.status == "succeeded", rerun.status_reason
        assert rerun.result["metrics"]["auc"] == pytest.approx(0.5)
    assert {r.truth_version for r in reruns} == {other.latest_version, corrected}

    page = client.get(f"/algorithms/{algorithm.pk}/transferability/").content.decode()
    assert "External hospital" in page and "labels flipped" in page and "Whole test set" in page
    assert page.count("<tr>") - 1 == 4  # public and private parts of the submission, two re-runs
    assert "—" in page  # no intervals for AUC without the statistics' `intervals`


def test_the_transferability_page_shows_intervals_where_the_result_has_them(client, container_phase, team,
                                                                              participant, organizer, archive):
    send(api_client(participant), container_phase, archive)
    submission = Submission.objects.get()
    evaluations = run_container(submission)
    public = evaluations["public"]
    public.result = {**public.result, "intervals": {"auc": [0.25, 0.75]}}
    public.save(update_fields=["result"])
    client.login(username=organizer.username, password=PASSWORD)
    page = client.get(f"/algorithms/{Algorithm.objects.get().pk}/transferability/").content.decode()
    assert "[0.2500 – 0.7500]" in page


def test_a_rerun_needs_the_truth_of_the_phases_test_set(container_phase, team, participant, organizer, archive):
    send(api_client(participant), container_phase, archive)
    other = TestSet.create_from_upload(container_phase.challenge, "Other", SimpleUploadedFile(
        "t.csv", csv_bytes(["case_id", "pneumonia"], [("a", 0), ("b", 1)])), user=organizer, seed=1)
    with pytest.raises(ValidationError):
        InferenceRun.rerun(algorithm=Algorithm.objects.get(), phase=container_phase, truth_version=other.latest_version,
                           user=organizer)


def test_the_input_holds_the_test_cases_images_and_cases_json(container_phase, organizer, tmp_path):
    from django.core.files.base import ContentFile

    from mica.algorithms.inputs import prepare_input
    from mica.datasets.models import Case as ImageCase
    from mica.datasets.models import Dataset, Instance

    dataset = Dataset.objects.create(challenge=container_phase.challenge, name="Radiographs", created_by=organizer)
    first, second = container_phase.test_set.case_ids()[:2]
    for number, case_id in enumerate((first, second), start=1):
        name = private_storage().save(f"datasets/{dataset.pk}/{case_id}.png", ContentFile(f"png {number}".encode()))
        instance = Instance.objects.create(dataset=dataset, uid=f"2.25.{number}", kind="png", file=name)
        ImageCase.objects.create(dataset=dataset, case_id=case_id, level="instance", patient_pseudonym="p",
                                 instance=instance)
    prepare_input(container_phase, tmp_path)
    listed = json.loads((tmp_path / "cases.json").read_text())["cases"]
    assert [case["case_id"] for case in listed] == container_phase.test_set.case_ids()
    assert listed[0] == {"case_id": first, "files": [f"{first}/2.25.1.png"]}
    assert (tmp_path / first / "2.25.1.png").read_bytes() == b"png 1"
    assert listed[2]["files"] == []  # a test case with no stored image is listed with none


def test_segmentation_masks_are_packed_into_the_sites_zip_format(tmp_path):
    from types import SimpleNamespace

    from mica.algorithms.inputs import collect_predictions

    challenge = SimpleNamespace(task_type="segmentation", takes_masks=True)
    output = tmp_path / "output"
    (output / "masks").mkdir(parents=True)
    with pytest.raises(ValidationError, match="wrote no masks"):
        collect_predictions(challenge, output, tmp_path)
    (output / "masks" / "case-1.png").write_bytes(b"png")
    (output / "masks" / "case-2.nii.gz").write_bytes(b"nii")
    (output / "masks" / "notes.txt").write_text("ignored")
    (output / "masks" / "link.png").symlink_to("/etc/passwd")
    with zipfile.ZipFile(collect_predictions(challenge, output, tmp_path)) as packed:
        assert sorted(packed.namelist()) == ["case-1.png", "case-2.nii.gz"]

