"""Moving files between the private storage and a worker's local folders through Django's
storage API, so that web and workers need not share a disk (a file-system storage gets hard
links and renames instead of copies)."""

import os
import shutil

from django.core.files import File

from mica.core.storage import private_storage

COPY_BYTES = 1024 * 1024


class LocalFile(File):
    """A local file handed to storage.save(): a file-system storage moves it into place (Django
    moves any file with a temporary_file_path), object storage uploads it."""

    def __init__(self, path):
        super().__init__(open(path, "rb"), name=os.path.basename(path))
        self.path = path

    def temporary_file_path(self):
        return self.path


def store(local_path, name):
    """Puts the local file into private storage under `name` (taking the file over); the name saved."""
    with LocalFile(local_path) as file:
        saved = private_storage().save(name, file)
    if os.path.exists(local_path):  # object storage uploaded a copy
        os.remove(local_path)
    return saved


def fetch(field_file, target):
    """A local copy of a stored file at `target`: a hard link where the storage is this disk."""
    try:
        os.link(field_file.storage.path(field_file.name), target)
        return target
    except (NotImplementedError, OSError):
        pass
    with field_file.storage.open(field_file.name, "rb") as source, open(target, "wb") as copy:
        shutil.copyfileobj(source, copy, COPY_BYTES)
    return target
