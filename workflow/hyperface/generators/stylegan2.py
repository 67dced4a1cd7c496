"""StyleGAN2 generator (Karras et al. 2020, config F), weights from safetensors.

Tensor names follow the official PyTorch release (stylegan2-ada-pytorch ``G_ema``):
``mapping.fc{i}``,
``mapping.w_avg``, ``synthesis.b{res}.{conv0,conv1,torgb}``, ``const``, ``noise_const``,
``noise_strength``, ``resample_filter``. ``scripts/convert_stylegan2.py`` turns an official ``.pkl``
into a safetensors file whose metadata holds the architecture (z_dim, w_dim, img_resolution,
channel_base, channel_max, mapping_layers); this module never unpickles anything.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from hyperface.loading import WeightsError, load_state_dict, load_strict, require
from hyperface.seeding import torch_generator

NOISE_MODES = ("const", "random", "none")
ARCH_KEYS = ("z_dim", "w_dim", "img_resolution", "channel_base", "channel_max", "mapping_layers")


def _lrelu(
    x: torch.Tensor, bias: torch.Tensor | None = None, clamp: float | None = None
) -> torch.Tensor:
    if bias is not None:
        x = x + bias.reshape([1, -1] + [1] * (x.ndim - 2))
    x = F.leaky_relu(x, 0.2) * math.sqrt(2)
    return x.clamp(-clamp, clamp) if clamp is not None else x


def setup_filter(taps=(1, 3, 3, 1)) -> torch.Tensor:
    f = torch.tensor(taps, dtype=torch.float32)
    f = torch.outer(f, f)
    return f / f.sum()


def upfirdn2d(
    x: torch.Tensor, f: torch.Tensor, up: int = 1, padding=(0, 0, 0, 0), gain: float = 1.0
) -> torch.Tensor:
    """Upsample by zero insertion, pad (x0, x1, y0, y1; negative crops), FIR-filter with ``f``."""
    n, c, h, w = x.shape
    if up > 1:
        x = x.reshape(n, c, h, 1, w, 1)
        x = F.pad(x, [0, up - 1, 0, 0, 0, up - 1]).reshape(n, c, h * up, w * up)
    px0, px1, py0, py1 = padding
    x = F.pad(x, [max(px0, 0), max(px1, 0), max(py0, 0), max(py1, 0)])
    x = x[:, :, max(-py0, 0) : x.shape[2] - max(-py1, 0), max(-px0, 0) : x.shape[3] - max(-px1, 0)]
    weight = (f * gain).flip([0, 1])[None, None].repeat(c, 1, 1, 1).to(x.dtype)
    return F.conv2d(x, weight, groups=c)


def upsample2d(x: torch.Tensor, f: torch.Tensor, up: int = 2) -> torch.Tensor:
    fw = f.shape[-1]
    p0, p1 = (fw + up - 1) // 2, (fw - up) // 2
    return upfirdn2d(x, f, up=up, padding=(p0, p1, p0, p1), gain=up * up)


def modulated_conv2d(
    x: torch.Tensor,
    weight: torch.Tensor,
    styles: torch.Tensor,
    *,
    up: int = 1,
    demodulate: bool = True,
    resample_filter: torch.Tensor | None = None,
) -> torch.Tensor:
    """Per-sample modulated (and demodulated) convolution as grouped conv; up=2 via transposed conv
    + FIR."""
    n, _, h, w_ = x.shape
    out_c, in_c, kh, kw = weight.shape
    wgt = weight[None] * styles[:, None, :, None, None]
    if demodulate:
        wgt = wgt * (wgt.square().sum(dim=[2, 3, 4]) + 1e-8).rsqrt()[:, :, None, None, None]
    x = x.reshape(1, n * in_c, h, w_)
    if up == 1:
        x = F.conv2d(x, wgt.reshape(n * out_c, in_c, kh, kw), padding=kh // 2, groups=n)
    else:
        wt = wgt.transpose(1, 2).reshape(n * in_c, out_c, kh, kw)
        x = F.conv_transpose2d(x, wt, stride=up, groups=n)
        fw = resample_filter.shape[-1]
        pad = kh // 2
        p0 = pad + (fw + up - 1) // 2 - (kw - 1)
        p1 = pad + (fw - up) // 2 - (kw - up)
        x = upfirdn2d(x, resample_filter, padding=(p0, p1, p0, p1), gain=up * up)
    return x.reshape(n, out_c, x.shape[2], x.shape[3])


class FullyConnectedLayer(nn.Module):
    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        lr_multiplier: float = 1.0,
        bias_init: float = 0.0,
        activation: bool = False,
    ):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_multiplier)
        self.bias = nn.Parameter(torch.full([out_features], float(bias_init)))
        self.weight_gain = lr_multiplier / math.sqrt(in_features)
        self.bias_gain = lr_multiplier
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w, b = self.weight * self.weight_gain, self.bias * self.bias_gain
        return _lrelu(x @ w.T, b) if self.activation else torch.addmm(b[None], x, w.T)


class MappingNetwork(nn.Module):
    def __init__(
        self, z_dim: int, w_dim: int, num_ws: int, num_layers: int = 8, lr_multiplier: float = 0.01
    ):
        super().__init__()
        self.z_dim, self.w_dim, self.num_ws, self.num_layers = z_dim, w_dim, num_ws, num_layers
        features = [z_dim] + [w_dim] * num_layers
        for i in range(num_layers):
            setattr(
                self,
                f"fc{i}",
                FullyConnectedLayer(
                    features[i], features[i + 1], activation=True, lr_multiplier=lr_multiplier
                ),
            )
        self.register_buffer("w_avg", torch.zeros(w_dim))

    def forward(self, z: torch.Tensor, truncation_psi: float = 1.0) -> torch.Tensor:
        x = z * (z.square().mean(dim=1, keepdim=True) + 1e-8).rsqrt()
        for i in range(self.num_layers):
            x = getattr(self, f"fc{i}")(x)
        x = x[:, None].repeat(1, self.num_ws, 1)
        return self.w_avg.lerp(x, truncation_psi) if truncation_psi != 1 else x


class SynthesisLayer(nn.Module):
    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        w_dim: int,
        resolution: int,
        *,
        up: int = 1,
        conv_clamp: float | None = 256,
    ):
        super().__init__()
        self.up, self.resolution, self.conv_clamp = up, resolution, conv_clamp
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, 3, 3))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.register_buffer("resample_filter", setup_filter())
        self.register_buffer("noise_const", torch.randn(resolution, resolution))
        self.noise_strength = nn.Parameter(torch.zeros([]))

    def forward(
        self,
        x: torch.Tensor,
        w: torch.Tensor,
        noise_mode: str = "const",
        generators: list[torch.Generator] | None = None,
    ) -> torch.Tensor:
        styles = self.affine(w)
        x = modulated_conv2d(
            x, self.weight, styles, up=self.up, resample_filter=self.resample_filter
        )
        if noise_mode == "const":
            x = x + self.noise_const * self.noise_strength
        elif noise_mode == "random":
            noise = torch.stack(
                [torch.randn(1, self.resolution, self.resolution, generator=g) for g in generators]
            )
            x = x + noise.to(x.device, x.dtype) * self.noise_strength
        return _lrelu(x, self.bias, self.conv_clamp)


class ToRGBLayer(nn.Module):
    def __init__(
        self, in_channels: int, out_channels: int, w_dim: int, conv_clamp: float | None = 256
    ):
        super().__init__()
        self.conv_clamp = conv_clamp
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, 1, 1))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.weight_gain = 1 / math.sqrt(in_channels)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        styles = self.affine(w) * self.weight_gain
        x = modulated_conv2d(x, self.weight, styles, demodulate=False)
        x = x + self.bias.reshape(1, -1, 1, 1)
        return x.clamp(-self.conv_clamp, self.conv_clamp) if self.conv_clamp is not None else x


class SynthesisBlock(nn.Module):
    """One resolution of the 'skip' architecture: (conv0 up) conv1, toRGB added to the upsampled
    image."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int):
        super().__init__()
        self.in_channels, self.resolution = in_channels, resolution
        self.register_buffer("resample_filter", setup_filter())
        if in_channels == 0:
            self.const = nn.Parameter(torch.randn(out_channels, resolution, resolution))
        else:
            self.conv0 = SynthesisLayer(in_channels, out_channels, w_dim, resolution, up=2)
        self.conv1 = SynthesisLayer(out_channels, out_channels, w_dim, resolution)
        self.torgb = ToRGBLayer(out_channels, 3, w_dim)
        self.num_conv = 1 if in_channels == 0 else 2

    def forward(self, x, img, ws, noise_mode, generators):
        i = 0
        if self.in_channels == 0:
            x = self.const[None].repeat(ws.shape[0], 1, 1, 1)
        else:
            x = self.conv0(x, ws[:, 0], noise_mode, generators)
            i = 1
        x = self.conv1(x, ws[:, i], noise_mode, generators)
        y = self.torgb(x, ws[:, i + 1])
        img = y if img is None else upsample2d(img, self.resample_filter) + y
        return x, img


class SynthesisNetwork(nn.Module):
    def __init__(
        self, w_dim: int, img_resolution: int, channel_base: int = 32768, channel_max: int = 512
    ):
        super().__init__()
        self.resolutions = [2**i for i in range(2, int(np.log2(img_resolution)) + 1)]
        channels = {res: min(channel_base // res, channel_max) for res in self.resolutions}
        self.num_ws = 0
        for res in self.resolutions:
            block = SynthesisBlock(channels[res // 2] if res > 4 else 0, channels[res], w_dim, res)
            self.num_ws += block.num_conv
            setattr(self, f"b{res}", block)
        self.num_ws += 1  # the last toRGB

    def forward(
        self,
        ws: torch.Tensor,
        noise_mode: str = "const",
        generators: list[torch.Generator] | None = None,
    ) -> torch.Tensor:
        x = img = None
        w_idx = 0
        for res in self.resolutions:
            block = getattr(self, f"b{res}")
            x, img = block(
                x, img, ws[:, w_idx : w_idx + block.num_conv + 1], noise_mode, generators
            )
            w_idx += block.num_conv
        return img


class StyleGAN2Generator(nn.Module):
    def __init__(
        self,
        z_dim: int = 512,
        w_dim: int = 512,
        img_resolution: int = 1024,
        channel_base: int = 32768,
        channel_max: int = 512,
        mapping_layers: int = 8,
    ):
        super().__init__()
        self.arch = {
            "z_dim": z_dim,
            "w_dim": w_dim,
            "img_resolution": img_resolution,
            "channel_base": channel_base,
            "channel_max": channel_max,
            "mapping_layers": mapping_layers,
        }
        self.z_dim = z_dim
        self.synthesis = SynthesisNetwork(w_dim, img_resolution, channel_base, channel_max)
        self.mapping = MappingNetwork(z_dim, w_dim, self.synthesis.num_ws, mapping_layers)

    def forward(
        self,
        z: torch.Tensor,
        truncation_psi: float = 1.0,
        noise_mode: str = "const",
        generators: list[torch.Generator] | None = None,
    ) -> torch.Tensor:
        return self.synthesis(self.mapping(z, truncation_psi), noise_mode, generators)

    @classmethod
    def from_safetensors(cls, path: str | Path) -> StyleGAN2Generator:
        """Build from the file's architecture metadata and load every tensor strictly."""
        from safetensors import safe_open

        path = require(path, "StyleGAN2 safetensors file")
        try:
            with safe_open(str(path), framework="pt") as f:
                meta = f.metadata() or {}
        except Exception as err:
            raise WeightsError(
                f"{path}: not a safetensors file ({type(err).__name__}: {err})"
            ) from err
        missing = [k for k in ARCH_KEYS if k not in meta]
        if missing:
            raise WeightsError(
                f"{path}: metadata lacks {missing}; write it with scripts/convert_stylegan2.py"
            )
        model = cls(**{k: int(meta[k]) for k in ARCH_KEYS})
        load_strict(model, load_state_dict(path), path)
        return model.eval()

    def save_safetensors(self, path: str | Path) -> None:
        from safetensors.torch import save_file

        Path(path).parent.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}
        save_file(state, str(path), metadata={k: json.dumps(v) for k, v in self.arch.items()})


class StyleGAN2Gallery:
    """Gallery faces from a StyleGAN2 generator: z for index i from (seed, "gallery", i)."""

    def __init__(
        self,
        weights: str | Path,
        *,
        device: str = "cpu",
        truncation_psi: float = 0.7,
        noise_mode: str = "const",
    ):
        if noise_mode not in NOISE_MODES:
            raise ValueError(f"gallery.noise_mode must be one of {NOISE_MODES}, got {noise_mode!r}")
        self.model = StyleGAN2Generator.from_safetensors(weights).to(device)
        self.device, self.psi, self.noise_mode = device, truncation_psi, noise_mode

    @torch.no_grad()
    def generate(self, indices: list[int], seed: int) -> list[np.ndarray]:
        gens = [torch_generator(seed, "gallery", i) for i in indices]
        z = torch.stack([torch.randn(self.model.z_dim, generator=g) for g in gens]).to(self.device)
        img = self.model(z, self.psi, self.noise_mode, gens)
        img = (img.permute(0, 2, 3, 1) * 127.5 + 128).clamp(0, 255).to(torch.uint8)
        return list(img.cpu().numpy())
