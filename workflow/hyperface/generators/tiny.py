"""Tiny random models written in the *real* on-disk formats, so the demo runs the real loaders.

Nothing here is a fake backend: each file is what the real download looks like (folder and file
names, config files, legacy tensor names where the published checkpoints have them), only with
few, random weights. ``write_all`` lays out::

    {root}/arc2face/arcface.onnx                 ArcFace embedder (112x112 RGB -> 512)
    {root}/arc2face/arc2face/                    Arc2Face UNet (diffusers, safetensors)
    {root}/arc2face/encoder/                     Arc2Face text encoder (legacy text_model.* keys,
.bin)
    {root}/stable-diffusion-v1-5/                tokenizer/, vae/ (legacy attention names),
scheduler/
    {root}/ldm/                                  unconditional diffusers LDMPipeline folder
    {root}/stylegan2/ffhq-tiny.safetensors       StyleGAN2 (official tensor names + architecture
metadata)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

ARC2FACE_PROMPT_WORDS = ("photo", "of", "a", "id", "person")
TEXT_HIDDEN = 512  # >= the ArcFace dimension, so Arc2Face's zero-padding path runs unchanged


@dataclass(frozen=True)
class Shapes:
    """The sizes of the Stable Diffusion / Arc2Face networks written here: tiny for the demo and
    the tests, or those of the real downloads (:data:`SD15`)."""

    vae_blocks: tuple[int, ...] = (16, 32)
    vae_layers: int = 1
    unet_blocks: tuple[int, ...] = (32, 64)
    unet_layers: int = 1
    groups: int = 8
    text_hidden: int = TEXT_HIDDEN
    text_layers: int = 1
    text_heads: int = 8
    text_intermediate: int = 1024
    dtype: torch.dtype = torch.float32

    @property
    def unet_down(self) -> tuple[str, ...]:  # attention in every block but the deepest
        return ("CrossAttnDownBlock2D",) * (len(self.unet_blocks) - 1) + ("DownBlock2D",)

    @property
    def unet_up(self) -> tuple[str, ...]:
        return ("UpBlock2D",) + ("CrossAttnUpBlock2D",) * (len(self.unet_blocks) - 1)


TINY = Shapes()
# Stable Diffusion 1.5's VAE and UNet (859.5M parameters), and Arc2Face's CLIP ViT-L text encoder
SD15 = Shapes(
    vae_blocks=(128, 256, 512, 512),
    vae_layers=2,
    unet_blocks=(320, 640, 1280, 1280),
    unet_layers=2,
    groups=32,
    text_hidden=768,
    text_layers=12,
    text_heads=12,
    text_intermediate=3072,
    dtype=torch.float16,  # as the published files: half the disk
)


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP's reversible byte -> printable-character table."""
    bs = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs], strict=True))


def write_clip_tokenizer(folder: Path, words: tuple[str, ...] = ARC2FACE_PROMPT_WORDS) -> None:
    """A CLIP BPE tokenizer (vocab.json + merges.txt) whose vocabulary spells ``words`` whole.

    Same files and special tokens as Stable Diffusion 1.5's ``tokenizer/`` folder; the vocabulary
    is the 512 byte symbols plus the merges that build the Arc2Face prompt's words.
    """
    folder.mkdir(parents=True, exist_ok=True)
    byte_chars = list(_bytes_to_unicode().values())
    vocab_list = byte_chars + [c + "</w>" for c in byte_chars]
    merges: list[tuple[str, str]] = []
    for word in words:
        symbols = list(word[:-1]) + [word[-1] + "</w>"]
        current = symbols[0]
        for sym in symbols[1:]:
            pair = (current, sym)
            if pair not in merges:
                merges.append(pair)
                vocab_list.append(current + sym)
            current = current + sym
    vocab_list += ["<|startoftext|>", "<|endoftext|>"]
    vocab = {tok: i for i, tok in enumerate(dict.fromkeys(vocab_list))}
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False))
    (folder / "merges.txt").write_text(
        "#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges), encoding="utf-8"
    )
    special = {
        "bos_token": "<|startoftext|>",
        "eos_token": "<|endoftext|>",
        "unk_token": "<|endoftext|>",
        "pad_token": "<|endoftext|>",
    }
    (folder / "special_tokens_map.json").write_text(json.dumps(special, indent=2))
    config = {
        **special,
        "model_max_length": 77,
        "do_lower_case": True,
        "tokenizer_class": "CLIPTokenizer",
        "add_prefix_space": False,
        "errors": "replace",
    }
    (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=2))


class TinyArcFace(torch.nn.Module):
    """A small CNN with ArcFace's interface: (N, 3, 112, 112) in [-1, 1] -> (N, 512)."""

    def __init__(self, dim: int = 512):
        super().__init__()
        self.body = torch.nn.Sequential(
            torch.nn.Conv2d(3, 16, 3, stride=2, padding=1),
            torch.nn.PReLU(16),
            torch.nn.Conv2d(16, 32, 3, stride=2, padding=1),
            torch.nn.PReLU(32),
            torch.nn.Conv2d(32, 64, 3, stride=2, padding=1),
            torch.nn.PReLU(64),
            torch.nn.AdaptiveAvgPool2d(7),
            torch.nn.Flatten(),
            torch.nn.Linear(64 * 49, dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def write_arcface_onnx(path: Path, seed: int = 0) -> None:
    """Export an ArcFace-shaped ONNX (input 'input.1', dynamic batch) as insightface loads it."""
    torch.manual_seed(seed)
    model = TinyArcFace().eval()
    path.parent.mkdir(parents=True, exist_ok=True)
    dummy = torch.zeros(1, 3, 112, 112)
    torch.onnx.export(
        model,
        (dummy,),
        str(path),
        input_names=["input.1"],
        output_names=["embedding"],
        dynamic_axes={"input.1": {0: "None"}, "embedding": {0: "None"}},
        opset_version=17,
        dynamo=False,
    )


def _legacy_vae_attention_names(path: Path) -> None:
    """Rename VAE attention tensors to the old names (query/key/value/proj_attn) SD1.5's files
    use."""
    state = load_file(str(path))
    renamed = {}
    for key, value in state.items():
        for new, old in (
            ("to_q", "query"),
            ("to_k", "key"),
            ("to_v", "value"),
            ("to_out.0", "proj_attn"),
        ):
            if ".attentions." in key and f".{new}." in key:
                key = key.replace(f".{new}.", f".{old}.")
        renamed[key] = value
    save_file(renamed, str(path))


def write_stable_diffusion_base(
    folder: Path, seed: int = 0, resolution: int = 64, shapes: Shapes = TINY
) -> None:
    """The parts of a Stable Diffusion 1.5 folder Arc2Face uses: tokenizer, VAE, scheduler."""
    from diffusers import AutoencoderKL, PNDMScheduler

    torch.manual_seed(seed)
    write_clip_tokenizer(folder / "tokenizer")
    blocks = len(shapes.vae_blocks)
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * blocks,
        up_block_types=("UpDecoderBlock2D",) * blocks,
        block_out_channels=shapes.vae_blocks,
        layers_per_block=shapes.vae_layers,
        latent_channels=4,
        norm_num_groups=shapes.groups,
        sample_size=resolution,
    )
    vae.to(shapes.dtype).save_pretrained(folder / "vae", safe_serialization=True)
    _legacy_vae_attention_names(folder / "vae" / "diffusion_pytorch_model.safetensors")
    PNDMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        num_train_timesteps=1000,
        set_alpha_to_one=False,
        skip_prk_steps=True,
        steps_offset=1,
    ).save_pretrained(folder / "scheduler")
    index = {
        "_class_name": "StableDiffusionPipeline",
        "_diffusers_version": "0.6.0",
        "feature_extractor": [None, None],
        "safety_checker": [None, None],
        "scheduler": ["diffusers", "PNDMScheduler"],
        "text_encoder": ["transformers", "CLIPTextModel"],
        "tokenizer": ["transformers", "CLIPTokenizer"],
        "unet": ["diffusers", "UNet2DConditionModel"],
        "vae": ["diffusers", "AutoencoderKL"],
    }
    (folder / "model_index.json").write_text(json.dumps(index, indent=2))


def write_arc2face(
    folder: Path,
    vocab_size: int,
    seed: int = 0,
    resolution: int = 64,
    shapes: Shapes = TINY,
    arcface: bool = True,
) -> None:
    """Arc2Face's download: ``arc2face/`` UNet, ``encoder/`` text encoder, ``arcface.onnx`` (the
    tiny one; without ``arcface``, none)."""
    from diffusers import UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        sample_size=resolution // 2 ** (len(shapes.vae_blocks) - 1),
        in_channels=4,
        out_channels=4,
        layers_per_block=shapes.unet_layers,
        block_out_channels=shapes.unet_blocks,
        down_block_types=shapes.unet_down,
        up_block_types=shapes.unet_up,
        cross_attention_dim=shapes.text_hidden,
        attention_head_dim=8,
        norm_num_groups=shapes.groups,
    )
    unet.to(shapes.dtype).save_pretrained(folder / "arc2face", safe_serialization=True)
    del unet

    config = CLIPTextConfig(
        vocab_size=vocab_size,
        hidden_size=shapes.text_hidden,
        intermediate_size=shapes.text_intermediate,
        num_hidden_layers=shapes.text_layers,
        num_attention_heads=shapes.text_heads,
        max_position_embeddings=77,
        bos_token_id=vocab_size - 2,
        eos_token_id=vocab_size - 1,
        pad_token_id=vocab_size - 1,
    )
    encoder = CLIPTextModel(config)
    enc_dir = folder / "encoder"
    enc_dir.mkdir(parents=True, exist_ok=True)
    config_dict = config.to_dict()
    config_dict["architectures"] = ["CLIPTextModel"]
    (enc_dir / "config.json").write_text(json.dumps(config_dict, indent=2, default=str))
    # the published file predates transformers 5: every tensor sits under "text_model." and the
    # position ids are stored as a buffer
    legacy = {f"text_model.{k}": v.to(shapes.dtype) for k, v in encoder.state_dict().items()}
    legacy["text_model.embeddings.position_ids"] = torch.arange(77)[None]
    torch.save(legacy, enc_dir / "pytorch_model.bin")
    if arcface:
        write_arcface_onnx(folder / "arcface.onnx", seed=seed)


def write_ldm(folder: Path, seed: int = 0, resolution: int = 64) -> None:
    """An unconditional latent-diffusion pipeline folder (VQ autoencoder + UNet + DDIM)."""
    from diffusers import DDIMScheduler, LDMPipeline, UNet2DModel, VQModel

    torch.manual_seed(seed)
    vqvae = VQModel(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2,
        block_out_channels=(16, 32),
        layers_per_block=1,
        latent_channels=3,
        num_vq_embeddings=64,
        norm_num_groups=8,
        sample_size=resolution,
    )
    unet = UNet2DModel(
        sample_size=resolution // 2,
        in_channels=3,
        out_channels=3,
        layers_per_block=1,
        block_out_channels=(32, 64),
        down_block_types=("DownBlock2D", "AttnDownBlock2D"),
        up_block_types=("AttnUpBlock2D", "UpBlock2D"),
        norm_num_groups=8,
    )
    scheduler = DDIMScheduler(num_train_timesteps=1000, beta_schedule="linear", clip_sample=False)
    LDMPipeline(vqvae=vqvae, unet=unet, scheduler=scheduler).save_pretrained(
        folder, safe_serialization=True
    )


def write_stylegan2(path: Path, seed: int = 0, resolution: int = 64) -> None:
    """A tiny StyleGAN2 in the converter's format, with non-zero noise strengths and w_avg."""
    from hyperface.generators.stylegan2 import StyleGAN2Generator

    torch.manual_seed(seed)
    model = StyleGAN2Generator(
        z_dim=64,
        w_dim=64,
        img_resolution=resolution,
        channel_base=1024,
        channel_max=64,
        mapping_layers=2,
    )
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith("noise_strength"):
                param.fill_(0.1)
        model.mapping.w_avg.normal_()
    model.save_safetensors(path)


def write_all(root: str | Path, seed: int = 0, resolution: int = 64) -> dict[str, Path]:
    """Write every tiny model under ``root``; returns the paths the default config points at."""
    root = Path(root)
    base = root / "stable-diffusion-v1-5"
    write_stable_diffusion_base(base, seed=seed, resolution=resolution)
    vocab_size = len(json.loads((base / "tokenizer" / "vocab.json").read_text()))
    write_arc2face(root / "arc2face", vocab_size=vocab_size, seed=seed + 1, resolution=resolution)
    write_ldm(root / "ldm", seed=seed + 2, resolution=resolution)
    write_stylegan2(
        root / "stylegan2" / "ffhq-tiny.safetensors", seed=seed + 3, resolution=resolution
    )
    return {
        "arcface": root / "arc2face" / "arcface.onnx",
        "arc2face": root / "arc2face",
        "base_model": base,
        "ldm": root / "ldm",
        "stylegan2": root / "stylegan2" / "ffhq-tiny.safetensors",
    }
