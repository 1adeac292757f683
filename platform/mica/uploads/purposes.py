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
    # receive(upload) -> the URL of what the file became; takes the file over (moves or
    # deletes it) or raises ValidationError naming what is wrong with it.
    receive: Callable


def register(name, *, admit, receive):
    PURPOSES[name] = Purpose(name, admit, receive)
