"""MobileStyleGAN gallery: real 1024x1024 FFHQ faces on a laptop's CPU.

MobileStyleGAN (Belousov 2021) distils StyleGAN2's FFHQ generator into a mapping network (z -> w,
512-d) and a wavelet-based synthesis network (w -> RGB in [-1, 1]), published as OpenVINO IR in the
``random-face`` wheel. About 0.4 s per image on 2 threads (float32). The draw for gallery index
i is the same z as the StyleGAN2 backend's (a 512-d normal from the stream (seed, "gallery", i));
truncation pulls w toward the mean w, estimated once from a fixed set of draws so it does not move
with the seed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from hyperface.loading import WeightsError, require
from hyperface.seeding import numpy_rng, torch_generator

Z_DIM = 512
MEAN_SAMPLES = 4096
STYLE_LAYERS = 23  # 3 per block at 8...512 px, 2 at 1024: the synthesis IR's style consumers
NOISE_MAPS = 15  # one at 4 px, two per block at 8...512 px


def per_layer_styles(synthesis):
    """The synthesis IR with its one ``style`` input [1, 512] replaced by ``styles`` [1, 23, 512]:
    row j feeds the j-th style layer (in the order the network computes them, coarse to fine),
    so faces can take coarse and fine styles from different latents (StyleGAN's w+). With every
    row equal it is the published network exactly."""
    import openvino as ov
    from openvino import opset13 as ops

    style = synthesis.inputs[0].get_node()
    depth = depth_to_output(synthesis)
    consumers = sorted(  # coarse (far from the image) to fine
        style.output(0).get_target_inputs(), key=lambda t: -depth[t.get_node().get_friendly_name()]
    )
    layers = [t for t in consumers if t.get_node().get_type_name() == "MatMul"]
    if len(layers) != STYLE_LAYERS:
        raise WeightsError(
            f"MobileStyleGAN synthesis: {len(layers)} style layers, expected {STYLE_LAYERS}"
        )
    styles = ops.parameter([1, STYLE_LAYERS, Z_DIM], np.float32, name="styles")
    styles.output(0).get_tensor().set_names({"styles"})
    axis = ops.constant(np.int64(1))
    rows = [ops.gather(styles, ops.constant(np.int64(j)), axis) for j in range(STYLE_LAYERS)]
    for j, target in enumerate(layers):
        target.replace_source_output(rows[j].output(0))
    for target in consumers:  # the rest read the style's shape only: any row serves
        if target.get_node().get_type_name() != "MatMul":
            target.replace_source_output(rows[0].output(0))
    return ov.Model(synthesis.get_results(), [styles], "synthesis_per_layer_styles")


def depth_to_output(model) -> dict[str, int]:
    """Each op's longest path to the model's output, in ops. The style layers all hang off one
    input, so a topological order says nothing of which comes first (OpenVINO lists this IR's
    1024 px layers first); their depth does: the 8 px block is the farthest from the image."""
    depth: dict[str, int] = {}
    for op in reversed(model.get_ordered_ops()):
        consumers = [t.get_node().get_friendly_name() for out in op.outputs()
                     for t in out.get_target_inputs()]  # fmt: skip
        depth[op.get_friendly_name()] = 1 + max((depth[c] for c in consumers), default=-1)
    return depth


def noise_inputs(synthesis) -> list[np.ndarray]:
    """Turn the 15 noise maps baked into the synthesis IR (constants [1, 1, H, W], each a standard
    normal draw times its layer's learnt strength) into inputs ``noise_0`` ... ``noise_14``
    (coarse to fine), scaled by that strength inside the graph; edits the model in place and
    returns the baked draws (constant / strength), which reproduce the published network."""
    from openvino import opset13 as ops

    baked = []
    for op in synthesis.get_ordered_ops():
        if op.get_type_name() != "Constant":
            continue
        shape = tuple(op.get_output_partial_shape(0).to_shape())
        if len(shape) == 4 and shape[:2] == (1, 1) and shape[2] > 1:
            value = op.get_data().astype(np.float32)
            strength = float(value.std())
            noise = ops.parameter(list(shape), np.float32, name=f"noise_{len(baked)}")
            noise.output(0).get_tensor().set_names({f"noise_{len(baked)}"})
            scaled = ops.multiply(noise, ops.constant(np.float32(strength)))
            for target in list(op.output(0).get_target_inputs()):
                target.replace_source_output(scaled.output(0))
            synthesis.add_parameters([noise])
            baked.append(value / strength)
    if len(baked) != NOISE_MAPS:
        raise WeightsError(f"MobileStyleGAN synthesis: {len(baked)} noise maps, not {NOISE_MAPS}")
    return baked


class MobileStyleGANGallery:
    def __init__(self, weights: str | Path, *, truncation_psi: float = 0.7, threads: int = 0):
        import openvino as ov

        folder = require(
            weights, "MobileStyleGAN folder (MappingNetwork.xml, SynthesisNetwork.xml)"
        )
        core = ov.Core()
        # float32 throughout: OpenVINO's default on CPUs with AMX is bfloat16, which made the faces
        # depend on the CPU they were drawn on and was slower here (0.62 s a face against 0.39 s)
        config = {"INFERENCE_PRECISION_HINT": "f32"}
        if threads:
            config["INFERENCE_NUM_THREADS"] = threads
        try:
            mapping = core.read_model(str(folder / "MappingNetwork.xml"))
            synthesis = core.read_model(str(folder / "SynthesisNetwork.xml"))
        except Exception as err:  # OpenVINO raises its own RuntimeError subclasses
            raise WeightsError(f"{folder}: cannot read the MobileStyleGAN IR ({err})") from err
        mapping.reshape({mapping.inputs[0].get_any_name(): [-1, Z_DIM]})
        self.mapping = core.compile_model(mapping, "CPU", config)
        self.synthesis = core.compile_model(synthesis, "CPU", config)
        self._core, self._config, self._folder = core, config, folder
        self._per_layer = None
        self.psi = truncation_psi
        z = (
            numpy_rng(0, "mobilestylegan_mean_w")
            .standard_normal((MEAN_SAMPLES, Z_DIM))
            .astype(np.float32)
        )
        self.mean_w = self.mapping(z)[0].mean(axis=0, keepdims=True)

    def per_layer(self):
        """The synthesis network with per-layer styles and noise inputs, built on first use (the
        gallery does not need it); ``baked_noise`` then holds the published network's draws."""
        if self._per_layer is None:
            model = per_layer_styles(
                self._core.read_model(str(self._folder / "SynthesisNetwork.xml"))
            )
            self.baked_noise = noise_inputs(model)
            self._per_layer = self._core.compile_model(model, "CPU", self._config)
        return self._per_layer

    def fresh_noise(self, rng: np.random.Generator) -> list[np.ndarray]:
        """15 new standard normal noise maps (the per-pixel detail: hair strands, skin pores)."""
        self.per_layer()
        return [rng.standard_normal(b.shape).astype(np.float32) for b in self.baked_noise]

    def draw_styles(self, styles: np.ndarray, noise: list[np.ndarray] | None = None) -> np.ndarray:
        """One face (H, W, 3 uint8) from per-layer styles (23, 512) - row j styles layer j, rows
        0-2 the 8 px block ... 21-22 the 1024 px one - and noise maps (15 standard normal draws,
        coarse to fine; None: the published network's own)."""
        network = self.per_layer()
        feeds = {"styles": np.asarray(styles, np.float32)[None]}
        for k, value in enumerate(self.baked_noise if noise is None else noise):
            feeds[f"noise_{k}"] = np.asarray(value, np.float32).reshape(self.baked_noise[k].shape)
        return to_uint8(network(feeds)[0][0])

    def latents(self, z: np.ndarray) -> np.ndarray:
        """w (n, 512) of the draws z (n, 512), pulled toward the mean w by the truncation."""
        w = self.mapping(np.asarray(z, np.float32).reshape(-1, Z_DIM))[0]
        return self.mean_w + self.psi * (w - self.mean_w)

    def gallery_latents(self, indices: list[int], seed: int) -> np.ndarray:
        """The w of gallery faces ``indices``: the same z draws as every gallery backend."""
        z = [torch.randn(Z_DIM, generator=torch_generator(seed, "gallery", i)) for i in indices]
        return self.latents(torch.stack(z).numpy())

    def generate(self, indices: list[int], seed: int) -> list[np.ndarray]:
        # the synthesis IR has a fixed batch of one
        w = self.gallery_latents(indices, seed)
        return [to_uint8(self.synthesis(row[None])[0][0]) for row in w]


def to_uint8(image: np.ndarray) -> np.ndarray:
    """The synthesis output (3, H, W) in [-1, 1] as (H, W, 3) uint8."""
    return np.clip((image.transpose(1, 2, 0) + 1.0) * 127.5 + 0.5, 0, 255).astype(np.uint8)
