"""My challenges, my submissions, the error pages and the header's skip link."""

import pytest
from django.test import RequestFactory

from config.errors import server_error
from mica.challenges.models import Challenge
from mica.submissions.models import Submission

from .conftest import make_user, run_evaluations, upload

pytestmark = pytest.mark.django_db

STANDING = ["anonymous", "outsider", "rival", "participant", "annotator", "organizer", "co_organizer", "staff"]


@pytest.fixture
def scored(phase, team, participant, predictions):
    submission = Submission.create(phase=phase, user=participant, uploaded_file=upload("mine.csv", predictions))
    run_evaluations(submission)
    return submission


@pytest.mark.parametrize("who", STANDING)
def test_it_checks_access(client, request, who, scored, rival):
    user = None if who == "anonymous" else request.getfixturevalue(who)
    for path in ("/accounts/challenges/", "/accounts/submissions/"):
        client.logout()
        if user is None:
            response = client.get(path)
            assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
            continue
        client.force_login(user)
        response = client.get(path)
        assert response.status_code == 200
        # A team's file shows to its members only, even to organizers (they have the dashboard).
        assert ("mine.csv" in response.content.decode()) == (who in ("participant",) and path.endswith("submissions/"))


def test_my_challenges_lists_every_role_and_a_pending_registration(client, challenge, organizer, outsider, annotator):
    pending = Challenge.objects.create(slug="approval", title="By approval", task_type="classification",
                                       state=Challenge.State.PUBLISHED, registration=Challenge.Registration.APPROVAL,
                                       created_by=organizer)
    pending.register(outsider)
    client.force_login(outsider)
    page = client.get("/accounts/challenges/").content.decode()
    assert "By approval" in page and "participant: waiting for approval" in page
    assert "Pneumonia classification" not in page
    client.force_login(annotator)
    assert "annotator" in client.get("/accounts/challenges/").content.decode()
    client.force_login(organizer)
    page = client.get("/accounts/challenges/").content.decode()
    assert "Pneumonia classification" in page and "organizer" in page


def test_my_submissions_shows_the_public_score_rounded_as_the_team_sees_it(client, scored, participant, teammate):
    public = scored.evaluations.get(split="public")
    shown = scored.phase.shown_score(public.primary_score)
    for user in (participant, teammate):
        client.force_login(user)
        page = client.get("/accounts/submissions/").content.decode()
        assert f"{shown:.4f}" in page and 'data-status="succeeded"' in page


def test_error_pages_are_the_sites_own(client, outsider, challenge):
    missing = client.get("/no-such-page/")
    assert missing.status_code == 404 and "Nothing here" in missing.content.decode()
    assert 'class="skip-link"' in missing.content.decode()
    client.force_login(outsider)
    Challenge.objects.filter(pk=challenge.pk).update(registration=Challenge.Registration.APPROVAL)
    refused = client.get("/forum/pneumonia/")
    assert refused.status_code == 403
    assert "You cannot do this here" in refused.content.decode()
    assert "open to its participants only" in refused.content.decode()
    broken = server_error(RequestFactory().get("/somewhere/"))
    assert broken.status_code == 500 and "Something broke on our side" in broken.content.decode()


def test_the_header_has_a_skip_link_to_the_main_content_and_personal_links(client):
    user = make_user("newbie")
    client.force_login(user)
    page = client.get("/").content.decode()
    assert '<a class="skip-link" href="#main">' in page and '<main id="main"' in page
    assert 'href="/accounts/challenges/"' in page and 'href="/notifications/"' in page
