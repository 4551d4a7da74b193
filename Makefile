# The commands CI calls verbatim (.ci/run). `make help` lists them.
#
# Every install takes its third-party packages from the hashed lock with pip alone
# (requirements/*.txt, exported from uv.lock by `make lock`), then our own three
# distributions with --no-deps --no-build-isolation (setuptools itself comes, hashed, from
# requirements/build.txt). `make test` and `make demo` install whatever is missing first.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check
UV := $(VENV)/bin/uv
# The venv is (re)filled from the lock when it is missing or a lock file is newer than this.
INSTALLED := $(VENV)/.probefleet-installed
VERSION := $(shell sed -n 's/^version = "\(.*\)"$$/\1/p' pyproject.toml)
DIST := dist/probefleet-$(VERSION)
DEBIAN_PACKAGES = mosquitto mosquitto-clients influxdb nginx-light iproute2 iputils-ping dnsmasq-base curl openssl shellcheck chromium nftables dbus python3-dbus python3-dbusmock poppler-utils gpsd gpsd-clients openssh-server openssh-client qrencode
# Unit tests and goldens: no service, no namespace (tests/fixtures.py marks every test that
# uses a real-service fixture `integration`), none of the few slow ones.
FAST = not integration and not netns and not slow
PYTEST_ARGS ?=

.PHONY: help system-deps install develop test test-fast check lint mypy lock lock-check format \
	schema schema-check samples samples-check grafana grafana-check dist bench clean demo

help:
	@echo "make test         the whole suite against real Mosquitto, InfluxDB, nginx; first installs"
	@echo "                  what is missing: the Debian packages (as root) and the venv"
	@echo "make test-fast    unit tests and goldens only: no service, no Debian package, < 60 s"
	@echo "make check        lint + mypy + schema-, grafana-, samples- and lock-check (CI runs it)"
	@echo "make lint         ruff check and ruff format --check"
	@echo "make mypy         mypy strict on the four packages, grafana, enrol.py, demo and the tests"
	@echo "make install      $(VENV) from the hashed lock, with our three distributions editable"
	@echo "make develop      re-link our code into $(VENV) if a module was added (make test does)"
	@echo "make system-deps  the Debian packages the tests start, when missing (root: apt-get)"
	@echo "make lock         re-resolve uv.lock, re-export requirements/*.txt (after a pyproject edit)"
	@echo "make lock-check   fail when uv.lock or requirements/*.txt do not match the pyprojects"
	@echo "make dist         $(DIST)/: the probe's two wheels, agent.txt, install.sh (a USB stick)"
	@echo "make schema       regenerate schema/*.schema.json (schema-check: fail when stale)"
	@echo "make samples      assemble config/agent.sample.toml from kinds/*/sample.toml (samples-check)"
	@echo "make grafana      regenerate grafana/provisioning (grafana-check: fail when stale)"
	@echo "make format       ruff format and ruff check --fix"
	@echo "make bench        run the benchmarks in bench/ (see bench/README.md)"
	@echo "make demo         run a simulated province here, live (DEMO_ARGS=--help for options)"
	@echo "VENV=DIR uses another venv than .venv; PYTEST_ARGS='-k x' narrows test and test-fast."
	@echo "Pre-commit hooks (.pre-commit-config.yaml): $(VENV)/bin/pre-commit install"

# --- installing ---------------------------------------------------------------------------

system-deps:
	@scripts/system-deps.sh $(DEBIAN_PACKAGES)

$(INSTALLED): requirements/build.txt requirements/dev.txt
	@test -x $(PY) || { echo "python3 -m venv $(VENV)" && python3 -m venv $(VENV); }
	$(PIP) install --quiet --require-hashes -r requirements/build.txt
	$(PIP) install --quiet --require-hashes -r requirements/dev.txt
	@touch $@

install: $(INSTALLED) develop

# Editable, strict mode (links to each module: mypy follows them). Re-run only when the
# set of modules or a pyproject.toml changed: setuptools rebuilds the link tree from empty,
# which would break imports in a test run going on at the same time in this checkout.
develop: $(INSTALLED)
	@scripts/develop.sh $(VENV)

# --- testing and checking -----------------------------------------------------------------

# pytest exits 5 when it collects nothing, so an empty run fails here too.
test: system-deps install
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast: install
	$(PY) -m pytest -m "$(FAST)" $(PYTEST_ARGS)

check: install lint mypy schema-check grafana-check samples-check lock-check

lint: develop
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

# Strict: the four packages by import name (pyproject.toml), then the scripts beside them,
# then the tests. A kind's tests/ folder has no __init__.py (pytest imports its helpers by
# their bare names, unique across the suite), so mypy gets those folders on its path.
MYPY_TEST_PATH = $(subst $(eval) ,:,$(wildcard kinds/*/tests)):bench
mypy: develop
	$(PY) -m mypy
	$(PY) -m mypy --strict grafana deploy/central/enrol.py deploy/central/broker_limits.py demo
	MYPYPATH=$(MYPY_TEST_PATH) $(PY) -m mypy --strict --explicit-package-bases \
		tests kinds/*/tests bench

format: install
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

# --- the lock -----------------------------------------------------------------------------

# After changing a dependency range or a dev pin in a pyproject.toml: re-resolve, re-export.
# Pins move only when asked: make lock LOCK_ARGS='--upgrade-package httpx' (or --upgrade).
LOCK_ARGS ?=
lock: $(INSTALLED)
	@scripts/lock.sh $(UV) $(LOCK_ARGS)

lock-check: $(INSTALLED)
	@scripts/lock.sh $(UV) --check

# --- generated files ----------------------------------------------------------------------

schema: develop
	$(PY) -m probefleet.core.wire schema

schema-check: develop
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	$(PY) -m probefleet.core.wire "$$tmp" >/dev/null && \
	{ diff -r -u schema "$$tmp" >&2 || { echo "schema/ is stale: run \`make schema\` and commit it" >&2; exit 1; }; }

samples: develop
	$(PY) -m probefleet.kinds.samples config/agent.sample.toml

samples-check: develop
	$(PY) -m probefleet.kinds.samples config/agent.sample.toml --check

grafana: develop
	$(PY) -m grafana.build

grafana-check: develop
	$(PY) -m grafana.build --check

# --- a release for probes -----------------------------------------------------------------

# What a technician copies to a USB stick: `sudo deploy/agent/install.sh --probe-id ...`
# run from it installs these wheels and their hashed dependencies (see deploy/agent/README.md).
dist: $(INSTALLED)
	scripts/dist.sh $(PY) $(DIST)
	@echo "$(DIST)/:" && cd $(DIST) && find . -type f | sort

# --- the rest -----------------------------------------------------------------------------

bench: install
	@ls bench/*.py >/dev/null 2>&1 || { echo "no benchmarks yet: see bench/README.md"; exit 0; }
	@for b in bench/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) build agent/build collector/build *.egg-info */*.egg-info dist \
		.pytest_cache .mypy_cache .ruff_cache

# The quickstart: demo.preflight installs the services the demo needs (as root; otherwise
# it prints the command), then the venv, then the simulated province.
DEMO_ARGS ?=
demo:
	@python3 -m demo.preflight
	@$(MAKE) --no-print-directory install
	$(PY) -m demo $(DEMO_ARGS)
