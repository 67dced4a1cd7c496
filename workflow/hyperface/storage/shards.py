"""Shard arithmetic and the results layout, decided from the config alone so every node plans
the same DAG."""

from __future__ import annotations

import math
from pathlib import Path

SHARD_WIDTH = 5  # zero-padded digits in shard names: up to 99,999 shards
SHARD_PATTERN = rf"\d{{{SHARD_WIDTH}}}"


def n_shards(n_items: int, shard_size: int) -> int:
    if n_items < 0 or shard_size <= 0:
        raise ValueError(f"need n_items >= 0 and shard_size > 0, got {n_items}, {shard_size}")
    return math.ceil(n_items / shard_size)


def shard_name(index: int) -> str:
    return f"{index:0{SHARD_WIDTH}d}"


def shard_names(n_items: int, shard_size: int) -> list[str]:
    return [shard_name(i) for i in range(n_shards(n_items, shard_size))]


def shard_range(shard: str | int, n_items: int, shard_size: int) -> range:
    """The item indices of one shard; the last shard may be short."""
    index = int(shard)
    if not 0 <= index < n_shards(n_items, shard_size):
        raise ValueError(
            f"shard {shard} out of range for {n_items} items in shards of {shard_size}"
        )
    start = index * shard_size
    return range(start, min(start + shard_size, n_items))


def results_root(output: str | Path, levels: int) -> str:
    """The results root of a job whose output lies ``levels`` folders below it.

    Counted from the output path the job sees (storage plugins and shadow directories may prefix
    it), never searched for by name: a root called ``plots`` holds ``plots/plots/...``.
    """
    return str(Path(output).parents[levels])


def holdout_set(n_identities: int, holdout_identities: int) -> set[int]:
    """The identities kept out of training for the held-out verification benchmark: the last
    ones (a choice every node makes alike, from the config alone)."""
    return set(range(n_identities - holdout_identities, n_identities))


def default_results(configfiles: list[str | Path]) -> str:
    """The results root of a config that names none, from the config files given on the command
    line: ``results`` for the demo's config.yaml (or none), ``results-<name>`` when the first is
    ``<name>.yaml``; later files are overlays of it (a changed setting, not another dataset), so
    two configs run in one checkout never plan over each other's outputs."""
    name = Path(configfiles[0]).stem if configfiles else "config"
    return "results" if name == "config" else f"results-{name}"
