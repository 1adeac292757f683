"""Settings for the test suite: the site's own settings with the test services as defaults.

Real PostgreSQL and Redis (127.0.0.1), as in production; files under a temporary folder that
worker processes started by a test share through MICA_VAR_DIR.
"""

import os
import tempfile
from pathlib import Path

os.environ.setdefault("SECRET_KEY", "mica-tests")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/mica")
os.environ.setdefault("CELERY_BROKER_URL", "redis://127.0.0.1:6379/9")
os.environ.setdefault("MICA_VAR_DIR", tempfile.mkdtemp(prefix="mica-tests-"))
os.environ.setdefault("SECURE_SSL_REDIRECT", "0")
os.environ.setdefault("ALLOWED_HOSTS", "testserver,localhost,127.0.0.1")
# Fewer bootstrap samples behind the boards' intervals and rank stability: the tests check what
# is stored and shown, and the evaluator's own tests check the statistics at full size.
os.environ.setdefault("MICA_INTERVAL_RESAMPLES", "200")
os.environ.setdefault("MICA_RANKING_RESAMPLES", "200")

from config.settings import *  # noqa: E402,F403

STORAGES["staticfiles"] = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}  # noqa: F405
# A fast hash: the suite creates many users, and password strength is Django's own concern.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
Path(STATIC_ROOT).mkdir(parents=True, exist_ok=True)  # noqa: F405  (WhiteNoise warns when it is missing)
