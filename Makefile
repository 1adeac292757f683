# Two commands do everything on a fresh machine: `make demo` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
# platform/ is a source folder on the import path (not a package: it would shadow the stdlib's platform).
export PYTHONPATH := $(CURDIR)/platform:$(CURDIR)

TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/mica
TEST_BROKER_URL ?= redis://127.0.0.1:6379/9

.PHONY: demo test venv services clean

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $@

demo: venv
	DEBUG=1 $(BIN)/python manage.py migrate --noinput
	DEBUG=1 $(BIN)/python manage.py seed_demo
	DEBUG=1 BIN=$(BIN) scripts/serve-demo.sh

services:
	scripts/services.sh

test: venv services
	@# pytest exits 5 when a selection collects no test: say so instead of failing the build.
	DATABASE_URL=$(TEST_DATABASE_URL) CELERY_BROKER_URL=$(TEST_BROKER_URL) SECRET_KEY=mica-tests \
	  $(BIN)/pytest $(PYTEST_ARGS) || { rc=$$?; [ $$rc -eq 5 ] && echo "no tests collected"; [ $$rc -eq 5 ]; }

clean:
	rm -rf $(VENV) var
