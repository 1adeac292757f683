"""No page or endpoint a participant uses makes a query per row: the count of queries is the
same with two rows as with six (submissions, teams, challenges, phases, forum threads and
posts, notifications)."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from mica.challenges.models import Challenge, Phase, Team
from mica.forum.models import Thread
from mica.notifications.models import notify
from mica.submissions.models import Submission

from .conftest import PASSWORD, csv_bytes, make_scores, make_user, run_evaluations, upload

pytestmark = pytest.mark.django_db


@pytest.fixture
def grow(challenge, phase, team, participant, truth, organizer):
    """Adds rows of every kind a participant's pages list; each call adds `n` of each."""
    case_ids, labels = truth
    Phase.objects.filter(pk=phase.pk).update(daily_limit=100, total_limit=100, concurrent_limit=100)
    phase.refresh_from_db()
    grown = {"n": 0}
    first = Thread.start(challenge, organizer, "Welcome", "Ask here.")

    def add(n):
        for _ in range(n):
            grown["n"] += 1
            i = grown["n"]
            content = csv_bytes(["case_id", "score"], zip(case_ids, make_scores(labels, seed=i)))
            run_evaluations(Submission.create(phase=phase, user=participant, uploaded_file=upload(f"p{i}.csv", content)))
            rival = make_user(f"rival{i}")
            challenge.register(rival)
            Team.create_for(challenge, rival, f"Rivals {i}")
            other = Challenge.objects.create(slug=f"other-{i}", title=f"Other {i}", task_type="classification",
                                             created_by=organizer, state=Challenge.State.PUBLISHED)
            Phase.objects.create(challenge=phase.challenge, name=f"Warm-up {i}", test_set=phase.test_set,
                                 starts_at=timezone.now() - timedelta(days=1), ends_at=timezone.now() + timedelta(days=1),
                                 primary_metric="auc")
            other.add_organizer(organizer)
            Thread.start(challenge, organizer, f"Question {i}", f"About **{i}**.")
            first.reply(organizer, f"Answer {i}.")
            notify([participant], "announcement", f"News {i}", "Read it.", challenge=challenge)

    add.first_thread = first

    return add


def participant_urls(challenge, phase, team, thread):
    return [
        f"/forum/{challenge.slug}/",
        f"/forum/{challenge.slug}/threads/{thread.pk}/",
        "/notifications/",
        "/accounts/challenges/",
        "/accounts/submissions/",
        "/",
        f"/challenges/{challenge.slug}/",
        f"/challenges/{challenge.slug}/teams/{team.pk}/",
        f"/submissions/phases/{phase.pk}/submit/",
        f"/leaderboards/phases/{phase.pk}/",
        "/api/v1/challenges/",
        "/api/v1/phases/",
        f"/api/v1/teams/{team.pk}/",
        "/api/v1/submissions/",
        f"/api/v1/leaderboards/{phase.pk}/",
    ]


def count_queries(client, url):
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code in (200, 403), (url, response.status_code)
    return len(queries)


@pytest.mark.parametrize("as_api", [False, True], ids=["pages", "api"])
def test_the_query_count_does_not_grow_with_the_rows(client, challenge, phase, team, participant, grow, as_api):
    if as_api:
        client = APIClient()
        client.force_authenticate(participant)
    else:
        client.login(username=participant.username, password=PASSWORD)
    grow(2)
    urls = [url for url in participant_urls(challenge, phase, team, grow.first_thread)
            if url.startswith("/api/") == as_api]
    few = {url: count_queries(client, url) for url in urls}
    grow(4)
    many = {url: count_queries(client, url) for url in urls}
    assert many == few
