"""Where Mica's files live, and how engines get a local path to them.

Every stored file goes through Django's storage API: the local file system by default
(`make demo`), or S3-compatible object storage when ``MICA_S3_BUCKET`` is set, so that web and
workers on different machines share no disk. The engines (anonymizer, evaluator) read local
paths: :func:`local_path` gives one, fetching a copy into the worker's cache when the file is
not on this machine's disk.
"""

import hashlib
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings
from django.core.files.storage import storages
from django.core.signals import setting_changed
from django.http import FileResponse, HttpResponseRedirect
from django.utils.functional import LazyObject, empty


class _PrivateStorage(LazyObject):
    """``storages["private"]``, looked up again when the STORAGES setting changes (as Django's
    own ``default_storage`` is), since a FileField keeps the storage it was given at import."""

    def _setup(self):
        self._wrapped = storages["private"]


_private = _PrivateStorage()


def _forget_storage(*, setting, **kwargs):
    if setting == "STORAGES":
        _private._wrapped = empty


setting_changed.connect(_forget_storage)


def private_storage():
    """The storage of hidden files (truth, submissions, uploads, images): it has no public URL,
    so only views that check permission can serve what it holds."""
    return _private


def is_local(field_file):
    """Whether the stored file is on this machine's disk (a file-system storage)."""
    try:
        field_file.storage.path(field_file.name)
    except NotImplementedError:
        return False
    return True


@contextmanager
def local_path(field_file):
    """A local path to ``field_file`` for as long as the block runs.

    On a file-system storage it is the stored file itself. On object storage it is a copy in
    this worker's cache (``MICA_WORKER_CACHE_DIR``), keyed by the stored name: Mica never
    rewrites a stored file in place (a new truth or upload is a new name), so a cached copy
    stays right. The copy keeps the stored file's base name, since engines read the format from
    the suffix (``.zip``, ``.csv``).
    """
    if is_local(field_file):
        yield Path(field_file.path)
        return
    cached = _cache_dir() / hashlib.sha256(field_file.name.encode()).hexdigest()[:32] / Path(field_file.name).name
    if not cached.exists():
        cached.parent.mkdir(parents=True, exist_ok=True)
        # Fetched beside its final name and renamed: a worker killed mid-download, or two workers
        # fetching at once, never leave a partial file under the final name.
        with tempfile.NamedTemporaryFile(dir=cached.parent, delete=False) as partial:
            with field_file.storage.open(field_file.name, "rb") as source:
                shutil.copyfileobj(source, partial, length=1024 * 1024)
        os.replace(partial.name, cached)
        _trim_cache()
    os.utime(cached)  # recently used: trimmed last
    yield cached


def _cache_dir():
    path = Path(settings.MICA_WORKER_CACHE_DIR)
    path.mkdir(parents=True, exist_ok=True)
    return path


def _trim_cache():
    """Delete the least recently used copies until the cache fits ``MICA_WORKER_CACHE_BYTES``."""
    copies = [p for p in _cache_dir().glob("*/*") if p.is_file()]
    total = sum(p.stat().st_size for p in copies)
    for copy in sorted(copies, key=lambda p: p.stat().st_mtime):
        if total <= settings.MICA_WORKER_CACHE_BYTES:
            break
        total -= copy.stat().st_size
        copy.unlink(missing_ok=True)


def download_response(field_file, filename, content_type=None):
    """Serve a stored file to a user the caller has already checked: from the local disk, or on
    object storage by redirecting to a short-lived presigned URL, so large downloads never pass
    through a web worker."""
    if is_local(field_file):
        return FileResponse(field_file.open("rb"), as_attachment=True, filename=filename, content_type=content_type)
    parameters = {"ResponseContentDisposition": f'attachment; filename="{_header_safe(filename)}"'}
    if content_type:
        parameters["ResponseContentType"] = content_type
    return HttpResponseRedirect(field_file.storage.url(field_file.name, parameters=parameters))


def _header_safe(filename):
    return "".join(c if c.isprintable() and c not in '"\\' else "_" for c in filename)
