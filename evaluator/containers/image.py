"""Reading a participant's image archive and unpacking it into a root filesystem, safely.

Accepted: ``docker save`` / ``podman save`` output (docker-archive: ``manifest.json``, a config
JSON, layer tars) and OCI image-layout tars (``podman save --format oci-archive``,
``skopeo copy ... oci-archive:``), either one optionally gzipped as a whole.

The archive is hostile until proven otherwise. Every layer's digest is checked against the
config (whose own sha256 is the image's digest), and every layer entry is checked before
anything is written: no absolute or ``..`` paths, no path through a symlink, no link that
leads out of the root, no device node or fifo, caps on bytes and entries. Setuid/setgid
bits are never written; an image whose *final* filesystem still has such a file is refused
(a later layer may remove the file or clear the bit, so the fix is one ``RUN`` line).
Any refusal removes what was unpacked.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import posixpath
import re
import shutil
import stat
import tarfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Image", "ImageConfig", "ImageRefused", "image_digest", "load_image", "open_image",
           "DEFAULT_MAX_UNPACKED_BYTES", "DEFAULT_MAX_FILES"]

DEFAULT_MAX_UNPACKED_BYTES = 8 * 1024**3
DEFAULT_MAX_FILES = 500_000
_MAX_METADATA_BYTES = 4 * 1024**2  # manifest, index, config: JSON of a few KiB in practice
_CHUNK = 1024 * 1024
_HEX64 = re.compile(r"[0-9a-f]{64}")
_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_WHITEOUT = ".wh."
_OPAQUE = ".wh..wh..opq"
_SETID = stat.S_ISUID | stat.S_ISGID
MOUNT_POINTS = ("input", "output", "tmp", "proc", "dev")
IMAGE_FILE = "image.json"


class ImageRefused(ValueError):
    """The archive is not an image Mica will run; ``reason`` says what and where."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class ImageConfig:
    """What the image asks to run: the fields of the config's ``config`` object Mica uses."""

    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    env: tuple[str, ...] = ()
    workdir: str = "/"
    user: str = ""

    @property
    def argv(self) -> list[str]:
        return [*self.entrypoint, *self.cmd]

    @classmethod
    def from_json(cls, config: dict) -> "ImageConfig":
        c = config.get("config") or {}

        def strings(key):
            value = c.get(key) or []
            if isinstance(value, str):  # Docker's shell form is stored as a list, but be lenient
                value = [value]
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ImageRefused(f"config: {key} must be a list of strings")
            return tuple(value)

        workdir = c.get("WorkingDir") or "/"
        user = c.get("User") or ""
        if not isinstance(workdir, str) or not isinstance(user, str):
            raise ImageRefused("config: WorkingDir and User must be strings")
        return cls(strings("Entrypoint"), strings("Cmd"), strings("Env"), workdir, user)


@dataclass(frozen=True)
class Image:
    """An unpacked image: ``digest`` (``sha256:<hex>`` of its config, the image id docker and
    podman show), ``rootfs`` (the directory to run), ``config``, and ``archive_format``
    (``docker-archive`` or ``oci-archive``), ``archive`` (the file it came from, which the docker
    and podman backends load)."""

    digest: str
    rootfs: Path
    config: ImageConfig
    archive_format: str
    archive: Path
    layer_digests: tuple[str, ...] = field(default=())

    def to_json(self) -> dict:
        return {"digest": self.digest, "rootfs": str(self.rootfs), "archive_format": self.archive_format,
                "archive": str(self.archive), "layer_digests": list(self.layer_digests),
                "config": {"entrypoint": list(self.config.entrypoint), "cmd": list(self.config.cmd),
                           "env": list(self.config.env), "workdir": self.config.workdir,
                           "user": self.config.user}}


def open_image(dest_dir) -> Image:
    """The image :func:`load_image` unpacked into ``dest_dir`` (from its ``image.json``), so a
    later process can run it without unpacking it again."""
    data = json.loads((Path(dest_dir) / IMAGE_FILE).read_text())
    c = data["config"]
    config = ImageConfig(tuple(c["entrypoint"]), tuple(c["cmd"]), tuple(c["env"]), c["workdir"], c["user"])
    return Image(data["digest"], Path(data["rootfs"]), config, data["archive_format"], Path(data["archive"]),
                 tuple(data["layer_digests"]))


# ---------------------------------------------------------------- the outer archive

class _Archive:
    """Random access to the outer tar's members by name (symlinks inside it followed, within it)."""

    def __init__(self, path: Path, fileobj=None, shown_as=None):
        self.path = Path(shown_as or path)  # messages name the participant's file
        try:
            self._tar = tarfile.open(path, mode="r:", fileobj=fileobj)
            self._members = {_clean_member_name(m.name): m for m in self._tar}
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise ImageRefused(f"{self.path.name}: not a tar archive ({exc})") from None

    def close(self):
        self._tar.close()

    def has(self, name):
        return _clean_member_name(name) in self._members

    def member(self, name, *, _hops=0) -> tarfile.TarInfo:
        key = _clean_member_name(name)
        m = self._members.get(key)
        if m is None:
            raise ImageRefused(f"{self.path.name}: {name!r} is named by the manifest but not in the archive")
        if m.issym() or m.islnk():
            if _hops > 8:
                raise ImageRefused(f"{self.path.name}: {name!r}: too many links")
            target = m.linkname if m.islnk() else posixpath.join(posixpath.dirname(key), m.linkname)
            target = posixpath.normpath(target)
            if target.startswith("../") or target == ".." or target.startswith("/"):
                raise ImageRefused(f"{self.path.name}: {name!r} links out of the archive")
            return self.member(target, _hops=_hops + 1)
        if not m.isfile():
            raise ImageRefused(f"{self.path.name}: {name!r} is not a file")
        return m

    def open(self, name):
        return self._tar.extractfile(self.member(name))

    def read_json(self, name, what):
        m = self.member(name)
        if m.size > _MAX_METADATA_BYTES:
            raise ImageRefused(f"{self.path.name}: {what} {name!r} is {m.size} bytes, more than a config can be")
        data = self._tar.extractfile(m).read()
        try:
            return data, json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ImageRefused(f"{self.path.name}: {what} {name!r} is not JSON ({exc})") from None


def _clean_member_name(name):
    while name.startswith("./"):
        name = name[2:]
    return name.rstrip("/")


def _sha256_of_digest(text, where):
    if not isinstance(text, str) or not text.startswith("sha256:") or not _HEX64.fullmatch(text[7:]):
        raise ImageRefused(f"{where}: {text!r} is not a sha256 digest")
    return text[7:]


@dataclass
class _Plan:
    """What an archive says: the config (bytes and JSON) and each layer (member, digests)."""

    archive_format: str
    config_bytes: bytes
    config: dict
    layers: list  # [(member name, expected blob sha256 or None, expected diff_id sha256)]

    @property
    def digest(self):
        return "sha256:" + hashlib.sha256(self.config_bytes).hexdigest()


def _plan(archive: _Archive) -> _Plan:
    name = archive.path.name
    if archive.has("index.json") and archive.has("oci-layout"):
        _, index = archive.read_json("index.json", "index")
        manifests = index.get("manifests") if isinstance(index, dict) else None
        if not isinstance(manifests, list) or len(manifests) != 1:
            raise ImageRefused(f"{name}: index.json must list exactly one image manifest, "
                               f"found {len(manifests) if isinstance(manifests, list) else 'none'}")
        blob = _sha256_of_digest(manifests[0].get("digest"), f"{name}: index.json manifests[0].digest")
        manifest_bytes, manifest = archive.read_json(f"blobs/sha256/{blob}", "manifest")
        if hashlib.sha256(manifest_bytes).hexdigest() != blob:
            raise ImageRefused(f"{name}: the manifest blob does not match its digest sha256:{blob}")
        if isinstance(manifest, dict) and "manifests" in manifest:
            raise ImageRefused(f"{name}: a multi-platform image index; save one platform "
                               f"(e.g. podman save --format oci-archive IMAGE after pulling linux/amd64)")
        try:
            config_blob = _sha256_of_digest(manifest["config"]["digest"], f"{name}: manifest config.digest")
            layer_refs = manifest["layers"]
        except (KeyError, TypeError):
            raise ImageRefused(f"{name}: the manifest has no config or layers") from None
        config_bytes, config = archive.read_json(f"blobs/sha256/{config_blob}", "config")
        if hashlib.sha256(config_bytes).hexdigest() != config_blob:
            raise ImageRefused(f"{name}: the config blob does not match its digest sha256:{config_blob}")
        if not isinstance(layer_refs, list):
            raise ImageRefused(f"{name}: manifest layers must be a list")
        blobs = [_sha256_of_digest((ref or {}).get("digest") if isinstance(ref, dict) else None,
                                   f"{name}: manifest layers[{i}].digest") for i, ref in enumerate(layer_refs)]
        layers_members = [(f"blobs/sha256/{b}", b) for b in blobs]
        archive_format = "oci-archive"
    elif archive.has("manifest.json"):
        _, manifest = archive.read_json("manifest.json", "manifest")
        if not isinstance(manifest, list) or len(manifest) != 1 or not isinstance(manifest[0], dict):
            raise ImageRefused(f"{name}: manifest.json must describe exactly one image "
                               f"(save one image per archive)")
        entry = manifest[0]
        if not isinstance(entry.get("Config"), str) or not isinstance(entry.get("Layers"), list):
            raise ImageRefused(f"{name}: manifest.json has no Config or Layers")
        config_bytes, config = archive.read_json(entry["Config"], "config")
        stem = posixpath.basename(entry["Config"]).removesuffix(".json")
        if _HEX64.fullmatch(stem) and hashlib.sha256(config_bytes).hexdigest() != stem:
            raise ImageRefused(f"{name}: the config {entry['Config']!r} does not match its name")
        layers_members = []
        for i, layer in enumerate(entry["Layers"]):
            if not isinstance(layer, str):
                raise ImageRefused(f"{name}: manifest.json Layers[{i}] is not a file name")
            layers_members.append((layer, None))
        archive_format = "docker-archive"
    else:
        raise ImageRefused(f"{name}: neither a docker-archive (manifest.json) nor an OCI layout "
                           f"(index.json and oci-layout); make it with docker save or podman save")
    if not isinstance(config, dict):
        raise ImageRefused(f"{name}: the config is not a JSON object")
    diff_ids = (config.get("rootfs") or {}).get("diff_ids") if isinstance(config.get("rootfs"), dict) else None
    if not isinstance(diff_ids, list) or len(diff_ids) != len(layers_members):
        raise ImageRefused(f"{name}: the config lists {len(diff_ids) if isinstance(diff_ids, list) else 'no'} "
                           f"layer digests (rootfs.diff_ids) for {len(layers_members)} layers")
    if config.get("os", "linux") != "linux":
        raise ImageRefused(f"{name}: the image is for {config.get('os')!r}, not linux")
    layers = [(member, blob, _sha256_of_digest(d, f"{name}: config rootfs.diff_ids[{i}]"))
              for i, ((member, blob), d) in enumerate(zip(layers_members, diff_ids))]
    ImageConfig.from_json(config)  # a malformed config is refused before anything is unpacked
    return _Plan(archive_format, config_bytes, config, layers)


def _open_archive(archive_path, scratch_dir, max_bytes) -> _Archive:
    """The archive, decompressed first into ``scratch_dir`` when it is gzipped as a whole."""
    archive_path = Path(archive_path)
    try:
        with open(archive_path, "rb") as fh:
            magic = fh.read(4)
    except OSError as exc:
        raise ImageRefused(f"{archive_path.name}: cannot be read ({exc.strerror})") from None
    if magic[:2] != _GZIP_MAGIC:
        return _Archive(archive_path)
    plain = Path(scratch_dir) / (archive_path.name + ".tar")
    return _Archive(_gunzip(archive_path, plain, max_bytes), shown_as=archive_path)


def _gunzip(src, dest, max_bytes):
    """Decompress ``src`` to the file ``dest``, refusing past ``max_bytes``."""
    out = open(dest, "wb")
    total = 0
    try:
        with gzip.open(src, "rb") as gz:
            while chunk := gz.read(_CHUNK):
                total += len(chunk)
                if total > max_bytes:
                    raise ImageRefused(f"{Path(src).name}: decompresses to more than {max_bytes} bytes")
                out.write(chunk)
    except (OSError, EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise ImageRefused(f"{Path(src).name}: a broken gzip stream ({exc})") from None
    finally:
        out.close()
    return dest


def _metadata_of_gzipped(archive_path) -> io.BytesIO:
    """A small in-memory tar of a gzipped archive's links and JSON-sized files (at most
    ``_MAX_METADATA_BYTES`` each, 16 of those in all), read in one streaming pass: the manifest,
    index and config are among them, the layers are skipped."""
    kept = io.BytesIO()
    budget = 16 * _MAX_METADATA_BYTES
    try:
        with tarfile.open(archive_path, mode="r|gz") as stream, tarfile.open(fileobj=kept, mode="w") as out:
            for m in stream:
                if m.issym() or m.islnk():
                    out.addfile(m)
                elif m.isfile() and m.size <= _MAX_METADATA_BYTES and m.size <= budget:
                    budget -= m.size
                    out.addfile(m, stream.extractfile(m))
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        raise ImageRefused(f"{Path(archive_path).name}: not a readable gzipped tar ({exc})") from None
    kept.seek(0)
    return kept


def image_digest(archive_path) -> str:
    """The image's digest (``sha256:<hex>`` of its config, docker's and podman's image id),
    read from the manifest and config only; no layer is unpacked or checked. The same image
    saved as docker-archive or OCI, plain or gzipped, has the same digest. Raises
    :class:`ImageRefused`. A plain tar is only indexed; a gzipped one is read once as a stream
    (decompressed, nothing written)."""
    archive_path = Path(archive_path)
    try:
        with open(archive_path, "rb") as fh:
            gzipped = fh.read(2) == _GZIP_MAGIC
    except OSError as exc:
        raise ImageRefused(f"{archive_path.name}: cannot be read ({exc.strerror})") from None
    archive = (_Archive(archive_path, fileobj=_metadata_of_gzipped(archive_path)) if gzipped
               else _Archive(archive_path))
    try:
        return _plan(archive).digest
    finally:
        archive.close()


# ---------------------------------------------------------------- unpacking layers

class _HashingReader(io.RawIOBase):
    """Reads from ``raw`` while hashing what passes and counting it against a cap."""

    def __init__(self, raw, cap=None, what=""):
        self.raw, self.hash, self.count, self.cap, self.what = raw, hashlib.sha256(), 0, cap, what

    def readable(self):
        return True

    def readinto(self, buf):
        data = self.raw.read(len(buf))
        n = len(data)
        buf[:n] = data
        self.hash.update(data)
        self.count += n
        if self.cap is not None and self.count > self.cap:
            raise ImageRefused(f"{self.what}: unpacks to more than the image limit of {self.cap} bytes")
        return n

    def drain(self):
        while self.read(_CHUNK):
            pass

    def hexdigest(self):
        return self.hash.hexdigest()

    def seek(self, *args):
        raise io.UnsupportedOperation("a hashing reader reads once")


class _Unpacker:
    def __init__(self, rootfs: Path, max_bytes: int, max_files: int):
        self.root = rootfs
        self.root_text = str(rootfs)
        self.max_bytes, self.max_files = max_bytes, max_files
        self.bytes = 0
        self.files = 0
        self.setid_paths: set[str] = set()
        self.layer_paths: set[str] = set()
        self.real_dirs: set[str] = set()

    # Paths are always archive-relative ("usr/bin/x"); the host path is root/that, reached
    # without following a symlink.
    def host(self, rel):
        return f"{self.root_text}/{rel}"

    def check_parents(self, rel, where):
        """Create ``rel``'s parent directories; refuse when one of them is not a real directory.
        Directories seen to be real stay known until something at or above them is removed."""
        parts = rel.split("/")[:-1]
        for i in range(len(parts)):
            sub = "/".join(parts[:i + 1])
            if sub in self.real_dirs:
                continue
            try:
                st = os.lstat(self.host(sub))
            except FileNotFoundError:
                os.mkdir(self.host(sub), 0o755)
                self.real_dirs.add(sub)
                continue
            if stat.S_ISLNK(st.st_mode):
                raise ImageRefused(f"{where}: {rel!r} runs through the symlink {sub!r}")
            if not stat.S_ISDIR(st.st_mode):
                raise ImageRefused(f"{where}: {rel!r} runs through the file {sub!r}")
            self.real_dirs.add(sub)

    def remove(self, rel):
        path = self.host(rel)
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return
        if stat.S_ISDIR(st.st_mode):
            shutil.rmtree(path)
            prefix = rel + "/"
            self.setid_paths = {p for p in self.setid_paths if not p.startswith(prefix)}
            self.real_dirs = {d for d in self.real_dirs if d != rel and not d.startswith(prefix)}
        else:
            os.unlink(path)
        self.setid_paths.discard(rel)

    def make_mount_points(self):
        """Empty directories where the sandbox mounts /input, /output, /tmp, /proc and /dev (the
        root is mounted read-only, so they cannot be made at run time)."""
        for name in MOUNT_POINTS:
            st = _lstat(self.host(name))
            if st is not None and not stat.S_ISDIR(st.st_mode):
                self.remove(name)
            if st is None or not stat.S_ISDIR(st.st_mode):
                os.mkdir(self.host(name), 0o755)

    def opaque(self, dir_rel):
        """Hide everything lower layers put in ``dir_rel`` (this layer's entries stay)."""
        def sweep(rel):
            host = self.host(rel) if rel else self.root
            for name in os.listdir(host):
                child = f"{rel}/{name}" if rel else name
                if child not in self.layer_paths:
                    self.remove(child)
                elif os.path.isdir(self.host(child)) and not os.path.islink(self.host(child)):
                    sweep(child)
        if os.path.isdir(self.host(dir_rel) if dir_rel else self.root):
            sweep(dir_rel)

    def apply(self, tar: tarfile.TarFile, where: str):
        self.layer_paths = set()
        for m in tar:
            self.files += 1
            if self.files > self.max_files:
                raise ImageRefused(f"{where}: more than {self.max_files} entries in the image (the file limit)")
            rel = _entry_path(m.name, where)
            if rel is None:
                continue
            base = posixpath.basename(rel)
            parent = posixpath.dirname(rel)
            if base == _OPAQUE:
                self.opaque(parent)
                continue
            if base.startswith(_WHITEOUT):
                if base.startswith(_WHITEOUT + _WHITEOUT):
                    continue  # aufs bookkeeping (.wh..wh.plnk and the like), not a file
                target = posixpath.join(parent, base[len(_WHITEOUT):])
                self.check_parents(target, where)
                self.remove(target)
                continue
            self.add(m, rel, tar, where)

    def add(self, m: tarfile.TarInfo, rel: str, tar, where):
        if m.ischr() or m.isblk():
            raise ImageRefused(f"{where}: {rel!r} is a device node")
        if m.isfifo():
            raise ImageRefused(f"{where}: {rel!r} is a fifo")
        if m.issparse():
            raise ImageRefused(f"{where}: {rel!r} is a sparse file")
        if not (m.isreg() or m.isdir() or m.issym() or m.islnk()):
            raise ImageRefused(f"{where}: {rel!r} has an unsupported tar type {m.type!r}")
        self.check_parents(rel, where)
        path = self.host(rel)
        self.layer_paths.add(rel)
        if m.mode & _SETID and not m.isdir() and not m.issym():
            self.setid_paths.add(rel)
        else:
            self.setid_paths.discard(rel)
        mode = m.mode & 0o1777
        if m.isdir():
            try:
                os.mkdir(path, 0o700)
            except FileExistsError:
                if not stat.S_ISDIR(os.lstat(path).st_mode):
                    self.remove(rel)
                    os.mkdir(path, 0o700)
            os.chmod(path, _readable(mode | 0o700, directory=True))
            self.real_dirs.add(rel)
        elif m.issym():
            _check_symlink(rel, m.linkname, where)
            self._replacing(rel, lambda: os.symlink(m.linkname, path))
        elif m.islnk():
            target = _entry_path(m.linkname, where, what="hard link target")
            if target is None:
                raise ImageRefused(f"{where}: {rel!r} is a hard link to the root")
            self.check_parents(target, where)
            target_stat = _lstat(self.host(target))
            if target_stat is None or not stat.S_ISREG(target_stat.st_mode):
                raise ImageRefused(f"{where}: {rel!r} is a hard link to {target!r}, which is not a file "
                                   f"unpacked before it")
            self._replacing(rel, lambda: os.link(self.host(target), path, follow_symlinks=False))
            if target in self.setid_paths:
                self.setid_paths.add(rel)
        else:
            self.bytes += m.size
            if self.bytes > self.max_bytes:
                raise ImageRefused(f"{where}: {rel!r} takes the image past the limit of {self.max_bytes} "
                                   f"unpacked bytes")
            fd = self._replacing(rel, lambda: os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW,
                                                      0o600))
            try:
                # Random-access tar: the member's bytes are at offset_data (what extractfile reads,
                # without its per-file objects, which dominate for many small files).
                tar.fileobj.seek(m.offset_data)
                left = m.size
                while left:
                    chunk = tar.fileobj.read(min(left, _CHUNK))
                    if not chunk:
                        raise ImageRefused(f"{where}: {rel!r} is cut short")
                    os.write(fd, chunk)
                    left -= len(chunk)
                os.fchmod(fd, _readable(mode | 0o600, directory=False))
            finally:
                os.close(fd)

    def _replacing(self, rel, create):
        """``create()`` the entry; what a lower layer had there is removed first."""
        try:
            return create()
        except FileExistsError:
            self.remove(rel)
            return create()


def _readable(mode, *, directory):
    """The mode to store: the owner's read (and execute/search) bits given to everyone, so the
    sandbox can read its read-only root whichever host user it runs as."""
    owner_rx = (mode >> 6) & 0o5
    return mode | (owner_rx << 3) | owner_rx


def _lstat(path):
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None


def _entry_path(name, where, what="path"):
    """A layer entry's name as a clean relative path, None for the root itself."""
    if name.startswith("/"):
        raise ImageRefused(f"{where}: the {what} {name!r} is absolute")
    if "\x00" in name:
        raise ImageRefused(f"{where}: the {what} {name!r} has a NUL byte")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise ImageRefused(f"{where}: the {what} {name!r} climbs out with '..'")
    return "/".join(parts) or None


def _check_symlink(rel, target, where):
    """Refuse a relative symlink that climbs above the root. Absolute targets resolve inside the
    container's root (where '/..' is '/'), and the unpacker never follows symlinks itself."""
    if not target:
        raise ImageRefused(f"{where}: the symlink {rel!r} has an empty target")
    if target.startswith("/"):
        return
    depth = rel.count("/")  # directories between the root and the link
    for part in target.split("/"):
        if part == "..":
            depth -= 1
            if depth < 0:
                raise ImageRefused(f"{where}: the symlink {rel!r} points out of the root ({target!r})")
        elif part not in ("", "."):
            depth += 1


def _verified_layer(archive: _Archive, member, blob_digest, diff_id, where, scratch: Path, cap):
    """The layer's uncompressed tar as a seekable file, once its digests are checked: a plain
    blob is read in place; a gzipped one is decompressed into ``scratch`` (at most ``cap``
    bytes). Nothing is unpacked from a layer before it is known to be the one the config names."""
    raw = archive.open(member)
    magic = raw.read(4)
    raw.seek(0)
    if magic == _ZSTD_MAGIC:
        raise ImageRefused(f"{where}: zstd-compressed layers are not supported; save with gzip or "
                           f"uncompressed layers (docker save / podman save do)")
    blob = _HashingReader(raw)
    if magic[:2] == _GZIP_MAGIC:
        layer = open(scratch / "layer.tar", "w+b")
        plain = _HashingReader(gzip.GzipFile(fileobj=io.BufferedReader(blob, _CHUNK), mode="rb"), cap=cap,
                               what=where)
        try:
            while chunk := plain.read(_CHUNK):
                layer.write(chunk)
        except (OSError, EOFError, zlib.error) as exc:
            layer.close()
            raise ImageRefused(f"{where}: a broken gzip stream ({exc})") from None
        blob.drain()
        plain_digest = plain.hexdigest()
        layer.seek(0)
    else:
        blob.drain()
        plain_digest = blob.hexdigest()
        layer = raw
        layer.seek(0)
    if blob_digest is not None and blob.hexdigest() != blob_digest:
        raise ImageRefused(f"{where}: the blob does not match its digest sha256:{blob_digest}")
    if plain_digest != diff_id:
        raise ImageRefused(f"{where}: the layer does not match the config's digest sha256:{diff_id}")
    return layer


def load_image(archive_path, dest_dir, *, max_unpacked_bytes=DEFAULT_MAX_UNPACKED_BYTES,
               max_files=DEFAULT_MAX_FILES) -> Image:
    """Check and unpack an image archive into ``dest_dir/rootfs`` (``dest_dir`` is created and
    must not hold a ``rootfs`` yet); ``dest_dir/image.json`` then describes it (see
    :func:`open_image`).

    Layers are applied in order with their whiteouts (``.wh.<name>`` and opaque
    ``.wh..wh..opq``); each layer's sha256 must match the config's ``rootfs.diff_ids`` (and, in
    OCI archives, the blob's digest in the manifest). ``max_unpacked_bytes`` caps the file
    bytes of all layers together (and a gzipped archive's decompressed size), ``max_files`` the
    entries of all layers together.

    Raises :class:`ImageRefused` with the reason (which layer, which path); nothing stays on
    disk then.
    """
    archive_path = Path(archive_path)
    dest_dir = Path(dest_dir).resolve()
    dest_dir.mkdir(parents=True, exist_ok=True)
    rootfs = dest_dir / "rootfs"
    if rootfs.exists():
        raise FileExistsError(f"{rootfs} already exists")
    scratch = dest_dir / ".archive"
    scratch.mkdir(exist_ok=True)
    archive = None
    try:
        archive = _open_archive(archive_path, scratch, max_unpacked_bytes)
        plan = _plan(archive)
        rootfs.mkdir(mode=0o755)
        unpacker = _Unpacker(rootfs, max_unpacked_bytes, max_files)
        for i, (member, blob_digest, diff_id) in enumerate(plan.layers):
            where = f"{archive_path.name}: layer {i + 1} of {len(plan.layers)}"
            # A layer's tar is at most its files' bytes plus a header and padding per entry.
            cap = max_unpacked_bytes + 1536 * max_files + _CHUNK
            with _verified_layer(archive, member, blob_digest, diff_id, where, scratch, cap) as layer:
                try:
                    with tarfile.open(fileobj=layer, mode="r:") as tar:
                        unpacker.apply(tar, where)
                except (tarfile.TarError, EOFError) as exc:
                    raise ImageRefused(f"{where}: not a readable tar layer ({exc})") from None
        unpacker.make_mount_points()
        if unpacker.setid_paths:
            shown = ", ".join(sorted("/" + p for p in unpacker.setid_paths)[:5])
            raise ImageRefused(
                f"{archive_path.name}: {len(unpacker.setid_paths)} file(s) keep a setuid/setgid bit "
                f"({shown}); add `RUN find / -xdev -perm /6000 -type f -exec chmod a-s {{}} +` as the "
                f"last step of your Dockerfile")
        image = Image(plan.digest, rootfs, ImageConfig.from_json(plan.config), plan.archive_format,
                      archive_path.resolve(), tuple(d for _, _, d in plan.layers))
        (dest_dir / IMAGE_FILE).write_text(json.dumps(image.to_json(), indent=1))
        return image
    except ImageRefused:
        shutil.rmtree(rootfs, ignore_errors=True)
        raise
    except OSError as exc:
        shutil.rmtree(rootfs, ignore_errors=True)
        raise ImageRefused(f"{archive_path.name}: cannot be unpacked ({exc.strerror or exc})") from None
    finally:
        if archive is not None:
            archive.close()
        shutil.rmtree(scratch, ignore_errors=True)
