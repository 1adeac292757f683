"""What a finished upload is for: the registry that the tus views call.

A feature that takes large files registers a purpose once (in its AppConfig.ready): `admit`
is asked when an upload is created (who may send what, and how large) and `receive` is handed
the finished file. The uploads app never knows what a file means.
"""

from dataclasses import dataclass
from typing import Callable

PURPOSES = {}


@dataclass(frozen=True)
class Purpose:
    name: str
    # admit(user, target: dict) -> the largest size in bytes this user may send for this
    # target; raises ValidationError (a bad target) or PermissionDenied (not theirs to send).
    admit: Callable
    # receive(upload) -> the URL of what the file became, or ValidationError naming what is
    # wrong with it. `with upload.joined() as path:` gives the whole file as a local path, which
    # receive may move into storage (mica.uploads.files.store); the parts are removed after.
    receive: Callable


def register(name, *, admit, receive):
    PURPOSES[name] = Purpose(name, admit, receive)
