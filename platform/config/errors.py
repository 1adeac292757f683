"""Error pages: JSON under /api/ (as the schema documents), the site's HTML pages elsewhere."""

from django.http import JsonResponse
from django.views import defaults


def _is_api(request):
    return request.path.startswith("/api/")


def not_found(request, exception):
    # A URL no API route matches (a lookup with "." or "/" in it): the same body as DRF's 404.
    if _is_api(request):
        return JsonResponse({"detail": "Not found."}, status=404)
    return defaults.page_not_found(request, exception)


def server_error(request):
    if _is_api(request):
        return JsonResponse({"detail": "Server error. It was logged with the time of your request for the site's administrators."}, status=500)
    return defaults.server_error(request)
