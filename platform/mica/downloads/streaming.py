"""The archive of a release as an HTTP response: whole, or the byte range asked (RFC 9110)."""

import re

from django.http import HttpResponse, StreamingHttpResponse

from mica.core.storage import private_storage

from .models import DownloadRecord

SINGLE_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
UNSATISFIABLE = "unsatisfiable"


def requested_range(header, size):
    """(start, end) inclusive; None to send the whole archive (no Range, one we ignore as the
    RFC allows: malformed or several ranges); UNSATISFIABLE for a 416."""
    match = SINGLE_RANGE.match((header or "").strip())
    if not match or match.groups() == ("", ""):
        return None
    first, last = match.groups()
    if first == "":  # the last N bytes
        suffix = int(last)
        return UNSATISFIABLE if suffix == 0 else (max(0, size - suffix), size - 1)
    start = int(first)
    end = size - 1 if last == "" else min(int(last), size - 1)
    if last != "" and int(last) < start:
        return None  # malformed: ignored
    return UNSATISFIABLE if start >= size else (start, end)


def archive_response(request, release):
    size, etag = release.size, release.etag
    asked = requested_range(request.headers.get("Range"), size)
    if_range = request.headers.get("If-Range")
    if asked is not None and if_range is not None and if_range.strip() != etag:
        asked = None  # the archive changed since the client's copy (or a date we cannot compare): send it all
    if asked == UNSATISFIABLE:
        response = HttpResponse(status=416)
        response["Content-Range"] = f"bytes */{size}"
        response["Accept-Ranges"] = "bytes"
        return response
    start, end = asked or (0, size - 1)
    if request.method == "HEAD":
        response = HttpResponse(status=206 if asked else 200)
    else:
        record = DownloadRecord.objects.create(release=release, user=request.user, range_start=start, range_end=end)
        response = StreamingHttpResponse(_logged(release, record, start, end), status=206 if asked else 200)
    response["Content-Type"] = "application/zip"
    response["Content-Length"] = str(end - start + 1)
    response["Content-Disposition"] = f'attachment; filename="{release.filename}"'
    response["Accept-Ranges"] = "bytes"
    response["ETag"] = etag
    response["Cache-Control"] = "private, no-transform"
    if asked:
        response["Content-Range"] = f"bytes {start}-{end}/{size}"
    return response


def _logged(release, record, start, end):
    """Yields the bytes and writes how many went out, even when the client hangs up."""
    sent = 0
    storage = private_storage()
    try:
        for chunk in release.archive.iter_range(start, end, lambda name: storage.open(name, "rb")):
            sent += len(chunk)
            yield chunk
    finally:
        DownloadRecord.objects.filter(pk=record.pk).update(bytes_sent=sent, completed=sent == end - start + 1)
