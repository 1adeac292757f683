from django.core.exceptions import ValidationError
from django.urls import Resolver404, resolve, reverse
from django.utils.deconstruct import deconstructible

# Words a slug cannot be: the site's own path segments, now and likely later ("/challenges/new/").
RESERVED_SLUGS = frozenset({
    "new", "create", "edit", "update", "delete", "remove", "add", "list", "all", "mine", "search",
    "settings", "admin", "api", "static", "media", "accounts", "login", "logout", "signup", "register",
    "phases", "teams", "test-sets", "datasets", "uploads", "submissions", "leaderboards", "evaluations",
    "join", "export", "import", "download", "upload", "feed", "rss", "docs", "schema", "help", "about",
})


@deconstructible
class ReservedSlugValidator:
    """Refuses a slug that is a reserved word, or whose page URL another view would answer.

    ``detail_url_name`` is the URL name of the page the slug is for (one argument: the slug);
    the second check catches a path segment added later that the list above does not name.
    """

    def __init__(self, detail_url_name):
        self.detail_url_name = detail_url_name

    def __call__(self, value):
        reserved = value.lower() in RESERVED_SLUGS
        if not reserved:
            try:
                reserved = resolve(reverse(self.detail_url_name, args=[value])).view_name != self.detail_url_name
            except Resolver404:
                reserved = True
        if reserved:
            raise ValidationError(f"“{value}” is a reserved word on this site: choose another slug.", code="reserved")

    def __eq__(self, other):
        return isinstance(other, ReservedSlugValidator) and other.detail_url_name == self.detail_url_name
