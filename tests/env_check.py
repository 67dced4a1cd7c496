"""What each conda environment must provide: the modules its rules import, found statically.

For every rule: its ``conda:`` env file and its ``script:``; the script's imports and, through
every ``hyperface`` module it reaches, theirs (function-level imports included: lazily imported
backends count). Third-party top-level modules are mapped to the distributions that provide them.

    python -m tests.env_check            # build each env with pip in a fresh venv and import
                                         # every module its rules need (CI's `make check-envs`)

No conda channel is reachable where this project is developed, so the env files are checked
this way: their pip package lists (and post-deploy scripts) installed into fresh virtual
environments, then every rule's modules imported there and the tiny models loaded.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import tempfile
from functools import cache
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "workflow" / "hyperface"


def rules() -> list[tuple[str, Path, Path]]:
    """(rule, env file, script) for every rule of the workflow."""
    found = []
    for smk in sorted((REPO / "workflow" / "rules").glob("*.smk")):
        for block in re.split(r"^rule ", smk.read_text(), flags=re.M)[1:]:
            name = block.split(":", 1)[0].strip()
            env = re.search(r'conda:\s*\n\s*"([^"]+)"', block)
            script = re.search(r'script:\s*\n\s*"([^"]+)"', block)
            if env and script:
                found.append(
                    (
                        name,
                        (smk.parent / env.group(1)).resolve(),
                        (smk.parent / script.group(1)).resolve(),
                    )
                )
    return found


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    return names


def _module_file(name: str) -> Path | None:
    parts = name.split(".")[1:]
    base = PACKAGE.joinpath(*parts) if parts else PACKAGE
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


@cache
def closure(path: Path) -> frozenset[str]:
    """Third-party top-level modules imported by ``path`` and the hyperface modules it reaches."""
    third_party, todo, seen = set(), [path], set()
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        for name in _imports(current):
            top = name.split(".")[0]
            if top == "hyperface":
                module = _module_file(name)
                if module:
                    todo.append(module)
            elif top not in sys.stdlib_module_names and top not in ("__future__", "snakemake"):
                third_party.add(top)
    return frozenset(third_party)


def distributions(modules: set[str]) -> dict[str, str]:
    """Top-level module -> the distribution that provides it (as installed here)."""
    import importlib.metadata as md

    provided = md.packages_distributions()
    return {m: normalise(provided[m][0]) for m in modules if m in provided}


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def env_packages(env: Path) -> tuple[list[str], list[str]]:
    """(pip requirements, requirements its post-deploy script installs) of an env file."""
    spec = yaml.safe_load(env.read_text())
    pip = next(d["pip"] for d in spec["dependencies"] if isinstance(d, dict) and "pip" in d)
    if any(str(req).startswith("-") for req in pip):
        raise ValueError(
            f"{env}: an option in the pip list ({pip}); conda passes it to pip as a file"
        )
    post = env.with_name(env.name.replace(".yaml", ".post-deploy.sh"))
    extra = []
    if post.exists():
        for line in post.read_text().splitlines():
            if "pip install" in line:
                extra += [
                    w for w in line.split("pip install", 1)[1].split() if not w.startswith("-")
                ]
    return [str(r) for r in pip], extra


def requirement_name(req: str) -> str:
    return normalise(re.split(r"[<>=!~\[ ;]", req, maxsplit=1)[0])


# distributions that provide the same modules as the one installed here (a GPU build)
ALTERNATIVES = {"onnxruntime": {"onnxruntime-gpu"}}


def missing_per_env() -> dict[str, dict[str, list[str]]]:
    """env file -> {distribution: [rules needing it]} for what an env does not list."""
    out: dict[str, dict[str, list[str]]] = {}
    for rule, env, script in rules():
        pip, extra = env_packages(env)
        listed = {requirement_name(r) for r in pip + extra}
        for module, dist in distributions(set(closure(script))).items():
            if dist not in listed and not ALTERNATIVES.get(dist, set()) & listed:
                out.setdefault(env.name, {}).setdefault(f"{dist} (import {module})", []).append(
                    rule
                )
    return out


SMOKE = {  # beyond importing: load the tiny models the way the rules do
    "gpu.yaml": """
import tempfile, pathlib
from hyperface.generators.tiny import write_arcface_onnx
from hyperface.recognition.embedders import load_embedder
from hyperface.recognition.alignment import Aligner
import numpy as np
path = pathlib.Path(tempfile.mkdtemp()) / "arcface.onnx"
write_arcface_onnx(path)
emb = load_embedder("insightface", path).embed([np.zeros((112, 112, 3), np.uint8)])
assert emb.shape == (1, 512)
Aligner().align([np.zeros((128, 128, 3), np.uint8)])
from hyperface.generators.packaged import PACKAGED, copy_packaged
from hyperface.recognition.embedders import SFaceEmbedder
from hyperface.quality.judge import DlibJudge, YuNetDetector
from hyperface.generators.mobilestylegan import MobileStyleGANGallery
root = pathlib.Path(tempfile.mkdtemp())
folders = {name: copy_packaged(name, root / name) for name in PACKAGED}
face = MobileStyleGANGallery(folders["mobilestylegan"]).generate([0], seed=0)[0]
assert face.shape == (1024, 1024, 3)
assert SFaceEmbedder(folders["sface"]).embed([face[::8, ::8][:112, :112]]).shape == (1, 128)
DlibJudge(folders["dlib"]), YuNetDetector(folders["yunet"]).detect(face)
print("gpu env: tiny ArcFace through insightface and MTCNN, and the packaged real models, "
      "load and run")
""",
    "tables.yaml": """
import matplotlib
matplotlib.use("Agg")
print("tables env: matplotlib", matplotlib.__version__)
""",
}


def build_and_import(env: Path, scripts: list[Path], workdir: Path) -> None:
    """Create a venv from the env's pip list and post-deploy script; import what its rules need."""
    venv = workdir / env.stem
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip, _ = env_packages(env)
    py = venv / "bin" / "python"
    subprocess.run([str(py), "-m", "pip", "install", "--quiet", *pip], check=True)
    post = env.with_name(env.name.replace(".yaml", ".post-deploy.sh"))
    if post.exists():
        subprocess.run(
            ["bash", str(post)],
            check=True,
            env={"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": str(workdir)},
        )
    modules = sorted(set().union(*(closure(s) for s in scripts)))
    needed = sorted(_reached_modules(scripts))
    code = "\n".join([f"import {m}" for m in modules + needed]) + "\n" + SMOKE.get(env.name, "")
    subprocess.run(
        [str(py), "-c", f"import sys; sys.path.insert(0, {str(PACKAGE.parent)!r})\n{code}"],
        check=True,
        cwd=workdir,
    )
    print(
        f"{env.name}: {len(pip)} pip requirements; imported {', '.join(modules)} and {len(needed)} "
        "hyperface modules"
    )


def _reached_modules(scripts: list[Path]) -> set[str]:
    """The hyperface modules the scripts import (importing them runs their module-level imports)."""
    return {
        name
        for script in scripts
        for name in _imports(script)
        if name.startswith("hyperface.") and _module_file(name)
    }


def main() -> None:
    missing = missing_per_env()
    if missing:
        raise SystemExit(f"env files lack packages their rules import: {missing}")
    by_env: dict[Path, list[Path]] = {}
    for _, env, script in rules():
        by_env.setdefault(env, []).append(script)
    with tempfile.TemporaryDirectory() as tmp:
        for env, scripts in sorted(by_env.items()):
            build_and_import(env, scripts, Path(tmp))


if __name__ == "__main__":
    main()
