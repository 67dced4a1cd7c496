#!/usr/bin/env bash
# Run by Snakemake in the freshly created envs/gpu.yaml environment: the two packages whose own
# pins (torch < 2.3, numpy < 2) clash with the environment, installed without their dependencies.
set -euo pipefail
python -m pip install --no-deps insightface==2.1 facenet-pytorch==2.6.0
