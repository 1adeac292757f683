"""The submission page: upload, validation errors, limits and access."""

import pytest
from django.urls import reverse

from mica.submissions.models import Submission

from .conftest import PASSWORD, upload

pytestmark = pytest.mark.django_db


def submit(client, phase, name, content):
    return client.post(reverse("submissions:create", args=[phase.pk]), {"predictions": upload(name, content)})


def test_it_shows_the_header_to_use(client, phase, team, participant):
    client.login(username=participant.username, password=PASSWORD)
    page = client.get(reverse("submissions:create", args=[phase.pk])).content.decode()
    assert "<code>case_id,score</code>" in page
    assert "40 cases" in page


def test_it_stores_and_queues_a_valid_file(client, phase, team, participant, predictions):
    client.login(username=participant.username, password=PASSWORD)
    response = submit(client, phase, "my-predictions.csv", predictions)
    submission = Submission.objects.get()
    assert response.status_code == 302
    assert response["Location"] == submission.get_absolute_url()
    assert submission.status == Submission.Status.ACCEPTED
    assert submission.team == team
    assert submission.original_filename == "my-predictions.csv"
    assert submission.file.read() == predictions
    assert [e.to_status for e in submission.events.all()] == [Submission.Status.ACCEPTED]
    assert sorted(submission.evaluations.values_list("split", "status")) == [("private", "queued"), ("public", "queued")]


BAD_FILES = {
    "a 0-byte upload": (b"", "empty"),
    "a header and no rows": (b"case_id,score\n", "no rows"),
    "a wrong header": (b"case,prob\ncase-00000,0.5\n", "header"),
    "a duplicate case_id": (b"case_id,score\ncase-00000,0.5\ncase-00000,0.6\n", "duplicate"),
    "an unknown case_id": (b"case_id,score\ncase-00000,0.5\nnot-a-case,0.6\n", "not-a-case"),
    "a non-numeric score": (b"case_id,score\ncase-00000,high\n", "high"),
    "a NaN score": (b"case_id,score\ncase-00000,nan\n", "nan"),
    "an infinite score": (b"case_id,score\ncase-00000,inf\n", "inf"),
    "a score above 1": (b"case_id,score\ncase-00000,1.5\n", "1.5"),
    "a binary file named .csv": (bytes(range(256)) * 4, "binary"),
    "a row with too many columns": (b"case_id,score\ncase-00000,0.5,0.7\n", "column"),
}


@pytest.mark.parametrize("content, expected_words", BAD_FILES.values(), ids=BAD_FILES.keys())
def test_it_explains_a_bad_file_and_stores_nothing(client, phase, team, participant, content, expected_words):
    client.login(username=participant.username, password=PASSWORD)
    files_before = list_private_submission_files()
    response = submit(client, phase, "bad.csv", content)
    assert response.status_code == 200
    errors = " ".join(response.context["form"].errors["predictions"])
    assert expected_words.lower() in errors.lower()
    assert "bad.csv" in errors or expected_words == "empty"
    assert Submission.objects.count() == 0
    assert list_private_submission_files() == files_before


def test_it_names_the_row_of_a_bad_value(client, phase, team, participant):
    client.login(username=participant.username, password=PASSWORD)
    content = b"case_id,score\ncase-00000,0.5\ncase-00001,abc\n"
    response = submit(client, phase, "bad.csv", content)
    errors = " ".join(response.context["form"].errors["predictions"])
    assert "row 3" in errors
    assert "score" in errors


def test_it_enforces_the_daily_limit(client, phase, team, participant, predictions):
    phase.daily_limit, phase.concurrent_limit = 2, 10
    phase.save()
    client.login(username=participant.username, password=PASSWORD)
    for _ in range(2):
        assert submit(client, phase, "p.csv", predictions).status_code == 302
    response = submit(client, phase, "p.csv", predictions)
    assert response.status_code == 200
    assert "2 submissions for today" in " ".join(response.context["form"].errors["predictions"])
    assert Submission.objects.count() == 2


def test_it_refuses_a_participant_without_a_team(client, phase, outsider, predictions):
    phase.challenge.register(outsider)
    client.login(username=outsider.username, password=PASSWORD)
    response = submit(client, phase, "p.csv", predictions)
    assert response.status_code == 200
    assert "team" in " ".join(response.context["form"].errors["predictions"]).lower()
    assert Submission.objects.count() == 0


def test_it_refuses_a_closed_phase(client, phase, team, participant, predictions):
    phase.ends_at = phase.starts_at + (phase.ends_at - phase.starts_at) / 100
    phase.save()
    client.login(username=participant.username, password=PASSWORD)
    response = submit(client, phase, "p.csv", predictions)
    assert "not open" in " ".join(response.context["form"].errors["predictions"])
    assert Submission.objects.count() == 0


def test_it_checks_access(client, phase, predictions):
    response = submit(client, phase, "p.csv", predictions)
    assert response.status_code == 302
    assert reverse("accounts:login") in response["Location"]
    assert Submission.objects.count() == 0


def list_private_submission_files():
    from django.core.files.storage import storages

    storage = storages["private"]
    if not storage.exists("submissions"):
        return []
    found = []
    for folder in storage.listdir("submissions")[0]:
        found.extend(storage.listdir(f"submissions/{folder}")[1])
    return sorted(found)


def test_it_enforces_the_concurrent_limit_on_public_scoring_only(client, phase, team, participant, predictions):
    from .conftest import run_evaluations
    from mica.evaluations.tasks import run_evaluation

    client.login(username=participant.username, password=PASSWORD)
    phase.concurrent_limit, phase.daily_limit = 1, 10
    phase.save()
    assert submit(client, phase, "p.csv", predictions).status_code == 302
    response = submit(client, phase, "p.csv", predictions)
    assert "being processed" in " ".join(response.context["form"].errors["predictions"])
    first = Submission.objects.get()
    # Once the public part is scored, the team may submit again, whatever the private part does.
    run_evaluation(first.evaluations.get(split="public").pk)
    assert first.evaluations.get(split="private").status == "queued"
    assert submit(client, phase, "p.csv", predictions).status_code == 302
    run_evaluations(first)


def test_it_enforces_the_total_limit(client, phase, team, participant, predictions):
    phase.total_limit, phase.concurrent_limit = 1, 10
    phase.save()
    client.login(username=participant.username, password=PASSWORD)
    assert submit(client, phase, "p.csv", predictions).status_code == 302
    response = submit(client, phase, "p.csv", predictions)
    assert "all 1 submissions" in " ".join(response.context["form"].errors["predictions"])


def test_the_daily_limit_restarts_at_midnight_utc(phase, team, participant, predictions):
    from datetime import datetime, timezone as dt_timezone

    phase.daily_limit, phase.concurrent_limit = 1, 10
    phase.starts_at = datetime(2020, 1, 1, tzinfo=dt_timezone.utc)
    phase.save()
    before_midnight = datetime(2030, 5, 1, 23, 59, 59, tzinfo=dt_timezone.utc)
    Submission.create(phase=phase, user=participant, uploaded_file=upload("p.csv", predictions))
    Submission.objects.update(created_at=before_midnight)
    assert phase.remaining_submissions(team, now=before_midnight) == 0
    assert phase.remaining_submissions(team, now=datetime(2030, 5, 2, 0, 0, 0, tzinfo=dt_timezone.utc)) == 1


def test_concurrent_uploads_cannot_overrun_the_daily_limit(transactional_db, phase, team, participant, predictions):
    """Eight requests at once for two places: the team row lock lets exactly two through."""
    import threading

    from django.core.exceptions import ValidationError
    from django.db import connection

    phase.daily_limit, phase.concurrent_limit = 2, 100
    phase.save()
    outcomes = []

    def attempt():
        try:
            Submission.create(phase=phase, user=participant, uploaded_file=upload("p.csv", predictions))
            outcomes.append("stored")
        except ValidationError:
            outcomes.append("refused")
        finally:
            connection.close()

    threads = [threading.Thread(target=attempt) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["refused"] * 6 + ["stored"] * 2
    assert Submission.objects.count() == 2


def test_a_submission_counts_when_its_upload_completes_before_the_end(phase, team, participant, predictions):
    from django.core.exceptions import ValidationError
    from django.utils import timezone

    phase.ends_at = timezone.now() + timezone.timedelta(seconds=2)
    phase.save()
    assert phase.submission_problem(team, now=phase.ends_at - timezone.timedelta(microseconds=1)) is None
    assert "not open" in phase.submission_problem(team, now=phase.ends_at)
    Submission.create(phase=phase, user=participant, uploaded_file=upload("p.csv", predictions))
    phase.ends_at = timezone.now()
    phase.save()
    with pytest.raises(ValidationError, match="not open"):
        Submission.create(phase=phase, user=participant, uploaded_file=upload("p.csv", predictions))


def test_a_closed_phase_shows_no_submission_form(client, phase, team, participant):
    from django.utils import timezone

    phase.ends_at = timezone.now()
    phase.save()
    client.login(username=participant.username, password=PASSWORD)
    page = client.get(reverse("submissions:create", args=[phase.pk])).content.decode()
    assert 'type="file"' not in page and "not open" in page


def test_a_large_file_is_validated_by_a_task(client, phase, team, participant, settings):
    from mica.submissions.tasks import validate_submission

    settings.MICA_INLINE_VALIDATION_BYTES = 10
    client.login(username=participant.username, password=PASSWORD)
    response = submit(client, phase, "big.csv", b"case_id,score\ncase-00000,0.5\ncase-00001,abc\n")
    assert response.status_code == 302
    submission = Submission.objects.get()
    assert submission.status == Submission.Status.RECEIVED
    validate_submission(submission.pk)
    submission.refresh_from_db()
    assert submission.status == Submission.Status.INVALID
    assert any("big.csv" in problem and "row 3" in problem for problem in submission.problems)
    page = client.get(submission.get_absolute_url()).content.decode()
    assert "row 3" in page and "Invalid" in page
    assert phase.remaining_submissions(team) == phase.daily_limit  # an invalid file does not count
