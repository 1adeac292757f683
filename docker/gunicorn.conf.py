"""gunicorn settings for Mica's web container (`gunicorn -c docker/gunicorn.conf.py config.wsgi`).

Each value can be changed from the environment (the README's configuration table lists them).
"""

import os

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", "3"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "120"))
# A worker is replaced after this many requests (plus up to the jitter, so that the workers are
# not all replaced at once): whatever memory requests left behind (fragmented Python objects,
# the C allocator's free lists; see MALLOC_MMAP_THRESHOLD_ in the Dockerfile) goes back to the
# system with the process.
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "200"))
max_requests_jitter = int(os.environ.get("GUNICORN_MAX_REQUESTS_JITTER", "50"))
# Heartbeat files in memory, not on the container's overlay file system (gunicorn's advice for Docker).
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
accesslog = "-"
