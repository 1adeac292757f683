"""Unpacking a participant's or organizer's .zip of masks, trusting nothing in it.

The anonymizer's archive reader does the checks (path traversal, links, zip bombs); this
flattens the entries into one folder, since people zip a folder as often as its files.
"""

import shutil
from pathlib import Path, PurePosixPath

from anonymizer.inputs import UnsafeInput, close_archives, extract_entry, list_zip

# What macOS and editors add to an archive: not masks, and no reason to refuse the upload.
MACOS_METADATA_FOLDER = "__MACOSX/"


def extract_flat(archive, destination, display_name):
    """Extracts every file of the .zip into `destination`; raises ValueError naming the entry."""
    destination = Path(destination)
    destination.mkdir(parents=True, exist_ok=False)
    try:
        entries = list_zip(Path(archive))
    except UnsafeInput as error:
        raise ValueError(f"{display_name}: not a readable .zip archive") from error
    try:
        taken = _extract(entries, destination, display_name)
    finally:
        close_archives()
    if not taken:
        raise ValueError(f"{display_name}: the archive holds no file")
    return destination


def _extract(entries, destination, display_name):
    taken = {}
    for entry in entries:
        if entry.skip_reason:
            raise ValueError(f"{display_name}, entry {entry.source!r}: {entry.skip_reason}")
        name = PurePosixPath(entry.source).name
        if entry.source.startswith(MACOS_METADATA_FOLDER) or name.startswith("."):
            continue
        if name in taken:
            raise ValueError(f"{display_name}: {taken[name]!r} and {entry.source!r} have the same file name")
        taken[name] = entry.source
        try:
            extract_entry(entry.location, entry.source, destination / name)
        except UnsafeInput as error:
            raise ValueError(f"{display_name}, entry {entry.source!r}: {error}") from error
    return taken


def unpacked_path(stored_file):
    """The folder beside a stored .zip (a FieldFile) that its masks are unpacked into."""
    path = Path(stored_file.path)
    return path.with_name(path.name + ".masks")


def delete_with_unpacked(stored_file):
    """Deletes a stored file and, if it is a .zip that was unpacked, its folder of masks."""
    shutil.rmtree(unpacked_path(stored_file), ignore_errors=True)
    stored_file.delete(save=False)
