# `make demo` and `make test` both start from a fresh machine: they create .venv and install
# everything. torch is pinned and installed first so pip never resolves a bare "torch" (CUDA wheels).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test install clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	# torchvision pinned beside torch: LitData ([stream]) requires one, and an unpinned one would replace torch.
	$(PY) -m pip install --quiet torch==2.13.0 torchvision==0.28.0 -e ".[test,stream]"
	# ...and removed again: this CPU torch cannot load its compiled ops, and Lightning imports torchvision
	# whenever it is installed ("operator torchvision::nms does not exist"). LitData's streaming runs without it.
	$(PY) -m pip uninstall --quiet --yes torchvision
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/fineact demo

test: $(STAMP)
	$(PY) -m pytest -q -p no:cacheprovider tests

clean:
	rm -rf $(VENV) build dist src/*.egg-info
