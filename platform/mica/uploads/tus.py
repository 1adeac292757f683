"""The tus 1.0.0 server: core, creation, termination, expiration and checksum.

POST /uploads/ creates an upload (Upload-Length, Upload-Metadata with `purpose`, `filename` and
the purpose's own keys); HEAD /uploads/<uuid>/ tells the offset to resume from; PATCH appends a
chunk at Upload-Offset; DELETE abandons it. When the last byte arrives the file is handed to its
purpose, and the answer carries `Mica-Result-Url` (or 422 with the problems).
Authentication is the API's: a token, or the session (with its CSRF token).
"""

import base64
import binascii
import hashlib
import os
import tempfile

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.http import HttpResponse, JsonResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.http import http_date
from drf_spectacular.utils import extend_schema
from rest_framework.generics import get_object_or_404
from rest_framework.permissions import IsAuthenticated
from rest_framework.views import APIView

from .files import store
from .models import ResumableUpload
from .purposes import PURPOSES

VERSION = "1.0.0"
EXTENSIONS = "creation,termination,expiration,checksum"
CHECKSUMS = {"sha1": hashlib.sha1, "sha256": hashlib.sha256, "md5": hashlib.md5}
READ_BYTES = 1024 * 1024
EXPOSED = ("Location, Upload-Offset, Upload-Length, Upload-Expires, Tus-Resumable, Tus-Version, Tus-Extension, "
           "Tus-Max-Size, Mica-Result-Url")


def tus_response(status, **headers):
    response = HttpResponse(status=status)
    response["Tus-Resumable"] = VERSION
    response["Access-Control-Expose-Headers"] = EXPOSED
    response["Cache-Control"] = "no-store"
    for name, value in headers.items():
        response[name.replace("_", "-")] = str(value)
    return response


def problem(status, message, problems=None):
    """A refusal the client can show: JSON {"detail", "problems"}, with the tus headers."""
    response = JsonResponse({"detail": message, "problems": problems or [message]}, status=status)
    response["Tus-Resumable"] = VERSION
    response["Cache-Control"] = "no-store"
    return response


def expires_header(moment):
    return http_date(moment.timestamp())


def parse_metadata(header):
    """Upload-Metadata: comma-separated `key base64value` pairs; ValueError names the bad pair."""
    metadata = {}
    for number, pair in enumerate(filter(None, (part.strip() for part in header.split(","))), start=1):
        key, _, encoded = pair.partition(" ")
        if not key or key in metadata:
            raise ValueError(f"Upload-Metadata, pair {number}: a missing or repeated key.")
        try:
            metadata[key] = base64.b64decode(encoded, validate=True).decode() if encoded else ""
        except (binascii.Error, UnicodeDecodeError):
            raise ValueError(f"Upload-Metadata, key {key!r}: the value is not base64 of UTF-8 text.") from None
    return metadata


def whole_number(request, header):
    value = request.headers.get(header)
    if value is None or not value.isdigit():
        raise ValueError(f"{header} must be a whole number of bytes.")
    return int(value)


class VersionMismatch(Exception):
    pass


class TusView(APIView):
    permission_classes = [IsAuthenticated]
    parser_classes = []  # the body is raw bytes, read as a stream

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        if request.method != "OPTIONS" and request.headers.get("Tus-Resumable") != VERSION:
            raise VersionMismatch()

    def handle_exception(self, exc):
        if isinstance(exc, VersionMismatch):
            return tus_response(412, Tus_Version=VERSION)
        return super().handle_exception(exc)

    def options(self, request, *args, **kwargs):
        return tus_response(204, Tus_Version=VERSION, Tus_Extension=EXTENSIONS,
                            Tus_Max_Size=settings.MICA_UPLOAD_MAX_BYTES, Tus_Checksum_Algorithm=",".join(CHECKSUMS))


@extend_schema(exclude=True)
class CreateUpload(TusView):
    def post(self, request):
        try:
            length = whole_number(request, "Upload-Length")
            metadata = parse_metadata(request.headers.get("Upload-Metadata", ""))
        except ValueError as error:
            return problem(400, str(error))
        purpose = PURPOSES.get(metadata.pop("purpose", ""))
        if purpose is None:
            return problem(400, f"Upload-Metadata: 'purpose' must be one of {', '.join(sorted(PURPOSES))}.")
        filename = metadata.pop("filename", "")
        if length == 0:
            return problem(400, f"{filename or 'The file'}: the file is empty (0 bytes).")
        try:
            limit = min(purpose.admit(request.user, metadata), settings.MICA_UPLOAD_MAX_BYTES)
        except ValidationError as error:
            return problem(400, " ".join(error.messages), problems=error.messages)
        except PermissionDenied as error:
            return problem(403, str(error) or "You may not upload this.")
        if length > limit:
            return problem(413, f"{filename or 'The file'}: {length} bytes is over the limit of {limit} bytes.")
        with transaction.atomic():
            # One user's uploads are created one at a time, so two at once cannot both pass the quota.
            get_user_model().objects.select_for_update().get(pk=request.user.pk)
            open_bytes = ResumableUpload.open_bytes_of(request.user)
            if open_bytes + length > settings.MICA_UPLOAD_QUOTA_BYTES:
                return problem(413, f"Your unfinished uploads hold {open_bytes} bytes; {length} more would pass "
                                    f"your quota of {settings.MICA_UPLOAD_QUOTA_BYTES} bytes. Finish or delete one.")
            upload = ResumableUpload.start(owner=request.user, purpose=purpose.name, target=metadata,
                                           filename=filename, length=length)
        location = request.build_absolute_uri(reverse("uploads:upload", args=[upload.uuid]))
        return tus_response(201, Location=location, Upload_Offset=0, Upload_Expires=expires_header(upload.expires_at))


@extend_schema(exclude=True)
class UploadResource(TusView):
    def upload(self, request, uuid):
        # Someone else's upload is answered as one that does not exist.
        return get_object_or_404(ResumableUpload, uuid=uuid, owner=request.user)

    def head(self, request, uuid):
        upload = self.upload(request, uuid)
        headers = {"Upload_Offset": upload.offset, "Upload_Length": upload.length,
                   "Upload_Expires": expires_header(upload.expires_at)}
        if upload.result_url:
            headers["Mica_Result_Url"] = upload.result_url
        return tus_response(200, **headers)

    def get(self, request, uuid):
        """Not tus: the upload's state as JSON, for a page that comes back to it."""
        upload = self.upload(request, uuid)
        return JsonResponse({"offset": upload.offset, "length": upload.length, "state": upload.state,
                             "result_url": upload.result_url, "problems": upload.problems})

    def delete(self, request, uuid):
        upload = self.upload(request, uuid)
        upload.discard()
        return tus_response(204)

    def patch(self, request, uuid):
        if request.content_type != "application/offset+octet-stream":
            return problem(415, "A chunk is sent as Content-Type: application/offset+octet-stream.")
        try:
            offset = whole_number(request, "Upload-Offset")
            checksum = self.checksum_of(request.headers.get("Upload-Checksum"))
        except ValueError as error:
            return problem(400, str(error))
        with transaction.atomic():
            upload = ResumableUpload.objects.select_for_update().filter(uuid=uuid, owner=request.user).first()
            if upload is None:
                return problem(404, "No such upload (it may have expired).")
            if upload.state != ResumableUpload.State.RECEIVING:
                return problem(409, "This upload has ended.")
            if offset != upload.offset:
                return tus_response(409, Upload_Offset=upload.offset)
            written, digest = self.append(request, upload, checksum)
            if checksum and digest.digest() != checksum[1]:
                return problem(460, f"Upload-Checksum: the chunk's {checksum[0]} does not match; send it again.")
            upload.offset += written
            upload.expires_at = timezone.now() + ResumableUpload.lifetime()  # it is alive: keep it
            upload.save(update_fields=["offset", "expires_at"])
        if upload.is_complete:
            return self.hand_over(upload)
        return tus_response(204, Upload_Offset=upload.offset, Upload_Expires=expires_header(upload.expires_at))

    @staticmethod
    def checksum_of(header):
        if not header:
            return None
        algorithm, _, encoded = header.partition(" ")
        if algorithm not in CHECKSUMS:
            raise ValueError(f"Upload-Checksum: {algorithm!r} is not one of {', '.join(CHECKSUMS)}.")
        try:
            return algorithm, base64.b64decode(encoded, validate=True)
        except binascii.Error:
            raise ValueError("Upload-Checksum: the digest is not base64.") from None

    @staticmethod
    def append(request, upload, checksum):
        """Stores the body as the part at the upload's offset, never past its length. A
        connection that drops mid-chunk keeps what arrived (without a checksum), so the client
        resumes there; a chunk whose checksum does not match is not kept."""
        digest = CHECKSUMS[checksum[0]]() if checksum else None
        room = upload.length - upload.offset
        written = 0
        handle, path = tempfile.mkstemp(prefix="mica-chunk-")
        try:
            with os.fdopen(handle, "wb") as chunk:
                try:
                    while written < room:
                        block = request.read(min(READ_BYTES, room - written))
                        if not block:
                            break
                        chunk.write(block)
                        written += len(block)
                        if digest:
                            digest.update(block)
                except OSError:  # the client went away: keep the bytes that came
                    if checksum:
                        written = 0
            if written and not (checksum and digest.digest() != checksum[1]):
                store(path, upload.part_name(upload.offset))
        finally:
            if os.path.exists(path):
                os.remove(path)
        return written, digest

    @staticmethod
    def hand_over(upload):
        try:
            url = PURPOSES[upload.purpose].receive(upload)
        except (ValidationError, PermissionDenied) as error:
            messages = error.messages if isinstance(error, ValidationError) else [str(error)]
            ResumableUpload.objects.filter(pk=upload.pk).update(state=ResumableUpload.State.REFUSED, problems=messages)
            return problem(422, " ".join(messages), problems=messages)
        finally:
            upload.delete_parts()
        ResumableUpload.objects.filter(pk=upload.pk).update(state=ResumableUpload.State.RECEIVED, result_url=url)
        return tus_response(204, Upload_Offset=upload.offset, Mica_Result_Url=url)
