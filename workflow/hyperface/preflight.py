"""Before any job starts: every input that no rule makes is there and has the shape its loader
needs, and every problem is listed at once with the setting that names it and the fix.

Without this a missing benchmark or weights folder is found job by job, after hours of GPU work
upstream, and through a SLURM profile with retries each such job is submitted three times.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from hyperface.settings import Settings

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp"}
FETCH = "python scripts/fetch_weights.py --only"


@dataclass(frozen=True)
class External:
    """An input no rule makes: its path, the setting that names it, what its loader reads
    (a key of :data:`SHAPES`) and how to get it."""

    path: str
    setting: str
    kind: str
    fix: str = ""


def _files(*names: str) -> Callable[[Path], list[str]]:
    """A folder that must hold each of ``names`` (``a|b``: either)."""

    def check(path: Path) -> list[str]:
        if not path.is_dir():
            return ["is not a folder"]
        return [
            f"has no {name.replace('|', ' or ')}"
            for name in names
            if not any((path / option).exists() for option in name.split("|"))
        ]

    return check


def _file(suffixes: tuple[str, ...]) -> Callable[[Path], list[str]]:
    def check(path: Path) -> list[str]:
        if not path.is_file():
            return ["is not a file"]
        return [] if path.suffix in suffixes else [f"is not a {' or '.join(suffixes)} file"]

    return check


def _benchmark(path: Path) -> list[str]:
    """An insightface .bin: a pickle (protocol 2 or later) of the image bytes and the labels."""
    if not path.is_file():
        return ["is not a file"]
    with open(path, "rb") as f:
        head = f.read(2)
    return [] if len(head) == 2 and head[0] == 0x80 else ["is not an insightface .bin (a pickle)"]


def _images(path: Path) -> list[str]:
    if not path.is_dir():
        return ["is not a folder"]
    has_image = any(p.suffix.lower() in IMAGE_SUFFIXES for p in path.rglob("*") if p.is_file())
    return [] if has_image else ["holds no image (.jpg, .png, .webp, .bmp)"]


def _exists(path: Path) -> list[str]:
    return []


SHAPES: dict[str, Callable[[Path], list[str]]] = {
    "stylegan2": _file((".safetensors",)),
    "onnx": _file((".onnx",)),
    "ldm": _files("model_index.json"),
    "arc2face_unet": _files(
        "config.json", "diffusion_pytorch_model.safetensors|diffusion_pytorch_model.bin"
    ),
    "arc2face_encoder": _files("config.json", "model.safetensors|pytorch_model.bin"),
    "sd15": _files(
        "tokenizer/vocab.json",
        "tokenizer/merges.txt",
        "vae/config.json",
        "scheduler/scheduler_config.json",
    ),
    "benchmark": _benchmark,
    "images": _images,
    "recogniser": _file((".safetensors", ".onnx")),
    "any": _exists,
}


def problems(inputs: list[External]) -> list[str]:
    """One line per input that is missing or misshapen: setting, path, what is wrong, the fix."""
    found = []
    for item in inputs:
        path = Path(item.path)
        faults = SHAPES[item.kind](path) if path.exists() else ["is missing"]
        fix = f" ({item.fix})" if item.fix else ""
        found += [f"{item.setting}: {item.path} {fault}{fix}" for fault in faults]
    return found


def refusal(found: list[str], then: str = "nothing was started") -> str:
    """The message a run stops with before any job starts (``then``: what happens now)."""
    many = len(found) > 1
    return (
        f"{len(found)} input{'s' * many} that no rule makes {'are' if many else 'is'} missing or "
        f"unreadable; {then}:\n  " + "\n  ".join(found)
    )


GALLERY_KINDS = {
    "stylegan2": "stylegan2",
    "mobilestylegan": "any",
    "ldm": "ldm",
    "folder": "images",
}
EMBEDDER_KINDS = {"insightface": "onnx", "sface": "any", "facenet": "any"}


def named_inputs(s: Settings) -> list[External]:
    """Every model, benchmark and image folder the config names (the ones a rule builds too:
    the caller sets those aside), with the setting that names it, its shape and its fix."""
    g, e, gen, judge = s.gallery, s.embedder, s.generation, s.quality.judge
    arc2face = f"{FETCH} arc2face"
    found = [
        External(g.weights, "gallery.weights", GALLERY_KINDS[g.generator],
                 f"{FETCH} stylegan2" if g.generator == "stylegan2" else ""),
        External(e.weights, "embedder.weights", EMBEDDER_KINDS[e.backend],
                 arc2face if e.backend == "insightface" else ""),
    ]  # fmt: skip
    if gen.generator == "arc2face":
        found += [
            External(f"{gen.weights}/arc2face", "generation.weights", "arc2face_unet", arc2face),
            External(f"{gen.weights}/encoder", "generation.weights", "arc2face_encoder", arc2face),
            External(gen.base_model, "generation.base_model", "sd15", f"{FETCH} sd15"),
        ]  # fmt: skip
    else:  # MobileStyleGAN draws the identities from the gallery's own weights
        found.append(External(gen.weights, "generation.weights", GALLERY_KINDS[gen.generator]))
    if judge.backend:
        found += [External(judge.weights, "quality.judge.weights", "any"),
                  External(judge.detector, "quality.judge.detector", "any")]  # fmt: skip
    reference = s.leakage.reference
    if reference not in (None, "gallery"):
        kind = "benchmark" if reference.endswith(".bin") else "images"
        found.append(External(reference, "leakage.reference", kind))
    copy = "copy insightface's .bin there; scripts/fetch_weights.py --list says where from"
    found += [External(path, f"evaluation.benchmarks.{name}", "benchmark", copy)
              for name, path in s.evaluation.benchmarks.items()]  # fmt: skip
    found += [External(path, f"evaluation.models.{name}", "recogniser")
              for name, path in s.evaluation.models.items()]  # fmt: skip
    return found
