"""Real-size models with random weights, in the real on-disk formats: the GPU path's downloads at
their true shapes (Arc2Face on Stable Diffusion 1.5, ArcFace R100, StyleGAN2 FFHQ 1024,
iResNet50), so the real loading and inference code can be run at full size on a CPU - one image,
one step - before anyone spends a GPU hour on them.

    {root}/stable-diffusion-v1-5/    tokenizer/, vae/ (SD1.5's VAE, float16), scheduler/
    {root}/arc2face/arc2face/        UNet, 859.5M parameters (float16)
    {root}/arc2face/encoder/         CLIP ViT-L text encoder (legacy text_model.* .bin)
    {root}/arc2face/arcface.onnx     iResNet100 as insightface loads ArcFace
    {root}/stylegan2/ffhq-1024.safetensors   StyleGAN2 config F, 1024 px
    {root}/iresnet50.safetensors     the training backbone as the train rule writes it
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from hyperface.generators.tiny import SD15, write_arc2face, write_stable_diffusion_base


def write_real_size(root: str | Path, seed: int = 0) -> dict[str, Path]:
    """Write every real-size model under ``root`` (about 2.5 GB); returns their paths."""
    from hyperface.generators.stylegan2 import StyleGAN2Generator
    from hyperface.recognition.iresnet import build_backbone
    from hyperface.recognition.onnx_export import export_onnx
    from hyperface.recognition.training import save_backbone

    root = Path(root)
    base = root / "stable-diffusion-v1-5"
    write_stable_diffusion_base(base, seed=seed, resolution=512, shapes=SD15)
    vocab_size = len(json.loads((base / "tokenizer" / "vocab.json").read_text()))
    write_arc2face(root / "arc2face", vocab_size, seed=seed + 1, resolution=512, shapes=SD15,
                   arcface=False)  # fmt: skip
    torch.manual_seed(seed + 2)
    export_onnx(_calibrated(build_backbone("iresnet100")), root / "arc2face" / "arcface.onnx", {})
    torch.manual_seed(seed + 3)
    stylegan = StyleGAN2Generator(z_dim=512, w_dim=512, img_resolution=1024, channel_base=32768,
                                  channel_max=512, mapping_layers=8)  # fmt: skip
    stylegan.save_safetensors(root / "stylegan2" / "ffhq-1024.safetensors")
    torch.manual_seed(seed + 4)
    backbone = _calibrated(build_backbone("iresnet50", width=64, embedding_size=512))
    save_backbone(backbone, root / "iresnet50.safetensors", "iresnet50", 64, 512)
    return {
        "arc2face": root / "arc2face",
        "base_model": base,
        "arcface": root / "arc2face" / "arcface.onnx",
        "stylegan2": root / "stylegan2" / "ffhq-1024.safetensors",
        "iresnet50": root / "iresnet50.safetensors",
    }


def _calibrated(model: torch.nn.Module) -> torch.nn.Module:
    """A random backbone whose BatchNorm statistics are those of one batch (as training would
    leave them): at fresh-init statistics a 100-layer network's activations vanish or overflow
    in eval mode, which would test nothing."""
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.momentum = None  # a cumulative average: exactly this batch's statistics
    model.train()
    with torch.no_grad():
        model(torch.rand(8, 3, 112, 112) * 2 - 1)
    return model.eval()
