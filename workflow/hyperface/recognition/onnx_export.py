"""The trained backbone as ONNX, in the layout other face-recognition code expects.

insightface's recognisers are the de-facto interface: an aligned 112x112 face as float32 NCHW,
RGB, ``(pixel - 127.5) / 127.5``, in; an unnormalised embedding out (normalise, then compare by
cosine). The export follows it, so ``insightface.model_zoo.get_model("model.onnx")`` loads it as an
ArcFace model, and writes that contract into the file's metadata. Every export is checked
against the weights it came from on a fixed batch; the largest difference is returned.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

INPUT, OUTPUT = "input", "embedding"
CONTRACT = {
    "input": "float32 [N, 3, 112, 112], NCHW, RGB, (pixel - 127.5) / 127.5",
    "alignment": "5 landmarks warped onto the ArcFace 112x112 template (insightface norm_crop)",
    "output": "float32 [N, embedding_size], unnormalised: L2-normalise and compare by cosine",
}


class RawFeature(torch.nn.Module):
    """The backbone's feature before normalisation (unit direction x norm), as one output."""

    def __init__(self, backbone: torch.nn.Module):
        super().__init__()
        self.backbone = backbone

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        unit, norm = self.backbone(x)
        return unit * norm


def check_batch(n: int = 8, size: int = 112, seed: int = 0) -> np.ndarray:
    """A fixed batch of network inputs in [-1, 1] for comparing the export with its weights."""
    rng = np.random.default_rng(seed)
    return ((rng.integers(0, 256, size=(n, 3, size, size)) - 127.5) / 127.5).astype(np.float32)


def export_onnx(
    backbone: torch.nn.Module, path: str | Path, metadata: dict[str, str], tolerance: float = 1e-3
) -> float:
    """Write ``backbone`` (eval mode, CPU) to ``path`` and return the largest absolute difference
    between onnxruntime's and torch's embeddings of :func:`check_batch`, relative to the largest
    embedding value; above ``tolerance`` the export is refused."""
    import onnx
    import onnxruntime

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = RawFeature(
        backbone.cpu()
    ).eval()  # the exporter restores the wrapper's mode on all children
    batch = check_batch()
    tmp = path.with_suffix(".tmp.onnx")
    torch.onnx.export(
        model,
        (torch.from_numpy(batch[:1]),),
        str(tmp),
        input_names=[INPUT],
        output_names=[OUTPUT],
        dynamic_axes={INPUT: {0: "batch"}, OUTPUT: {0: "batch"}},
        opset_version=17,
        dynamo=False,
    )
    proto = onnx.load(str(tmp))
    for key, value in {**CONTRACT, **metadata}.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, str(value)
    onnx.checker.check_model(proto)
    onnx.save(proto, str(tmp))
    session = onnxruntime.InferenceSession(str(tmp), providers=["CPUExecutionProvider"])
    ours = session.run([OUTPUT], {INPUT: batch})[0]
    with torch.no_grad():
        reference = model(torch.from_numpy(batch)).numpy()
    difference = float(np.abs(ours - reference).max() / max(np.abs(reference).max(), 1e-12))
    if difference > tolerance:
        tmp.unlink()
        raise ValueError(
            f"ONNX export of {path.name} differs from its weights by {difference:.2e} "
            f"(relative), more than {tolerance:.0e}"
        )
    tmp.replace(path)
    return difference
