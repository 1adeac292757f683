"""A challenge slug cannot be a word the site's URLs use (a challenge called `new` is unreachable).

Bad inputs tried: every reserved word, in upper case too, and a slug another route answers.
"""

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from mica.core.validators import RESERVED_SLUGS, ReservedSlugValidator

validate = ReservedSlugValidator("challenges:detail")


@pytest.mark.parametrize("slug", sorted(RESERVED_SLUGS) + ["New", "CREATE"])
def test_reserved_words_are_refused_with_the_word_named(slug):
    with pytest.raises(ValidationError, match=f"“{slug}” is a reserved word") as error:
        validate(slug)
    assert error.value.code == "reserved"


@pytest.mark.parametrize("slug", ["pneumonia", "news", "brats-2027", "new-york-lungs"])
def test_ordinary_slugs_pass(slug):
    validate(slug)


def test_the_challenge_page_of_new_would_be_the_creation_page():
    # Why the word is refused: this URL is answered by another view than the challenge's page.
    from django.urls import resolve

    assert resolve(reverse("challenges:detail", args=["new"])).view_name == "challenges:create"


def test_a_slug_another_route_answers_is_refused_even_if_not_listed(monkeypatch):
    monkeypatch.setattr("mica.core.validators.RESERVED_SLUGS", frozenset())
    with pytest.raises(ValidationError, match="reserved"):
        validate("new")


def test_the_validator_survives_a_migration_round_trip():
    path, args, kwargs = validate.deconstruct()
    assert path == "mica.core.validators.ReservedSlugValidator" and args == ("challenges:detail",)
    assert ReservedSlugValidator(*args) == validate
