# cxrviz: `make run` sets up, builds the default artifact if missing, and serves the app;
# `make test` sets up and runs the tests. Both create .venv on first use.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
DATASET ?= $(firstword $(wildcard ../shared/data/covid-chestxray-dataset data/covid-chestxray-dataset) data/covid-chestxray-dataset)
WEIGHTS ?= densenet121-res224-all
ifeq ($(WEIGHTS),random)
ARTIFACT ?= artifacts/covid-random
else
ARTIFACT ?= artifacts/covid
endif
HOST ?= 127.0.0.1
PORT ?= 8050
PYTEST_ARGS ?=

.PHONY: run test artifact setup setup-ray browser bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

# Ray (optional, for --engine ray): the tests install it so that CI runs the Ray tests.
setup-ray: $(VENV)/.installed-ray

$(VENV)/.installed-ray: $(VENV)/.installed requirements-ray.txt
	$(PY) -m pip install --quiet -r requirements-ray.txt
	touch $@

artifact: setup
	@if [ -f "$(ARTIFACT)/manifest.json" ]; then \
	  echo "artifact $(ARTIFACT) exists (delete it or run python -m precompute to rebuild)"; \
	elif [ ! -f "$(DATASET)/metadata.csv" ]; then \
	  echo "No dataset at $(DATASET)."; \
	  echo "Get the COVID-19 image data collection:"; \
	  echo "    git clone https://github.com/ieee8023/covid-chestxray-dataset data/covid-chestxray-dataset"; \
	  echo "then run 'make run' again (or pass DATASET=/path/to/covid-chestxray-dataset)."; \
	  exit 3; \
	else \
	  $(PY) -m precompute --dataset "$(DATASET)" --out "$(ARTIFACT)" --weights "$(WEIGHTS)" || { \
	    rc=$$?; [ $$rc -eq 4 ] && echo "With make: make run WEIGHTS=/path/to/weights.pt, or WEIGHTS=random for an untrained demo."; \
	    exit $$rc; }; \
	fi

run: artifact
	$(PY) app.py --artifact "$(ARTIFACT)" --host $(HOST) --port $(PORT)

# Browser tests drive Debian's chromium through chromedriver (no browser downloads).
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || { \
	  echo "installing Debian's chromium and chromium-driver (browser tests)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; }

test: setup setup-ray browser
	$(PY) -m pytest -q --headless --durations=25 $(PYTEST_ARGS) tests

bench: setup
	$(PY) benchmarks/precompute.py

clean:
	rm -rf artifacts/.cache
