"""Random streams derived from (seed, stage, item index), never from process order.

Every random draw in the workflow comes from a stream named by what it is for, so identity 4711's
images are the same whatever the sharding, and re-running one shard reproduces it bit for bit.
"""

from __future__ import annotations

import hashlib

import numpy as np
import torch


def derive_seed(seed: int, stage: str, *index: int) -> int:
    """A 63-bit seed that depends only on the base seed, the stage name and the item index."""
    key = "/".join([str(int(seed)), stage, *(str(int(i)) for i in index)])
    digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & ((1 << 63) - 1)


def torch_generator(seed: int, stage: str, *index: int) -> torch.Generator:
    """A CPU torch generator for one item; draws are made on the CPU and moved, so they match on
    every device."""
    gen = torch.Generator(device="cpu")
    gen.manual_seed(derive_seed(seed, stage, *index))
    return gen


def numpy_rng(seed: int, stage: str, *index: int) -> np.random.Generator:
    return np.random.default_rng(derive_seed(seed, stage, *index))
