"""The submission page: upload, validation errors, limits and access."""

import pytest
from django.urls import reverse

from mica.submissions.models import Status, Submission

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
    assert submission.status == Status.QUEUED
    assert submission.team == team
    assert submission.original_filename == "my-predictions.csv"
    assert submission.file.read() == predictions
    assert [e.to_status for e in submission.events.all()] == [Status.QUEUED]


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
    phase.challenge.daily_submission_limit = 2
    phase.challenge.save()
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
