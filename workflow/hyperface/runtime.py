"""What every rule's job sets up: its log file, its thread count, its device, progress bars."""

from __future__ import annotations

import contextlib
import logging
import signal
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TypeVar

import torch
from tqdm import tqdm

T = TypeVar("T")
log = logging.getLogger("hyperface")


def setup_job(log_path: str | Path | None, threads: int = 1) -> logging.Logger:
    """Send logging, warnings and progress bars to the rule's log file; cap torch's threads."""
    if log_path:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        stream = open(log_path, "a", buffering=1)  # noqa: SIM115 - lives as long as the job
        sys.stderr = stream
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        force=True,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.captureWarnings(True)
    torch.set_num_threads(max(1, int(threads)))
    return log


def save_checkpoint(state: dict, path: str | Path) -> None:
    """torch.save to a temporary file, then rename: a job killed mid-write leaves the old
    checkpoint."""
    path = Path(path)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(state, tmp)
    tmp.replace(path)


def pick_device(name: str | None = "auto") -> str:
    if name in (None, "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    return name


def chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def progress(items: Iterable[T], total: int | None = None, desc: str = "") -> Iterable[T]:
    """A tqdm bar on stderr (the rule's log), refreshed at most every 5 s."""
    return tqdm(items, total=total, desc=desc, file=sys.stderr, mininterval=5.0, ascii=True)


class Throughput:
    """The one-line summary each job ends with: items, seconds, items/s."""

    def __init__(self, what: str):
        self.what, self.t0, self.n = what, time.perf_counter(), 0

    def add(self, n: int) -> None:
        self.n += n

    def report(self) -> str:
        secs = time.perf_counter() - self.t0
        line = (
            f"{self.n} {self.what} in {secs:.1f} s ({self.n / max(secs, 1e-9):.2f} {self.what}/s)"
        )
        log.info(line)
        return line


class StopRequest:
    """Turns SIGTERM/SIGUSR1 (SLURM's warning before a time limit or preemption) into a flag.

    Long jobs poll ``requested`` between steps, write a checkpoint and exit; a rerun resumes.
    """

    def __init__(self, enabled: bool = True):
        self.requested = False
        self._old: dict[int, object] = {}
        if enabled:
            for sig in (signal.SIGTERM, signal.SIGUSR1):
                with contextlib.suppress(ValueError):  # not the main thread: no graceful stop
                    self._old[sig] = signal.signal(sig, self._handle)

    def _handle(self, signum, frame) -> None:  # noqa: ARG002 - signal handler signature
        self.requested = True

    def restore(self) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)
