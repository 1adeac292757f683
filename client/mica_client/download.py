"""Downloading a release's archive, resuming an interrupted download with an HTTP Range request.

Bytes arrive in ``<name>.part``; the archive's ETag is kept beside it in ``<name>.part.etag``.
A second run asks for the rest (``Range: bytes=N-``) with ``If-Range: <etag>``: the site
answers 206 with the missing bytes when the archive is unchanged, or 200 with all of it when it
changed, and the client starts over. The file gets its name once every byte is in.
"""

from pathlib import Path

import requests

from .api import TIMEOUT, MicaError

CHUNK = 1 << 20


def download(client, release, folder, progress_factory):
    """Writes the release's archive into `folder`; returns its path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{release['challenge']}-{release['kind']}-{release['image_format']}.zip"
    partial = target.with_name(target.name + ".part")
    etag_file = target.with_name(target.name + ".part.etag")
    if target.exists() and target.stat().st_size == release["size"]:
        return target
    have = partial.stat().st_size if partial.exists() and etag_file.exists() else 0
    headers = {}
    if have:
        headers = {"Range": f"bytes={have}-", "If-Range": etag_file.read_text().strip()}
    try:
        response = client.session.get(release["archive_url"], headers=headers, stream=True, timeout=TIMEOUT)
    except requests.RequestException as error:
        raise MicaError(f"Cannot reach {client.url}: {error.__class__.__name__}") from None
    with response:
        if response.status_code == 416:  # every byte was already there
            partial.replace(target)
            etag_file.unlink(missing_ok=True)
            return target
        if response.status_code not in (200, 206):
            client.request("GET", "releases/", params={"challenge": release["challenge"]})  # raises the site's reason
            raise MicaError(f"The download was refused (HTTP {response.status_code}).")
        if response.status_code == 200:
            have = 0  # a whole archive: the part we had belonged to another version
        total = release["size"]
        etag_file.write_text(response.headers.get("ETag", ""))
        with open(partial, "r+b" if have else "wb") as handle, \
                progress_factory(total=total, initial=have, desc=target.name) as bar:
            handle.seek(have)
            handle.truncate()
            try:
                for chunk in response.iter_content(CHUNK):
                    handle.write(chunk)
                    bar.update(len(chunk))
            except requests.RequestException as error:
                raise MicaError(f"The download broke off ({error.__class__.__name__}); run the same command "
                                "again to resume it.") from None
    size = partial.stat().st_size
    if size != total:
        raise MicaError(f"The download stopped at {size} of {total} bytes; run the same command again to resume it.")
    partial.replace(target)
    etag_file.unlink(missing_ok=True)
    return target
