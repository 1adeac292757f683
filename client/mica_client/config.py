"""Where the client keeps the site's address and your API token: a JSON file readable by you alone."""

import json
import os
from pathlib import Path


def config_path():
    """$MICA_CONFIG, else $XDG_CONFIG_HOME/mica/config.json (~/.config/mica/config.json)."""
    if os.environ.get("MICA_CONFIG"):
        return Path(os.environ["MICA_CONFIG"])
    base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "mica" / "config.json"


def load():
    """The stored settings, with $MICA_URL and $MICA_TOKEN taking precedence ({} when none)."""
    path = config_path()
    stored = json.loads(path.read_text()) if path.is_file() else {}
    for key in ("url", "token"):
        if os.environ.get(f"MICA_{key.upper()}"):
            stored[key] = os.environ[f"MICA_{key.upper()}"]
    return stored


def save(settings):
    """Writes the file with mode 0600 from its creation on, so the token is never readable by others."""
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temporary = path.with_name(path.name + ".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        json.dump(settings, handle, indent=2)
    os.chmod(temporary, 0o600)  # an older file of that name may have had a wider mode
    os.replace(temporary, path)
    return path


def forget():
    path = config_path()
    if path.exists():
        path.unlink()
