# Two commands do everything on a fresh machine: `make demo` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
# platform/ is a source folder on the import path (not a package: it would shadow the stdlib's platform).
export PYTHONPATH := $(CURDIR)/platform:$(CURDIR)

TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/mica
TEST_BROKER_URL ?= redis://127.0.0.1:6379/9
RABBITMQ_BROKER_URL ?= amqp://guest:guest@127.0.0.1:5672//

# The reader's viewer: Cornerstone3D from npm, bundled with esbuild into the annotations app.
VIEWER_BUNDLE := platform/mica/annotations/static/annotations/viewer/viewer.js

.PHONY: demo test test-rabbitmq venv services viewer clean

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $@

viewer: $(VIEWER_BUNDLE)

$(VIEWER_BUNDLE): viewer/package.json viewer/package-lock.json viewer/build.mjs $(wildcard viewer/src/*.js)
	scripts/services.sh node
	cd viewer && npm ci --no-audit --no-fund --loglevel=error && node build.mjs

demo: venv viewer
	DEBUG=1 $(BIN)/python manage.py migrate --noinput
	DEBUG=1 $(BIN)/python manage.py seed_demo
	DEBUG=1 BIN=$(BIN) scripts/serve-demo.sh

services:
	scripts/services.sh

test: venv services viewer
	@# pytest exits 5 when a selection collects no test: say so instead of failing the build.
	DATABASE_URL=$(TEST_DATABASE_URL) CELERY_BROKER_URL=$(TEST_BROKER_URL) SECRET_KEY=mica-tests \
	  $(BIN)/pytest $(PYTEST_ARGS) || { rc=$$?; [ $$rc -eq 5 ] && echo "no tests collected"; [ $$rc -eq 5 ]; }
	@if [ -z "$(PYTEST_ARGS)" ] && $(BIN)/python -c "import socket; socket.create_connection(('127.0.0.1', 5672), 2)" 2>/dev/null; \
	  then $(MAKE) --no-print-directory test-rabbitmq; else echo "RabbitMQ is not running: its broker tests were skipped"; fi

# The tests that talk to the broker, again on RabbitMQ (real consumer acknowledgements).
test-rabbitmq: venv
	DATABASE_URL=$(TEST_DATABASE_URL) CELERY_BROKER_URL=$(RABBITMQ_BROKER_URL) SECRET_KEY=mica-tests \
	  $(BIN)/pytest tests/site/test_worker.py tests/site/test_evaluations.py

clean:
	rm -rf $(VENV) var viewer/node_modules $(dir $(VIEWER_BUNDLE))
