"""Safe, checked loading of model files: safetensors, ONNX or ``torch.load(weights_only=True)``.

A checkpoint that loads with tensors missing is worse than one that fails: every loader here
raises, naming the path and what was expected, instead of leaving weights randomly initialised.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch


class WeightsError(ValueError):
    """A model file is missing, corrupt or does not match the architecture."""


def require(path: str | Path, what: str) -> Path:
    path = Path(path)
    if not path.exists():
        raise WeightsError(f"{path}: missing {what}")
    return path


def load_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Tensors from a .safetensors file or a torch file, without unpickling arbitrary objects."""
    path = require(path, "weights file")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # corrupt or not a weights file: say which file
        raise WeightsError(f"{path}: cannot read weights ({type(err).__name__}: {err})") from err


def load_strict(
    module: torch.nn.Module, state: dict[str, torch.Tensor], source: str | Path
) -> None:
    """Load every tensor of ``module`` from ``state``; any missing, extra or misshapen key is an
    error."""
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = [
        f"{k}: file {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
        for k in sorted(set(own) & set(state))
        if state[k].shape != own[k].shape
    ]
    if missing or unexpected or shapes:
        raise WeightsError(
            f"{source}: weights do not match the architecture; missing "
            f"{missing[:5]}{'...' if len(missing) > 5 else ''} ({len(missing)}), "
            f"unexpected {unexpected[:5]} ({len(unexpected)}), shapes {shapes[:5]}"
        )
    module.load_state_dict(state, strict=True)


def load_diffusers(cls: Any, folder: str | Path, **kwargs: Any) -> Any:
    """``cls.from_pretrained(folder)`` that fails on missing or misshapen tensors instead of
    warning."""
    folder = require(folder, f"{cls.__name__} folder")
    require(folder / "config.json", f"{cls.__name__} config.json")
    if not any(folder.glob("diffusion_pytorch_model*")):
        raise WeightsError(
            f"{folder}: missing diffusion_pytorch_model.safetensors for {cls.__name__}"
        )
    try:
        model, info = cls.from_pretrained(folder, output_loading_info=True, **kwargs)
    except Exception as err:
        raise WeightsError(
            f"{folder}: cannot load {cls.__name__} ({type(err).__name__}: {err})"
        ) from err
    problems = {k: v for k, v in info.items() if v and k != "error_msgs"}
    if problems or info.get("error_msgs"):
        raise WeightsError(
            f"{folder}: {cls.__name__} weights do not match its config: {problems} "
            f"{info.get('error_msgs') or ''}"
        )
    return model
