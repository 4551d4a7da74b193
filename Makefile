# The commands CI calls verbatim. `make help` lists them.
PY ?= .venv/bin/python
DEBIAN_PACKAGES = mosquitto mosquitto-clients influxdb nginx-light iproute2 iputils-ping dnsmasq-base curl openssl shellcheck chromium

.PHONY: help install system-deps test check format schema bench clean grafana demo

help:
	@echo "make install      create .venv with the agent, collector and dev dependencies"
	@echo "make system-deps  (root) apt-get install the services the tests start: $(DEBIAN_PACKAGES)"
	@echo "make test         run the whole test suite (real Mosquitto, InfluxDB, nginx)"
	@echo "make check        ruff lint + format check, mypy strict, schema up to date"
	@echo "make schema       regenerate schema/*.schema.json from core/wire.py"
	@echo "make bench        run the benchmarks in bench/ (see bench/README.md)"
	@echo "make grafana      regenerate grafana/provisioning from grafana/*.py and the targets"
	@echo "make demo         run a simulated province here, live (DEMO_ARGS=--help for options)"

install:
	python3 -m venv .venv
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[agent,collector,dev]'

system-deps:
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(DEBIAN_PACKAGES)

# pytest exits 5 when it collects nothing, so an empty run fails here too.
test:
	$(PY) -m pytest

check:
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy
	$(PY) -m mypy --strict grafana deploy/central/enrol.py demo
	$(PY) -m grafana.build --check

format:
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

grafana:
	$(PY) -m grafana.build

schema:
	$(PY) -m probefleet.core.wire schema

bench:
	@ls bench/*.py >/dev/null 2>&1 || { echo "no benchmarks yet: see bench/README.md"; exit 0; }
	@for b in bench/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf .venv build *.egg-info .pytest_cache .mypy_cache .ruff_cache

# The quickstart: installs what is missing (as root), then runs the simulated province.
DEMO_ARGS ?=
demo:
	@python3 -m demo.preflight
	@test -x $(PY) || $(MAKE) install
	$(PY) -m demo $(DEMO_ARGS)
