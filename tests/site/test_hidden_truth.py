"""No participant reads the ground truth through any page, file URL or API endpoint.

Every URL pattern of the site is requested, with its arguments filled from real objects, by a
participant who holds a scored submission; no response may carry the truth's labels.
"""

import re

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.authtoken.models import Token

from mica.submissions.models import Submission
from mica.submissions.tasks import score_submission

from .conftest import PASSWORD, upload

pytestmark = pytest.mark.django_db


def all_patterns(resolver=None, prefix=""):
    resolver = resolver or get_resolver()
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            yield from all_patterns(entry, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            yield prefix + str(entry.pattern)


def fill(pattern, values):
    path = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: str(values.get(m.group(1), "1")), pattern)
    path = path.replace("^", "").replace("$", "").replace("\\.", ".").replace("(?P<format>[a-z0-9]+)/?", "json")
    path = re.sub(r"\(\?P<(\w+)>[^)]*\)", lambda m: str(values.get(m.group(1), "1")), path)
    return "/" + path.lstrip("/")


def test_no_url_serves_the_ground_truth(client, phase, team, participant, truth):
    case_ids, labels = truth
    submission = Submission.create(
        phase=phase, user=participant,
        uploaded_file=upload("p.csv", b"case_id,score\n" + b"".join(f"{c},0.5\n".encode() for c in case_ids)),
    )
    score_submission(submission.pk)
    test_set = phase.test_set
    truth_content = test_set.truth_file.open("rb").read().decode()
    truth_rows = [line for line in truth_content.splitlines()[1:]]  # "case-00000,1": a case with its label
    values = {
        "slug": phase.challenge.slug, "pk": phase.pk, "phase_pk": phase.pk, "uuid": submission.uuid,
        "uidb64": "MQ", "token": "x", "format": "json", "path": test_set.truth_file.name,
        "object_id": test_set.pk, "app_label": "challenges",
    }
    client.login(username=participant.username, password=PASSWORD)
    token = Token.objects.create(user=participant)
    requested = 0
    for pattern in all_patterns():
        url = fill(pattern, values)
        for headers in ({}, {"HTTP_AUTHORIZATION": f"Token {token.key}"}):
            response = client.get(url, **headers)
            body = b"".join(response.streaming_content) if response.streaming else response.content
            text = body.decode(errors="replace")
            requested += 1
            leaked = [row for row in truth_rows if re.search(re.escape(row) + r"(?![\d.])", text)]
            assert not leaked, f"{url} shows truth rows such as {leaked[:2]}"
            assert "truth/" not in text, f"{url} names the truth file's path"
    assert requested > 40
    # And not through the storage's own location, guessed as a media URL.
    for guess in (f"/media/{test_set.truth_file.name}", f"/media/../private/{test_set.truth_file.name}"):
        assert client.get(guess).status_code == 404


def test_another_team_cannot_read_a_submission(client, phase, team, participant, outsider, predictions):
    submission = Submission.create(phase=phase, user=participant, uploaded_file=upload("p.csv", predictions))
    client.login(username=outsider.username, password=PASSWORD)
    for name in ("detail", "download"):
        assert client.get(f"/submissions/{submission.uuid}/" + ("file/" if name == "download" else "")).status_code == 403
    client.logout()
    response = client.get(f"/submissions/{submission.uuid}/file/")
    assert response.status_code == 302


def test_the_team_and_organizers_can_download_the_file(client, phase, team, participant, teammate, organizer,
                                                        predictions):
    submission = Submission.create(phase=phase, user=participant, uploaded_file=upload("p.csv", predictions))
    for user in (participant, teammate, organizer):
        client.login(username=user.username, password=PASSWORD)
        response = client.get(f"/submissions/{submission.uuid}/file/")
        assert response.status_code == 200
        assert b"".join(response.streaming_content) == predictions
