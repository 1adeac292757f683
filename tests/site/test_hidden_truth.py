"""No participant reads the ground truth or anything private through any page or endpoint.

Every URL pattern of the site is requested, with its arguments filled from real objects, by a
participant whose submission was scored on both parts of the test set, and by a member of
another team: no response may carry the truth's labels, the truth file's path, a private score
(full or rounded), or a list of case ids that tells which cases are private.
"""

import re

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.authtoken.models import Token

from mica.challenges.models import Split
from mica.submissions.models import Submission

from .conftest import PASSWORD, csv_bytes, make_scores, run_evaluations, upload

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


def private_traces(private):
    """Strings that would give a private result away: the score in full and rounded, its interval."""
    traces = set()
    for value in [private.primary_score, *private.metrics["auc_ci"], private.metrics["log_loss"]]:
        if value not in (0.0, 1.0):  # a clipped interval bound gives nothing away
            traces |= {repr(value), f"{value:.4f}", f"{value:.4g}", f"{value:.6f}"}
    return traces


@pytest.mark.parametrize("viewer", ["participant", "rival"])
def test_no_url_serves_the_truth_or_a_private_result(client, phase, team, participant, rival, truth, viewer):
    case_ids, labels = truth
    submission = Submission.create(
        phase=phase, user=participant,
        uploaded_file=upload("p.csv", csv_bytes(["case_id", "score"], zip(case_ids, make_scores(labels)))),
    )
    evaluations = run_evaluations(submission)
    public, private = evaluations[Split.PUBLIC], evaluations[Split.PRIVATE]
    assert f"{public.primary_score:.4f}" != f"{private.primary_score:.4f}"
    secrets = private_traces(private)
    version = phase.test_set.latest_version
    truth_content = version.file.open("rb").read().decode()
    truth_rows = [line for line in truth_content.splitlines()[1:]]  # "case-00000,1": a case with its label
    all_ids = set(case_ids)
    values = {
        "slug": phase.challenge.slug, "pk": phase.pk, "phase_pk": phase.pk, "uuid": submission.uuid,
        "uidb64": "MQ", "token": "x", "format": "json", "path": version.file.name,
        "object_id": phase.test_set.pk, "app_label": "challenges", "user_pk": participant.pk,
    }
    user = participant if viewer == "participant" else rival
    client.login(username=user.username, password=PASSWORD)
    token = Token.objects.create(user=user)
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
            shown = [secret for secret in secrets if re.search(re.escape(secret) + r"(?!\d)", text)]
            assert not shown, f"{url} shows a private result: {shown}"
            ids = set(re.findall(r"case-\d{5}", text))
            assert not ids or ids == all_ids, f"{url} lists a part of the cases ({len(ids)} of {len(all_ids)})"
    assert requested > 60
    # And not through the storage's own location, guessed as a media URL.
    for guess in (f"/media/{version.file.name}", f"/media/../private/{version.file.name}"):
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
