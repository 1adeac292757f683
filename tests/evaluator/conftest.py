import numpy as np
import pytest


@pytest.fixture
def write(tmp_path):
    """write(name, text_or_bytes) -> path in a temporary folder."""

    def _write(name, content):
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
        return path

    return _write


@pytest.fixture
def rng():
    return np.random.default_rng(12345)
