"""The site workers' API: claim, heartbeat, image download, result. Plain JSON over HTTPS,
authenticated by a site token (``Authorization: Bearer mica-site-…``), never by a user's session
or DRF token; a token reaches only its own site's jobs.

    POST /sites/api/claim                     → 200 a job (with its lease) or 204 none
    POST /sites/api/jobs/<uuid>/heartbeat     {"lease"} → 200 | 409 lease lost
    GET  /sites/api/jobs/<uuid>/image         (header X-Mica-Lease) → the image archive
    POST /sites/api/jobs/<uuid>/result        {"lease", "status", ...} → 201 | 200 replay | 400 | 409

Each token has a rate limit (SiteToken.admit): past it, 429 with Retry-After.
"""

import json

from django.conf import settings
from django.http import HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from mica.core.storage import download_response

from .models import SiteJob, SiteToken

MAX_BODY_BYTES = 4 * 1024 * 1024


def _error(status, message):
    return JsonResponse({"detail": message}, status=status)


def site_token_required(view):
    def wrapped(request, *args, **kwargs):
        scheme, _, raw = request.headers.get("Authorization", "").partition(" ")
        token = SiteToken.authenticate(raw.strip()) if scheme == "Bearer" else None
        if token is None:
            return _error(401, "A live site token is required (Authorization: Bearer mica-site-…).")
        wait = token.admit()
        if wait is not None:
            response = _error(429, f"Too many requests with this site token (at most {settings.MICA_SITE_API_REQUESTS} "
                                   f"every {settings.MICA_SITE_API_WINDOW_SECONDS} s); try again in {wait} s.")
            response["Retry-After"] = str(wait)
            return response
        request.site_token = token
        return view(request, *args, **kwargs)

    return csrf_exempt(wrapped)


def _job_of(request, uuid):
    """The job, or an error response: 404 unknown, 403 another site's."""
    job = SiteJob.objects.select_related("site__phase__challenge", "algorithm__image").filter(uuid=uuid).first()
    if job is None:
        return None, _error(404, "No such job.")
    if job.site_id != request.site_token.site_id:
        return None, _error(403, "This job belongs to another site than the token's.")
    return job, None


def _body(request):
    if len(request.body) > MAX_BODY_BYTES:
        return None, _error(413, f"The body is over {MAX_BODY_BYTES} bytes.")
    try:
        body = json.loads(request.body or b"{}")
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        return None, _error(400, f"The body is not JSON: {error.msg if hasattr(error, 'msg') else error}.")
    if not isinstance(body, dict):
        return None, _error(400, "The body must be a JSON object.")
    return body, None


@require_POST
@site_token_required
def claim(request):
    job = SiteJob.claim_next(request.site_token.site)
    if job is None:
        return HttpResponse(status=204)
    return JsonResponse(job.payload())


@require_POST
@site_token_required
def heartbeat(request, uuid):
    job, error = _job_of(request, uuid)
    if error:
        return error
    body, error = _body(request)
    if error:
        return error
    if not job.renew(str(body.get("lease", ""))):
        return _error(409, "This lease is not the job's live lease; stop the work, another worker has it.")
    return JsonResponse({"lease_seconds": job.lease_seconds})


@require_GET
@site_token_required
def image(request, uuid):
    """The archive, only for an evaluation the token's site holds under a live lease."""
    job, error = _job_of(request, uuid)
    if error:
        return error
    if job.kind != SiteJob.Kind.EVALUATE or job.status != SiteJob.Status.RUNNING \
            or job.claimed_by != request.headers.get("X-Mica-Lease"):
        return _error(409, "The image is served only under the job's live lease (header X-Mica-Lease).")
    stored = job.algorithm.image
    # Through the one way Mica serves stored files: on object storage a presigned redirect, so a
    # multi-gigabyte image never passes through a web worker (the worker checks the sha256 itself).
    response = download_response(stored.file, f"{stored.digest.replace(':', '-')}.tar", content_type="application/x-tar")
    response["X-Mica-Digest"] = stored.digest
    return response


@require_POST
@site_token_required
def result(request, uuid):
    job, error = _job_of(request, uuid)
    if error:
        return error
    body, error = _body(request)
    if error:
        return error
    status, message = job.accept_result(lease=str(body.get("lease", "")), body=body, token=request.site_token)
    return JsonResponse({"detail": message}, status=status)
