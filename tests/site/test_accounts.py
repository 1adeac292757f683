"""Sign-up, log-in, log-out and password reset by e-mail."""

import re

import pytest
from django.contrib.auth.models import User
from django.core import mail

from .conftest import PASSWORD

pytestmark = pytest.mark.django_db


def test_it_signs_up_and_logs_in(client):
    response = client.post("/accounts/signup/", {"username": "newcomer", "email": "new@example.org",
                                                 "password1": PASSWORD, "password2": PASSWORD})
    assert response.status_code == 302
    assert client.get("/").context["user"].username == "newcomer"


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
    assert len(mail.outbox) == 1
    link = re.search(r"http://testserver(/accounts/password-reset/\S+/)", mail.outbox[0].body).group(1)
    form_page = client.get(link, follow=True)
    new_password = "another-long-password-77"
    response = client.post(form_page.redirect_chain[-1][0], {"new_password1": new_password,
                                                             "new_password2": new_password})
    assert response.status_code == 302
    participant.refresh_from_db()
    assert participant.check_password(new_password)
