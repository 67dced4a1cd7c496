"""Reading an output that is not what it should be: the error names the file and the fix.

pyarrow's own message ("Parquet magic bytes not found in footer") names no file, so a truncated
shard read by a job of fifty looks like a bug of that job. Every reader of a workflow output
goes through :func:`reading`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pyarrow as pa


class UnreadableOutput(RuntimeError):
    """A workflow output that exists but cannot be read (truncated, overwritten, not Parquet)."""


@contextmanager
def reading(path: str | Path) -> Iterator[None]:
    """Turn pyarrow's errors while reading ``path`` into one that names it and how to rebuild it."""
    try:
        yield
    except FileNotFoundError:
        raise
    except (pa.ArrowException, OSError) as err:
        raise UnreadableOutput(
            f"{path}: cannot be read as Parquet ({err}). It is a workflow output cut short or "
            "overwritten: delete it and run snakemake again to rebuild it (and what was made "
            "from it)"
        ) from err
