"""Reading an uploaded bundle safely: a zip whose member paths stay inside it, whose sizes are
bounded (a zip bomb is refused before it is inflated) and whose YAML is checked key by key.

Every problem names the file and the key, e.g. ``challenge.yaml: phases[1].daily_limit:
expected a whole number, got a string``; values are never quoted, they may be anything.
"""

import posixpath
import zipfile
import zlib
from datetime import date, datetime, timezone

import yaml

# A member may inflate to at most this many times its compressed size (text compresses ~10×).
MAX_RATIO = 200
MAX_MEMBERS = 10_000


class BundleError(Exception):
    """Everything wrong with a bundle, one line per problem."""

    def __init__(self, problems):
        self.problems = list(problems)
        super().__init__("; ".join(self.problems))


class Bundle:
    """The members of a bundle's zip, checked before anything is inflated; read one at a time."""

    def __init__(self, source, *, max_bytes):
        try:
            self._archive = zipfile.ZipFile(source)
        except (zipfile.BadZipFile, OSError):
            raise BundleError(["the bundle is not a zip archive"]) from None
        infos = [info for info in self._archive.infolist() if not info.is_dir()]
        problems = []
        if len(infos) > MAX_MEMBERS:
            problems.append(f"the bundle holds {len(infos)} files; at most {MAX_MEMBERS}")
        total = 0
        for info in infos:
            if _escapes(info.filename):
                problems.append(f"{info.filename!r}: a path that leaves the bundle (absolute, '..' or '\\')")
            total += info.file_size
            if info.file_size > MAX_RATIO * max(info.compress_size, 1) and info.file_size > 1 << 20:
                problems.append(f"{info.filename!r}: inflates {info.file_size // max(info.compress_size, 1)}× "
                                f"(at most {MAX_RATIO}×): refused as a zip bomb")
        if total > max_bytes:
            problems.append(f"the bundle inflates to {total} bytes; at most {max_bytes} (MICA_MAX_BUNDLE_BYTES)")
        if problems:
            self._archive.close()
            raise BundleError(problems)
        self.files = {posixpath.normpath(info.filename): info for info in infos}
        self.root = _common_root(self.files)

    def close(self):
        self._archive.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def has(self, name):
        return self.path(name) in self.files

    def path(self, name):
        return posixpath.normpath(posixpath.join(self.root, name))

    def read(self, name, *, named_by):
        """A member's bytes; `named_by` ("challenge.yaml: terms") says who named it in errors."""
        if not isinstance(name, str) or not name:
            raise BundleError([f"{named_by}: expected a file name"])
        if _escapes(name):
            raise BundleError([f"{named_by}: the path {name!r} leaves the bundle"])
        info = self.files.get(self.path(name))
        if info is None:
            raise BundleError([f"{named_by}: the bundle has no file {name!r}"])
        try:
            with self._archive.open(info) as member:
                content = member.read(info.file_size + 1)  # a header that lies about the size is caught
        except (zipfile.BadZipFile, zlib.error, NotImplementedError, EOFError):
            raise BundleError([f"{name}: damaged in the zip (or compressed in a way it cannot be read)"]) from None
        if len(content) != info.file_size:
            raise BundleError([f"{name}: its size differs from the one the zip declares"])
        return content

    def text(self, name, *, named_by):
        try:
            return self.read(name, named_by=named_by).decode("utf-8-sig")
        except UnicodeDecodeError:
            raise BundleError([f"{name}: not UTF-8 text (named by {named_by})"]) from None

    def yaml(self, name):
        try:
            document = yaml.safe_load(self.text(name, named_by="the bundle"))
        except yaml.YAMLError as error:
            mark = getattr(error, "problem_mark", None)
            where = f", line {mark.line + 1}" if mark else ""
            raise BundleError([f"{name}{where}: not valid YAML"]) from None
        if not isinstance(document, dict):
            raise BundleError([f"{name}: expected a mapping of keys at the top"])
        return document


def _escapes(name):
    if "\\" in name or name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        return True
    return any(part == ".." for part in name.split("/"))


def _common_root(files):
    """Bundles zipped with their folder ("my-challenge/challenge.yaml") read like flat ones."""
    tops = {name.split("/", 1)[0] for name in files}
    if len(tops) == 1 and all("/" in name for name in files):
        return tops.pop()
    return ""


class Keys:
    """Typed access to a YAML mapping, collecting problems that name the file and key path."""

    def __init__(self, filename):
        self.filename = filename
        self.problems = []

    def problem(self, path, message):
        self.problems.append(f"{self.filename}: {path}: {message}")

    def get(self, mapping, path, key, kind, *, required=False, default=None, choices=None):
        """mapping[key] checked against kind ("str", "int", "float", "bool", "list", "dict",
        "datetime"); None (and a recorded problem) when missing or of the wrong type."""
        where = f"{path}.{key}" if path else key
        if not isinstance(mapping, dict) or key not in mapping or mapping[key] is None:
            if required:
                self.problem(where, "missing (required)")
            return default
        value = mapping[key]
        checked = _as(kind, value)
        if checked is WRONG:
            self.problem(where, f"expected {_KIND_NAMES[kind]}, got {_type_name(value)}")
            return default
        if choices is not None and checked not in choices:
            self.problem(where, f"must be one of {', '.join(map(str, choices))}")
            return default
        return checked

    def raise_if_any(self):
        if self.problems:
            raise BundleError(self.problems)


WRONG = object()
_KIND_NAMES = {"str": "text", "int": "a whole number", "float": "a number", "bool": "true or false",
               "list": "a list", "dict": "a mapping", "datetime": "a date and time (ISO 8601, e.g. 2027-01-31T23:59:00Z)"}


def _type_name(value):
    return {bool: "true/false", int: "a whole number", float: "a number", str: "text", list: "a list",
            dict: "a mapping"}.get(type(value), type(value).__name__)


def _as(kind, value):
    if kind == "str":
        return value if isinstance(value, str) else WRONG
    if kind == "int":
        return value if isinstance(value, int) and not isinstance(value, bool) else WRONG
    if kind == "float":
        return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else WRONG
    if kind == "bool":
        return value if isinstance(value, bool) else WRONG
    if kind == "list":
        return value if isinstance(value, list) else WRONG
    if kind == "dict":
        return value if isinstance(value, dict) else WRONG
    if kind == "datetime":
        return as_datetime(value)
    raise ValueError(kind)


def as_datetime(value):
    """YAML's own timestamps and dates, or ISO 8601 text; naive values are UTC."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime(value.year, value.month, value.day)
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            return WRONG
    else:
        return WRONG
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
