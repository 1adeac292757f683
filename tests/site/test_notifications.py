"""Notifications: who is told of which event, the list and settings pages, unsubscribe links."""

from datetime import timedelta
from pathlib import Path

import pytest
from django.core import mail, signing
from django.utils import timezone

from mica.challenges.models import Challenge
from mica.notifications.email import email_for
from mica.notifications.models import UNSUBSCRIBE_SALT, EmailOptOut, Kind, Notification, PhaseReminder, notify
from mica.notifications.tasks import send_notification
from mica.submissions.models import Submission

from .conftest import run_evaluations, upload

pytestmark = pytest.mark.django_db


def kinds_of(user):
    return sorted(Notification.objects.filter(user=user).values_list("kind", flat=True))


# -- the events -----------------------------------------------------------------------------
def test_a_scored_submission_tells_its_team_and_nobody_else(phase, team, participant, teammate, rival, organizer,
                                                            predictions):
    submission = Submission.create(phase=phase, user=participant, uploaded_file=upload("p.csv", predictions))
    run_evaluations(submission)
    assert kinds_of(participant) == [Kind.SUBMISSION_SCORED]  # the public part only: the private one tells nothing
    assert kinds_of(teammate) == [Kind.SUBMISSION_SCORED]
    assert kinds_of(rival) == [] and kinds_of(organizer) == []
    row = Notification.objects.get(user=participant)
    assert row.url == submission.get_absolute_url() and "p.csv" in row.body


def test_an_internal_scoring_error_tells_the_team_and_the_organizers(phase, team, participant, organizer, co_organizer,
                                                                     predictions):
    from mica.evaluations.tasks import run_evaluation

    submission = Submission.create(phase=phase, user=participant, uploaded_file=upload("p.csv", predictions))
    public = submission.evaluations.get(split="public")
    Path(public.truth_version.file.path).write_bytes(b"\x00 not a truth file")  # an error of the site's own, not the team's
    run_evaluation(public.pk)
    public.refresh_from_db()
    assert "the organizers have been told" in public.status_reason
    assert kinds_of(organizer) == [Kind.WORK_FAILED] and kinds_of(co_organizer) == [Kind.WORK_FAILED]
    assert kinds_of(participant) == [Kind.SUBMISSION_FAILED]


def test_work_that_keeps_killing_its_worker_tells_the_organizers(phase, team, participant, organizer, predictions,
                                                                 settings):
    submission = Submission.create(phase=phase, user=participant, uploaded_file=upload("p.csv", predictions))
    evaluation = submission.evaluations.get(split="public")
    type(evaluation).objects.filter(pk=evaluation.pk).update(
        status="running", attempts=settings.MICA_MAX_ATTEMPTS, lease_expires_at=timezone.now() - timedelta(minutes=1))
    type(evaluation).sweep()
    evaluation.refresh_from_db()
    assert evaluation.status == "failed" and "the organizers have been told" in evaluation.status_reason
    assert kinds_of(organizer) == [Kind.WORK_FAILED]


def test_approving_a_registration_tells_the_participant(client, challenge, organizer, outsider):
    challenge.registration = Challenge.Registration.APPROVAL
    challenge.save()
    challenge.register(outsider)
    client.force_login(organizer)
    client.post(f"/challenges/{challenge.slug}/participants/{outsider.pk}/approve/", {"decision": "approve"})
    assert kinds_of(outsider) == [Kind.REGISTRATION_APPROVED]


def test_revealing_the_private_leaderboard_tells_the_participants(phase, team, participant, teammate, outsider):
    phase.ends_at = timezone.now() - timedelta(minutes=1)
    phase.save()
    phase.reveal_private()
    assert kinds_of(participant) == [Kind.PRIVATE_REVEALED] and kinds_of(outsider) == []
    assert Notification.objects.filter(user=participant).get().url == f"/leaderboards/phases/{phase.pk}/private/"


def test_phase_reminders_are_sent_once_per_date(phase, team, participant, outsider):
    phase.ends_at = timezone.now() + timedelta(hours=3)
    phase.save()
    assert PhaseReminder.send_due() == 1
    assert PhaseReminder.send_due() == 0  # the beat runs again: nobody is told twice
    assert kinds_of(participant) == [Kind.PHASE_CLOSING] and kinds_of(outsider) == []
    phase.ends_at += timedelta(hours=1)  # the organizers moved the deadline: a new reminder
    phase.save()
    assert PhaseReminder.send_due() == 1


def test_a_notification_is_emailed_by_the_worker_not_the_request(client, phase, team, participant):
    [row] = notify([participant], Kind.ANNOUNCEMENT, "Hello", "Body", url="/challenges/pneumonia/")
    assert mail.outbox == []
    send_notification(row.pk)
    send_notification(row.pk)
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == [participant.email] and message.subject == "[Mica] Hello"
    assert "http://localhost:8000/challenges/pneumonia/" in message.body
    assert message.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


# -- unsubscribe ----------------------------------------------------------------------------
def unsubscribe_path(row):
    return email_for(row).extra_headers["List-Unsubscribe"].strip("<>").replace("http://localhost:8000", "")


def test_an_unsubscribe_link_works_without_logging_in_and_only_for_its_kind(client, participant):
    [row] = notify([participant], Kind.FORUM_REPLY, "Reply", "Body")
    path = unsubscribe_path(row)
    page = client.get(path)
    assert page.status_code == 200 and b"Stop these e-mails?" in page.content
    assert not EmailOptOut.objects.exists()  # a GET (a link scanner) changes nothing
    assert client.post(path).status_code == 200  # a mail client's one-click POST: no session, no CSRF token
    assert list(EmailOptOut.objects.values_list("user", "kind")) == [(participant.pk, Kind.FORUM_REPLY)]
    [later] = notify([participant], Kind.FORUM_REPLY, "Another", "Body")
    [other] = notify([participant], Kind.ANNOUNCEMENT, "News", "Body")
    assert later.status == Notification.Status.SITE_ONLY and other.status == Notification.Status.PENDING


@pytest.mark.parametrize("forge", ["other user", "other kind", "altered", "account kind", "garbage", "other salt"])
def test_an_unsubscribe_link_cannot_be_forged(client, participant, outsider, forge):
    [row] = notify([participant], Kind.FORUM_REPLY, "Reply", "Body")
    token = row.unsubscribe_token()
    forged = {
        # Another user's id in the payload, kept with the original signature.
        "other user": signing.b64_encode(f'{{"user":{outsider.pk},"kind":"forum_reply"}}'.encode()).decode()
        + ":" + token.rsplit(":", 1)[1],
        "other kind": signing.dumps({"user": outsider.pk, "kind": "announcement"}, salt="wrong"),
        "altered": token[:-2] + ("AA" if not token.endswith("AA") else "BB"),
        "account kind": signing.dumps({"user": participant.pk, "kind": "password_reset"}, salt=UNSUBSCRIBE_SALT),
        "garbage": "not-a-token",
        "other salt": signing.dumps({"user": outsider.pk, "kind": "forum_reply"}),
    }[forge]
    response = client.post(f"/notifications/unsubscribe/{forged}/")
    assert response.status_code == 400
    assert b"does not work" in response.content
    assert not EmailOptOut.objects.exists()


# -- pages ----------------------------------------------------------------------------------
def test_the_header_counts_unread_notifications_and_the_list_marks_them_read(client, participant, outsider):
    rows = notify([participant], Kind.ANNOUNCEMENT, "One", "Body") + notify([participant], Kind.ANNOUNCEMENT, "Two", "B")
    notify([outsider], Kind.ANNOUNCEMENT, "Not yours", "Body")
    client.force_login(participant)
    page = client.get("/notifications/").content.decode()
    assert 'aria-label="2 unread"' in page and "Not yours" not in page
    client.post("/notifications/read/", {"notification": rows[0].pk})
    assert 'aria-label="1 unread"' in client.get("/").content.decode()
    client.post("/notifications/read/", {"notification": Notification.objects.get(user=outsider).pk})
    assert Notification.objects.get(user=outsider).read_at is None  # another's row is not touched
    client.post("/notifications/read/")
    assert "unread" not in client.get("/").content.decode().split("</header>")[0]


def test_the_settings_page_turns_kinds_off_but_never_account_mail(client, participant):
    client.force_login(participant)
    client.post("/notifications/settings/", {"kind": [Kind.ANNOUNCEMENT, Kind.SUBMISSION_SCORED]})
    off = set(EmailOptOut.objects.filter(user=participant).values_list("kind", flat=True))
    assert Kind.FORUM_REPLY in off and Kind.ANNOUNCEMENT not in off
    assert not off & {Kind.VERIFY_EMAIL, Kind.PASSWORD_RESET}
    page = client.get("/notifications/settings/").content.decode()
    assert f'value="{Kind.ANNOUNCEMENT}" checked' in page and f'value="{Kind.FORUM_REPLY}">' in page


def test_only_those_who_organize_are_offered_the_organizers_kinds(client, challenge, participant, organizer):
    """Work that failed for good is told to a challenge's organizers: a participant's settings do
    not offer it, and saving them leaves it as it was."""
    client.force_login(participant)
    assert f'value="{Kind.WORK_FAILED}"' not in client.get("/notifications/settings/").content.decode()
    client.post("/notifications/settings/", {"kind": [Kind.ANNOUNCEMENT]})
    off = set(EmailOptOut.objects.filter(user=participant).values_list("kind", flat=True))
    assert Kind.FORUM_REPLY in off and Kind.WORK_FAILED not in off
    client.force_login(organizer)
    assert f'value="{Kind.WORK_FAILED}"' in client.get("/notifications/settings/").content.decode()


STANDING = ["anonymous", "outsider", "rival", "participant", "annotator", "organizer", "co_organizer", "staff"]


@pytest.mark.parametrize("who", STANDING)
def test_it_checks_access(client, request, who, team):
    user = None if who == "anonymous" else request.getfixturevalue(who)
    for path in ("/notifications/", "/notifications/settings/"):
        if user is None:
            response = client.get(path)
            assert response.status_code == 302 and "/accounts/login/" in response["Location"]
            continue
        client.force_login(user)
        assert client.get(path).status_code == 200
    if user is None:
        assert client.post("/notifications/read/").status_code == 302
        assert not EmailOptOut.objects.exists()


def test_nobody_reads_another_users_notifications(client, participant, outsider):
    notify([participant], Kind.ANNOUNCEMENT, "Private matter", "Body")
    client.force_login(outsider)
    assert b"Private matter" not in client.get("/notifications/").content



# -- e-mail settings from the environment -------------------------------------------------
PRINT_MAIL_SETTINGS = ("from django.conf import settings as s; print(s.EMAIL_BACKEND, s.EMAIL_HOST, s.EMAIL_PORT, "
                       "s.EMAIL_HOST_USER, s.EMAIL_HOST_PASSWORD, s.EMAIL_USE_TLS, s.EMAIL_USE_SSL)")


@pytest.mark.parametrize("env, expected", [
    ({}, "django.core.mail.backends.console.EmailBackend localhost 25   False False"),
    ({"EMAIL_URL": "smtp+tls://mica%40site.org:p%3Ass@mail.example.org"},
     "django.core.mail.backends.smtp.EmailBackend mail.example.org 587 mica@site.org p:ss True False"),
    ({"EMAIL_URL": "smtps://relay:2465"}, "django.core.mail.backends.smtp.EmailBackend relay 2465   False True"),
    ({"EMAIL_HOST": "relay", "EMAIL_PORT": "2525"},
     "django.core.mail.backends.smtp.EmailBackend relay 2525   False False"),
])
def test_mail_settings_come_from_the_environment(tmp_path, env, expected):
    from .test_settings import run_django

    result = run_django(["shell", "-c", PRINT_MAIL_SETTINGS], DEBUG="1", MICA_VAR_DIR=str(tmp_path), **env)
    assert result.stdout.strip().splitlines()[-1] == expected, result.stderr


def test_a_mail_url_that_is_not_smtp_stops_the_start(tmp_path):
    from .test_settings import run_django

    result = run_django(["check"], DEBUG="1", MICA_VAR_DIR=str(tmp_path), EMAIL_URL="http://mail.example.org")
    assert result.returncode != 0 and "EMAIL_URL must look like smtp://" in result.stderr


def test_telling_many_people_takes_a_fixed_number_of_queries(django_assert_max_num_queries):
    from django.contrib.auth.models import User

    users = User.objects.bulk_create([User(username=f"p{i}", email=f"p{i}@example.org") for i in range(300)])
    EmailOptOut.objects.create(user=users[0], kind=Kind.ANNOUNCEMENT)
    with django_assert_max_num_queries(3):  # the opt-outs, one INSERT (a savepoint at most)
        rows = notify(users, Kind.ANNOUNCEMENT, "Deadline", "Moved.")
    assert len(rows) == 300 and Notification.objects.filter(status=Notification.Status.PENDING).count() == 299
