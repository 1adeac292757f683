"""Requests whose address holds a NUL character are refused before any view runs.

PostgreSQL's text cannot hold NUL (psycopg raises DataError), so a NUL that reached a lookup or a
search would be a server error. Form and serializer fields already refuse it in bodies (Django's and
DRF's ProhibitNullCharactersValidator); the path and the query string are checked here, once, for
every page and API operation.
"""

import re

from django.http import JsonResponse
from django.shortcuts import render

_PLAIN_NAME = re.compile(r"[A-Za-z0-9_.\[\]-]{1,40}")


def _where(request):
    """Where the NUL is, named without quoting any value (it may be identifying)."""
    if "\x00" in request.path:
        return "the address"
    for name, values in request.GET.lists():
        if "\x00" in name or any("\x00" in value for value in values):
            shown = name if _PLAIN_NAME.fullmatch(name) else None
            return f"the query parameter “{shown}”" if shown else "a query parameter's name"
    return None


def refuse_nul_characters(get_response):
    def middleware(request):
        where = _where(request)
        if where is None:
            return get_response(request)
        reason = f"{where[0].upper()}{where[1:]} holds a NUL character (\\x00), which no value may contain."
        if request.path.startswith("/api/"):
            return JsonResponse({"detail": reason}, status=400)
        return render(request, "400.html", {"reason": reason}, status=400)

    return middleware
