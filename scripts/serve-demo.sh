#!/usr/bin/env bash
# Serves the demo: a Celery worker (all queues, with the periodic sweep) and the web site.
set -euo pipefail
BIN=${BIN:-.venv/bin}
VAR_DIR=${MICA_VAR_DIR:-var}
mkdir -p "$VAR_DIR"
"$BIN/celery" -A config worker -B -Q ingest,cpu,gpu --concurrency 2 --loglevel WARNING \
  --schedule "$VAR_DIR/celerybeat-schedule" &
worker=$!
trap 'kill $worker 2>/dev/null; wait $worker 2>/dev/null' EXIT INT TERM
echo "Mica demo: http://127.0.0.1:8000 (Ctrl-C stops the site and its worker)"
"$BIN/python" manage.py runserver 127.0.0.1:8000
