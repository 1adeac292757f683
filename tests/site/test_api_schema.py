"""schemathesis against /api/schema/ on a live server, as an organizer who is also in a team.

Every operation of the schema gets generated requests, valid and invalid (random ids and slugs,
wrong types, missing fields, empty and repeated page numbers, undocumented methods); each answer
must be documented in the schema (status code, content type, body) and none may be a server
error.

One check is left out for the operations that create or change something: "a schema-valid
request is accepted". A body can fit the schema and still name a phase that does not exist, a
metric the registry does not have, or carry a file that is not a zip; those are 400s by design,
which no schema can express.
"""

import pytest
import schemathesis
from django.core.cache import cache
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from mica.accounts.tokens import issue_token
from mica.datasets.models import Dataset

pytestmark = pytest.mark.django_db(transaction=True)

@pytest.fixture
def api_schema(live_server):
    return schemathesis.openapi.from_url(f"{live_server.url}/api/schema/")


schema = schemathesis.pytest.from_fixture("api_schema")


@pytest.fixture
def organizer_in_a_team(phase, team, organizer):
    Dataset.objects.create(challenge=phase.challenge, name="Radiographs", created_by=organizer)
    yield organizer
    # Failed token requests were counted in the shared cache: leave none for the next test.
    cache.clear()


# The slowest test of the suite (4 to 6 minutes on 2 cores; it grows with every endpoint).
@schema.parametrize()
@pytest.mark.timeout(900)  # every operation of the schema (the forum and notifications added nine), on slow CI too
@settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_answer_is_documented(case, organizer_in_a_team, live_server):
    # Re-issued before each call: the generated DELETE /api/v1/auth/token/ revokes it.
    token = issue_token(organizer_in_a_team)
    excluded = [positive_data_acceptance] if case.method.upper() in ("POST", "PUT", "PATCH") else []
    case.call_and_validate(base_url=live_server.url, headers={"Authorization": f"Token {token.key}"},
                           excluded_checks=excluded)
