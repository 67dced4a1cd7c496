"""Face embedders: aligned 112x112 RGB uint8 crops -> unit-norm identity embeddings.

Colour order: the whole package passes RGB uint8 images; insightface's ArcFace expects BGR and does
its own (x - 127.5) / 127.5 scaling, so the conversion happens here and only here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from hyperface.loading import WeightsError, load_state_dict, load_strict, require
from hyperface.packing.vectors import unit_rows
from hyperface.settings import EmbedderSettings

BACKENDS = ("insightface", "facenet", "sface")


class Embedder(Protocol):
    dim: int

    def embed(self, faces: list[np.ndarray]) -> np.ndarray: ...


class DeviceError(RuntimeError):
    """A GPU job whose model would run on the CPU: it fails rather than crawl on a GPU
    allocation."""


def onnx_providers(device: str) -> list[str]:
    """onnxruntime's execution providers for ``device``: the CUDA one alone on a GPU.

    onnxruntime quietly falls back to the CPU when its CUDA provider is missing (the CPU-only
    ``onnxruntime`` wheel) or cannot load its libraries; at 25,600 images a shard that is tens of
    minutes of CPU on a GPU allocation, so a GPU job asks for CUDA only and checks it got it."""
    if not device.startswith("cuda"):
        return ["CPUExecutionProvider"]
    import onnxruntime as ort

    if hasattr(ort, "preload_dlls"):  # CUDA and cuDNN from the nvidia-* wheels torch installed
        ort.preload_dlls()
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        raise DeviceError(
            f"device {device!r}, but this onnxruntime ({ort.__version__}, providers "
            f"{ort.get_available_providers()}) has no CUDA provider: install onnxruntime-gpu "
            "in place of onnxruntime (envs/gpu.yaml does), or set device: cpu"
        )
    return ["CUDAExecutionProvider"]


def on_device(session, device: str, path: Path) -> None:
    """Refuse a session that fell back to the CPU although ``device`` is a GPU."""
    got = session.get_providers()
    if device.startswith("cuda") and "CUDAExecutionProvider" not in got:
        raise DeviceError(
            f"{path}: onnxruntime could not start its CUDA provider on {device!r} (running on "
            f"{got}); its log above says which CUDA or cuDNN library is missing"
        )


class InsightFaceEmbedder:
    """An ArcFace ONNX model (e.g. Arc2Face's ``arcface.onnx``) run through insightface."""

    def __init__(self, weights: str | Path, *, device: str = "cpu", batch_size: int = 64):
        import insightface

        path = require(weights, "ArcFace ONNX model")
        providers = onnx_providers(device)
        try:
            model = insightface.model_zoo.get_model(str(path), providers=providers)
        except Exception as err:
            raise WeightsError(
                f"{path}: cannot load as an ONNX model ({type(err).__name__}: {err})"
            ) from err
        if model is None or getattr(model, "taskname", None) != "recognition":
            raise WeightsError(f"{path}: not a recognition model (expected (N,3,112,112) input)")
        on_device(model.session, device, path)
        self.model, self.batch_size = model, batch_size
        self.dim = int(model.output_shape[1])

    def features(self, faces: list[np.ndarray] | np.ndarray) -> np.ndarray:
        """Raw (unnormalised) features, as the model outputs them."""
        out = []
        for start in range(0, len(faces), self.batch_size):
            bgr = [
                np.ascontiguousarray(f[:, :, ::-1]) for f in faces[start : start + self.batch_size]
            ]
            out.append(self.model.get_feat(bgr))
        return np.concatenate(out) if out else np.zeros((0, self.dim), np.float32)

    def embed(self, faces: list[np.ndarray]) -> np.ndarray:
        return unit_rows(self.features(faces))


class FacenetEmbedder:
    """facenet-pytorch's InceptionResnetV1 from a local state dict (safetensors or torch file)."""

    dim = 512

    def __init__(self, weights: str | Path, *, device: str = "cpu", batch_size: int = 64):
        from facenet_pytorch import InceptionResnetV1

        state = load_state_dict(weights)
        classes = state["logits.weight"].shape[0] if "logits.weight" in state else None
        # the published files carry the training classifier: build it so every tensor is checked,
        # then return embeddings rather than logits
        model = InceptionResnetV1(classify=classes is not None, num_classes=classes)
        load_strict(model, state, weights)
        model.classify = False
        self.model = model.eval().to(device)
        self.device, self.batch_size = device, batch_size

    @torch.no_grad()
    def embed(self, faces: list[np.ndarray]) -> np.ndarray:
        out = []
        for start in range(0, len(faces), self.batch_size):
            x = torch.from_numpy(np.stack(faces[start : start + self.batch_size])).permute(
                0, 3, 1, 2
            )
            x = torch.nn.functional.interpolate(
                x.float(), size=160, mode="bilinear", align_corners=False
            )
            out.append(self.model(((x - 127.5) / 128.0).to(self.device)).cpu().numpy())
        return unit_rows(np.concatenate(out)) if out else np.zeros((0, self.dim), np.float32)


def onnx_main_input_only(path: Path, keep: str) -> bytes:
    """The model with every graph input but ``keep`` dropped and a free batch size.

    OpenCV Zoo's block-quantised SFace lists its dequantised weights as graph inputs as well as
    computing them inside the graph; onnxruntime refuses such inputs without a value (OpenCV 5's
    dnn too), while the graph itself needs nothing but the image."""
    import onnx

    try:
        model = onnx.load(str(path))
    except Exception as err:
        raise WeightsError(f"{path}: not an ONNX model ({type(err).__name__}: {err})") from err
    inputs = [i for i in model.graph.input if i.name == keep]
    if not inputs:
        raise WeightsError(f"{path}: no graph input named {keep!r}")
    del model.graph.input[:]
    model.graph.input.extend(inputs)
    for value in (*model.graph.input, *model.graph.output):
        value.type.tensor_type.shape.dim[0].dim_param = "N"
    return model.SerializeToString()


class SFaceEmbedder:
    """OpenCV Zoo's SFace (MobileFaceNet, 128-d, Apache-2.0) on ArcFace-template 112x112 crops.

    As OpenCV's FaceRecognizerSF feeds it: RGB, 0-255, no mean or scale. Its published operating
    point: same person at cosine >= 0.363."""

    dim = 128
    threshold = 0.363

    def __init__(self, weights: str | Path, *, device: str = "cpu", batch_size: int = 64):
        import onnxruntime as ort

        from hyperface.generators.packaged import packaged_file

        path = packaged_file(require(weights, "SFace ONNX model"), ".onnx")
        options = ort.SessionOptions()
        options.log_severity_level = 3  # the file carries unused shape initialisers it warns about
        model, providers = onnx_main_input_only(path, "data"), onnx_providers(device)
        try:
            self.session = ort.InferenceSession(model, options, providers=providers)
        except Exception as err:
            raise WeightsError(
                f"{path}: cannot load as an ONNX model ({type(err).__name__}: {err})"
            ) from err
        on_device(self.session, device, path)
        self.batch_size = batch_size

    def features(self, faces: list[np.ndarray] | np.ndarray) -> np.ndarray:
        out = []
        for start in range(0, len(faces), self.batch_size):
            x = (
                np.stack(faces[start : start + self.batch_size])
                .transpose(0, 3, 1, 2)
                .astype(np.float32)
            )
            out.append(self.session.run(None, {"data": x})[0])
        return np.concatenate(out) if out else np.zeros((0, self.dim), np.float32)

    def embed(self, faces: list[np.ndarray]) -> np.ndarray:
        return unit_rows(self.features(faces))


def load_embedder(
    backend: str, weights: str | Path, *, device: str = "cpu", batch_size: int = 64
) -> Embedder:
    if backend == "insightface":
        return InsightFaceEmbedder(weights, device=device, batch_size=batch_size)
    if backend == "facenet":
        return FacenetEmbedder(weights, device=device, batch_size=batch_size)
    if backend == "sface":
        return SFaceEmbedder(weights, device=device, batch_size=batch_size)
    raise ValueError(f"embedder.backend must be one of {BACKENDS}, got {backend!r}")


def embedder_from_settings(settings: EmbedderSettings, device: str = "cpu") -> Embedder:
    """The embedder of the config's ``embedder:`` section."""
    return load_embedder(
        settings.backend, settings.weights, device=device, batch_size=settings.batch_size
    )
