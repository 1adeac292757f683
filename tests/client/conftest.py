"""The client is tested against a live test server: the standing users and challenge of the
site's tests, and the client package put on the path as `pip install ./client` would."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "client"))

from tests.site.conftest import *  # noqa: E402,F401,F403  (the standing users and challenge)
