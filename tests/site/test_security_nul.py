"""A NUL character (PostgreSQL's text cannot hold one) is a 400 naming where it was, never a 500.

Bad inputs tried: a NUL in a query value the view looks up (the releases' ?challenge=, CI's
schemathesis find), in a free-text search, in a query parameter's name, in an API path's slug and
in a page's path; in a JSON body's text field, in a JSON body's nested options, and in a form field.
"""

import pytest
from rest_framework.test import APIClient

from mica.challenges.models import Phase

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(organizer):
    client = APIClient()
    client.force_authenticate(organizer)
    return client


@pytest.mark.parametrize("url, where", [
    ("/api/v1/releases/?challenge=pneumonia%00", "The query parameter “challenge”"),
    ("/api/v1/forum/pneumonia/search/?q=dice%00score", "The query parameter “q”"),
    ("/api/v1/challenges/?chal%00lenge=x", "A query parameter's name"),
    ("/api/v1/challenges/lu%00ngs/", "The address"),
])
def test_the_api_refuses_a_nul_in_the_address_naming_where(api, challenge, url, where):
    response = api.get(url)
    assert response.status_code == 400, response.content
    assert response.json() == {"detail": f"{where} holds a NUL character (\\x00), which no value may contain."}


def test_a_page_refuses_a_nul_with_the_sites_400_page(client, challenge):
    response = client.get(f"{challenge.get_absolute_url()}?tab=over%00view")
    assert response.status_code == 400
    assert "The query parameter “tab” holds a NUL character" in response.content.decode()
    assert response["Content-Security-Policy"]  # the header middleware still ran
    assert client.get("/challenges/lu%00ngs/").status_code == 400


def test_the_value_itself_is_never_quoted(api, challenge):
    response = api.get("/api/v1/releases/?challenge=DOE%00JOHN")
    assert response.status_code == 400 and "DOE" not in response.content.decode()


def test_a_nul_in_a_json_body_is_a_400_on_its_field(api, phase):
    response = api.patch(f"/api/v1/phases/{phase.pk}/", {"name": "Warm\x00up"}, format="json")
    assert response.status_code == 400 and "name" in response.json(), response.content
    response = api.patch(f"/api/v1/phases/{phase.pk}/", {"metric_options": {"x\x00": "y\x00"}}, format="json")
    assert response.status_code == 400 and "metric_options" in response.json(), response.content
    assert Phase.objects.get(pk=phase.pk).name == phase.name


def test_a_nul_in_a_form_field_is_the_forms_error(client, organizer, challenge):
    client.force_login(organizer)
    response = client.post(f"/challenges/{challenge.slug}/edit/", {"title": "Lungs\x00"})
    assert response.status_code in (200, 400)
    assert "Null characters are not allowed" in response.content.decode()
