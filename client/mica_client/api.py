"""The site's REST API (``/api/v1/``) as Python calls; every failure is a `MicaError` with its exit code."""

import os
import uuid

import requests

TIMEOUT = 60  # seconds without a byte from the server


class ExitCode:
    """The exit codes of `mica`, documented in README.md."""

    OK = 0
    ERROR = 1  # the server refused the request (400) or could not be reached
    USAGE = 2  # wrong arguments (argparse's own code)
    AUTH = 3  # not logged in, or the token was refused or has expired
    DENIED = 4  # not allowed (403) or not found (404): e.g. not registered for the challenge
    INVALID = 5  # the predictions file has problems (found locally or by the site)
    FAILED = 6  # the site could not score the submission
    TIMEOUT = 7  # the score did not come within --timeout
    MISSING = 8  # `mica validate` needs Mica's evaluator package, which is not installed


class MicaError(Exception):
    def __init__(self, message, code=ExitCode.ERROR):
        super().__init__(message)
        self.code = code


def _problem_text(response):
    """The site's explanation: DRF answers {"detail": ...} or {field: [problems]}."""
    try:
        body = response.json()
    except ValueError:
        return response.reason or f"HTTP {response.status_code}"
    if isinstance(body, dict):
        if "detail" in body and len(body) == 1:
            return str(body["detail"])
        lines = []
        for field, problems in body.items():
            for problem in problems if isinstance(problems, list) else [problems]:
                lines.append(f"{field}: {problem}")
        return "\n".join(lines)
    return str(body)


class Client:
    def __init__(self, url, token=None):
        if not url:
            raise MicaError("No site: run `mica login --url https://…` first (or set MICA_URL).", ExitCode.AUTH)
        self.url = url.rstrip("/")
        self.session = requests.Session()
        self.session.headers["User-Agent"] = "mica-client"
        if token:
            self.session.headers["Authorization"] = f"Token {token}"

    def request(self, method, path, *, expect=(200,), **kwargs):
        try:
            response = self.session.request(method, f"{self.url}/api/v1/{path.lstrip('/')}", timeout=TIMEOUT,
                                            **kwargs)
        except requests.RequestException as error:
            raise MicaError(f"Cannot reach {self.url}: {error.__class__.__name__}") from None
        if response.status_code in expect:
            return response
        message = _problem_text(response)
        if response.status_code == 401:
            raise MicaError(f"{message} (log in again: mica login)", ExitCode.AUTH)
        if response.status_code in (403, 404):
            raise MicaError(message, ExitCode.DENIED)
        raise MicaError(message)

    def json(self, method, path, **kwargs):
        return self.request(method, path, **kwargs).json()

    # -- the calls --------------------------------------------------------------------------
    def issue_token(self, username, password):
        response = self.request("POST", "auth/token/", data={"username": username, "password": password},
                                expect=(200, 400))
        if response.status_code == 400:  # the site refused the username and password
            raise MicaError(_problem_text(response), ExitCode.AUTH)
        return response.json()

    def revoke_token(self):
        self.request("DELETE", "auth/token/", expect=(204,))

    def challenges(self):
        return self._all_pages("challenges/")

    def challenge(self, slug):
        return self.json("GET", f"challenges/{slug}/")

    def case_ids(self, phase_id):
        return self.json("GET", f"phases/{phase_id}/case-ids/")

    def releases(self, slug):
        return self.json("GET", "releases/", params={"challenge": slug})

    def submit(self, phase_id, path, comment="", progress=None):
        upload = MultipartFile({"phase": str(phase_id), "comment": comment}, "predictions", path, progress)
        with upload:
            return self.json("POST", "submissions/", data=upload, expect=(201,),
                             headers={"Content-Type": upload.content_type})

    def submission(self, submission_id):
        return self.json("GET", f"submissions/{submission_id}/")

    def submissions(self):
        return self._all_pages("submissions/")

    def leaderboard(self, phase_id, private=False):
        return self.json("GET", f"leaderboards/{phase_id}/" + ("private/" if private else ""))

    def _all_pages(self, path):
        rows, page = [], 1
        while True:
            body = self.json("GET", path, params={"page": page})
            if isinstance(body, list):
                return body
            rows += body["results"]
            if not body.get("next"):
                return rows
            page += 1


class MultipartFile:
    """A multipart/form-data body of known length, read as it is sent, so that a large
    predictions file is never held in memory and the progress bar follows the bytes sent."""

    def __init__(self, fields, file_field, path, progress=None):
        boundary = uuid.uuid4().hex
        self.content_type = f"multipart/form-data; boundary={boundary}"
        head = b"".join(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
            for name, value in fields.items()
        )
        filename = os.path.basename(path).replace('"', "")
        head += (f'--{boundary}\r\nContent-Disposition: form-data; name="{file_field}"; filename="{filename}"\r\n'
                 "Content-Type: application/octet-stream\r\n\r\n").encode()
        self._parts = [head, None, f"\r\n--{boundary}--\r\n".encode()]
        self._file = open(path, "rb")
        self._length = len(head) + os.path.getsize(path) + len(self._parts[2])
        self._index, self._progress = 0, progress

    def __len__(self):
        return self._length

    def read(self, size=-1):
        size = self._length if size is None or size < 0 else size
        out = b""
        while len(out) < size and self._index < len(self._parts):
            part = self._parts[self._index]
            if part is None:
                chunk = self._file.read(size - len(out))
                if not chunk:
                    self._index += 1
                    continue
            else:
                chunk, self._parts[self._index] = part[:size - len(out)], part[size - len(out):]
                if not self._parts[self._index]:
                    self._index += 1
            out += chunk
        if self._progress is not None:
            self._progress.update(len(out))
        return out

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._file.close()
