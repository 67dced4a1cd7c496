"""The GPU path, checked where a CPU can check it: no silent CPU fallbacks, device-only
collectives, inputs that cross to the device as bytes, generation that leaves the host free."""

from __future__ import annotations

import pytest

from hyperface.recognition.embedders import DeviceError, InsightFaceEmbedder, on_device


def test_arcface_on_a_gpu_without_onnxruntime_gpu_fails_instead_of_running_on_the_cpu(tiny):
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this onnxruntime has a CUDA provider")
    with pytest.raises(DeviceError, match="onnxruntime-gpu"):
        InsightFaceEmbedder(tiny["arcface"], device="cuda")
    assert InsightFaceEmbedder(tiny["arcface"], device="cpu").dim == 512  # the CPU is fine


def test_a_session_that_fell_back_to_the_cpu_is_refused():
    class FellBack:
        def get_providers(self):
            return ["CPUExecutionProvider"]

    with pytest.raises(DeviceError, match="could not start its CUDA provider"):
        on_device(FellBack(), "cuda:0", "arcface.onnx")
    on_device(FellBack(), "cpu", "arcface.onnx")  # asked for the CPU: nothing to refuse


def _batch_norm_rank(rank: int, world: int, folder: str, out: dict) -> None:
    """One rank: half of a batch through GlobalBatchNorm2d, against float64 BatchNorm over the
    whole batch, counting the collectives."""
    import torch
    import torch.distributed as dist

    from hyperface.recognition.distributed import GlobalBatchNorm2d

    dist.init_process_group("gloo", init_method=f"file://{folder}/rdv", rank=rank, world_size=world)
    calls = {"all_gather": 0, "all_reduce": 0}
    for name in calls:
        original = getattr(dist, name)

        def counted(*args, _name=name, _original=original, **kwargs):
            calls[_name] += 1
            return _original(*args, **kwargs)

        setattr(dist, name, counted)
    torch.manual_seed(0)
    x, w = torch.randn(8, 16, 7, 7) * 0.1 + 5.0, torch.randn(8, 16, 7, 7)
    exact = x.double().requires_grad_(True)
    (torch.nn.BatchNorm2d(16).double()(exact) * w.double()).sum().backward()
    half = slice(rank * 4, rank * 4 + 4)
    part = x[half].clone().requires_grad_(True)
    (GlobalBatchNorm2d(16)(part) * w[half]).sum().backward()
    error = (part.grad.double() - exact.grad[half]).abs().max() / exact.grad.abs().max()
    out[rank] = (dict(calls), float(error))
    dist.destroy_process_group()


def test_global_batch_norm_is_one_collective_each_way_and_exact_to_float32(tmp_path):
    import torch.multiprocessing as mp

    out = mp.Manager().dict()
    mp.spawn(_batch_norm_rank, args=(2, str(tmp_path), out), nprocs=2)
    for rank in range(2):
        calls, error = out[rank]
        # forward: one all-gather of (count, mean, squared deviations); backward: one all-reduce
        assert calls == {"all_gather": 1, "all_reduce": 1}, calls
        assert error < 1e-5, error  # measured: 3.4e-7 of the largest gradient


def test_mtcnn_looks_for_faces_in_proportion_to_the_image():
    """At 512 px the pyramid starts at 12/102 (5 scales), not 12/20 (10 scales)."""
    from hyperface.recognition.alignment import Aligner

    aligner = Aligner()
    assert aligner.mtcnn((512, 512, 3)).min_face_size == 102
    assert aligner.mtcnn((1024, 768, 3)).min_face_size == 154
    assert aligner.mtcnn((64, 64, 3)).min_face_size == 20  # never below MTCNN's usual floor


def test_the_gpu_benchmark_runs_every_section_in_its_smoke_mode():
    """``python -m hyperface.bench.gpu --smoke``: each section at its smallest, on the CPU, with
    the tiny models - proof that the one command a GPU hour runs works."""
    import subprocess
    import sys

    from .conftest import REPO

    proc = subprocess.run(
        [sys.executable, "-m", "hyperface.bench.gpu", "--smoke"],
        capture_output=True,
        text=True,
        cwd=REPO / "workflow",
        timeout=600,
    )
    print(proc.stdout[-3000:])
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    for name in ("arc2face", "arcface", "mtcnn", "training", "packing"):
        assert f"## {name} (" in proc.stdout, name
    assert "FAILED" not in proc.stdout
