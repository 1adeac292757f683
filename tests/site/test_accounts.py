"""Sign-up with e-mail verification, log-in, log-out and password reset by e-mail (through the outbox)."""

import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.core import mail
from django.utils import timezone

from mica.notifications.models import Notification
from mica.notifications.tasks import send_notification

from .conftest import PASSWORD

pytestmark = pytest.mark.django_db


def send_outbox():
    """The worker's step, run here: every waiting notification is e-mailed."""
    for pk in Notification.objects.filter(status=Notification.Status.PENDING).values_list("pk", flat=True):
        send_notification(pk)


def test_it_signs_up_verifies_the_address_and_logs_in(client):
    response = client.post("/accounts/signup/", {"username": "newcomer", "email": "new@example.org",
                                                 "password1": PASSWORD, "password2": PASSWORD})
    assert response.status_code == 200 and b"Check your e-mail" in response.content
    assert not client.get("/").context["user"].is_authenticated
    assert not User.objects.get(username="newcomer").is_active
    assert mail.outbox == []  # nothing is sent from the request
    assert not client.login(username="newcomer", password=PASSWORD)  # not before the address is confirmed
    send_outbox()
    assert mail.outbox[0].to == ["new@example.org"]
    link = re.search(r"https?://[^/\s]+(/accounts/verify/\S+/)", mail.outbox[0].body).group(1)
    assert client.get(link).status_code == 302
    assert client.get("/").context["user"].username == "newcomer"
    client.logout()
    assert client.get(link).status_code == 400  # used once
    assert client.login(username="newcomer", password=PASSWORD)


@pytest.mark.parametrize("link", ["/accounts/verify/MQ/bad-token/", "/accounts/verify/!!/x-y/",
                                  "/accounts/verify/OTk5OTk/abc-def/"])
def test_a_wrong_verification_link_is_refused(client, link):
    response = client.get(link)
    assert response.status_code == 400 and b"does not work" in response.content


def test_it_refuses_a_taken_email(client, participant):
    response = client.post("/accounts/signup/", {"username": "someone", "email": participant.email.upper(),
                                                 "password1": PASSWORD, "password2": PASSWORD})
    assert response.status_code == 200
    assert "exists already" in str(response.context["form"].errors["email"])
    assert not User.objects.filter(username="someone").exists()


def test_it_logs_in_and_out(client, participant):
    response = client.post("/accounts/login/", {"username": participant.username, "password": PASSWORD})
    assert response.status_code == 302
    assert client.get("/").context["user"].is_authenticated
    client.post("/accounts/logout/")
    assert not client.get("/").context["user"].is_authenticated


def test_it_resets_a_password_by_email(client, participant):
    client.post("/accounts/password-reset/", {"email": participant.email})
    assert mail.outbox == []  # the request wrote an outbox row; a worker sends it
    send_outbox()
    assert len(mail.outbox) == 1 and "List-Unsubscribe" not in mail.outbox[0].extra_headers
    link = re.search(r"http://testserver(/accounts/password-reset/\S+/)", mail.outbox[0].body).group(1)
    form_page = client.get(link, follow=True)
    new_password = "another-long-password-77"
    response = client.post(form_page.redirect_chain[-1][0], {"new_password1": new_password,
                                                             "new_password2": new_password})
    assert response.status_code == 302
    participant.refresh_from_db()
    assert participant.check_password(new_password)


def test_the_link_can_be_sent_again_but_not_to_flood_an_inbox(client):
    client.post("/accounts/signup/", {"username": "newcomer", "email": "new@example.org",
                                      "password1": PASSWORD, "password2": PASSWORD})
    client.post("/accounts/verify/again/", {"email": "NEW@example.org"})  # within the pause: nothing more
    assert Notification.objects.filter(kind="verify_email").count() == 1
    Notification.objects.update(created_at=timezone.now() - timedelta(hours=1))
    answer = client.post("/accounts/verify/again/", {"email": "new@example.org"})
    unknown = client.post("/accounts/verify/again/", {"email": "nobody@example.org"})
    assert Notification.objects.filter(kind="verify_email").count() == 2
    assert answer.content == unknown.content.replace(b"nobody@example.org", b"new@example.org")  # tells nothing


def test_a_deactivated_account_is_not_reactivated_by_its_old_link(client):
    client.post("/accounts/signup/", {"username": "newcomer", "email": "new@example.org",
                                      "password1": PASSWORD, "password2": PASSWORD})
    send_outbox()
    link = re.search(r"https?://[^/\s]+(/accounts/verify/\S+/)", mail.outbox[0].body).group(1)
    client.get(link)
    User.objects.filter(username="newcomer").update(is_active=False)  # the staff deactivate it
    client.logout()
    assert client.get(link).status_code == 400
    client.post("/accounts/verify/again/", {"email": "new@example.org"})
    assert Notification.objects.filter(kind="verify_email").count() == 1
    assert not User.objects.get(username="newcomer").is_active
