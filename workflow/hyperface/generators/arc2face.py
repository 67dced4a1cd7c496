"""Arc2Face: images of a face from its ArcFace embedding, on Stable Diffusion 1.5.

The ID embedding (512-d, unit norm) is zero-padded to the text encoder's width and put in place of
the token embedding of "id" in the prompt "photo of a id person"; the CLIP text encoder then turns
the prompt into the UNet's conditioning. The published wrapper imports private transformers
helpers that transformers 5 removed, so :class:`Arc2FaceTextEncoder` is written against the
installed release's public modules.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import numpy as np
import torch

from hyperface.loading import WeightsError, load_diffusers, load_state_dict, load_strict, require

PROMPT = "photo of a id person"
ID_TOKEN = "id"
LEGACY_PREFIX = "text_model."


class Arc2FaceTextEncoder(torch.nn.Module):
    """A CLIP text encoder whose forward can take token embeddings (with the ID spliced in)."""

    def __init__(self, config):
        from transformers import CLIPTextModel

        super().__init__()
        self.config = config
        self.clip = CLIPTextModel(config)

    @classmethod
    def from_folder(cls, folder: str | Path) -> Arc2FaceTextEncoder:
        """Load Arc2Face's ``encoder/`` folder (config.json + pytorch_model.bin or
        model.safetensors)."""
        from transformers import CLIPTextConfig

        folder = require(folder, "Arc2Face encoder folder")
        config = CLIPTextConfig(
            **json.loads(require(folder / "config.json", "encoder config").read_text())
        )
        files = [folder / "model.safetensors", folder / "pytorch_model.bin"]
        weights = next((f for f in files if f.exists()), None)
        if weights is None:
            raise WeightsError(f"{folder}: missing model.safetensors or pytorch_model.bin")
        state = {k.removeprefix(LEGACY_PREFIX): v for k, v in load_state_dict(weights).items()}
        state.pop("embeddings.position_ids", None)  # a buffer in old releases, derived now
        model = cls(config)
        load_strict(model.clip, state, weights)
        return model.eval()

    @property
    def dtype(self) -> torch.dtype:
        return self.clip.embeddings.token_embedding.weight.dtype

    @property
    def device(self) -> torch.device:
        return self.clip.embeddings.token_embedding.weight.device

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_embeds: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor]:
        """Hidden states of the prompt; like SD 1.5's encoder, padding is attended to (causal
        mask only), so ``attention_mask`` is accepted for the pipeline's interface and unused."""
        from transformers.masking_utils import create_causal_mask

        if token_embeds is None:
            token_embeds = self.clip.embeddings.token_embedding(input_ids)
        hidden = self.clip.embeddings(inputs_embeds=token_embeds)
        mask = create_causal_mask(
            config=self.clip.config, inputs_embeds=hidden, attention_mask=None, **_no_cache()
        )
        hidden = self.clip.encoder(inputs_embeds=hidden, attention_mask=mask, is_causal=True)
        return (self.clip.final_layer_norm(hidden.last_hidden_state),)


@cache
def _no_cache() -> dict[str, None]:
    """create_causal_mask's "no cache" argument: ``cache`` since transformers 5.2x, where
    ``past_key_values`` warns that it goes away in 5.40; ``past_key_values`` before."""
    import inspect

    from transformers.masking_utils import create_causal_mask

    names = inspect.signature(create_causal_mask).parameters
    return {"cache": None} if "cache" in names else {"past_key_values": None}


def load_tokenizer(base_model: str | Path):
    """SD1.5's CLIP tokenizer from local files, checked to spell the Arc2Face prompt.

    Offline, a tokenizer loaded from a hub id comes back silently empty; here an unknown token in
    the prompt, or an "id" that is not a single token, is an error.
    """
    from transformers import CLIPTokenizer

    folder = require(Path(base_model) / "tokenizer", "Stable Diffusion tokenizer folder")
    for name in ("vocab.json", "merges.txt"):
        require(folder / name, "tokenizer file")
    try:
        tokenizer = CLIPTokenizer.from_pretrained(folder)
    except Exception as err:
        raise WeightsError(
            f"{folder}: cannot load the CLIP tokenizer ({type(err).__name__}: {err})"
        ) from err
    ids = tokenizer(PROMPT, add_special_tokens=False).input_ids
    id_tokens = tokenizer.encode(ID_TOKEN, add_special_tokens=False)
    if tokenizer.unk_token_id in ids or len(id_tokens) != 1 or len(ids) != len(PROMPT.split()):
        raise WeightsError(
            f"{folder}: tokenizer does not spell {PROMPT!r} with known whole-word "
            f"tokens (got {ids}); is this Stable Diffusion 1.5's tokenizer?"
        )
    return tokenizer


class Arc2FaceGenerator:
    """Stable Diffusion 1.5 + Arc2Face UNet and encoder, loaded once, called per batch."""

    def __init__(
        self,
        weights: str | Path,
        base_model: str | Path,
        *,
        device: str = "cpu",
        steps: int = 25,
        guidance_scale: float = 3.0,
        resolution: int = 512,
        dtype: torch.dtype | None = None,
    ):
        """``dtype``: the networks' precision, float16 on a GPU and float32 on a CPU unless set
        (bfloat16 for the benchmark)."""
        from diffusers import (
            AutoencoderKL,
            DPMSolverMultistepScheduler,
            StableDiffusionPipeline,
            UNet2DConditionModel,
        )

        weights, base_model = Path(weights), Path(base_model)
        self.device = torch.device(device)
        self.dtype = dtype or (torch.float16 if self.device.type == "cuda" else torch.float32)
        self.steps, self.guidance_scale, self.resolution = steps, guidance_scale, resolution
        self.tokenizer = load_tokenizer(base_model)
        self.text_encoder = Arc2FaceTextEncoder.from_folder(weights / "encoder")
        unet = load_diffusers(UNet2DConditionModel, weights / "arc2face", torch_dtype=self.dtype)
        vae = load_diffusers(AutoencoderKL, base_model / "vae", torch_dtype=self.dtype)
        require(base_model / "scheduler" / "scheduler_config.json", "scheduler config")
        scheduler = DPMSolverMultistepScheduler.from_pretrained(base_model, subfolder="scheduler")
        if unet.config.cross_attention_dim != self.text_encoder.config.hidden_size:
            raise WeightsError(
                f"{weights}: UNet cross-attention size {unet.config.cross_attention_dim} "
                f"!= text encoder width {self.text_encoder.config.hidden_size}"
            )
        self.pipe = StableDiffusionPipeline(
            vae=vae,
            text_encoder=self.text_encoder,
            tokenizer=self.tokenizer,
            unet=unet,
            scheduler=scheduler,
            safety_checker=None,
            feature_extractor=None,
            requires_safety_checker=False,
        )
        self.text_encoder.to(self.dtype)
        self.pipe.to(self.device)
        self.pipe.set_progress_bar_config(disable=True)
        self.vae_scale = 2 ** (len(vae.config.block_out_channels) - 1)
        self.latent_shape = (
            unet.config.in_channels,
            resolution // self.vae_scale,
            resolution // self.vae_scale,
        )
        self._id_token = self.tokenizer.encode(ID_TOKEN, add_special_tokens=False)[0]
        with torch.no_grad():  # the empty negative prompt: encoded once, not once a batch
            self._negative = self.text_encoder(self._tokens(""))[0]

    def _tokens(self, text: str) -> torch.Tensor:
        return self.tokenizer(
            text,
            padding="max_length",
            truncation=True,
            max_length=self.tokenizer.model_max_length,
            return_tensors="pt",
        ).input_ids.to(self.device)

    @torch.no_grad()
    def condition(self, id_embeddings: torch.Tensor) -> torch.Tensor:
        """Prompt embeddings for unit ID embeddings (N, 512): the ID replaces the "id" token."""
        ids = self._tokens(PROMPT).repeat(len(id_embeddings), 1)
        width = self.text_encoder.config.hidden_size
        if id_embeddings.shape[1] > width:
            raise WeightsError(
                f"ID embeddings of size {id_embeddings.shape[1]} do not fit a text "
                f"encoder of width {width}"
            )
        padded = torch.nn.functional.pad(id_embeddings, (0, width - id_embeddings.shape[1]))
        tokens = self.text_encoder.clip.embeddings.token_embedding(ids)
        tokens[ids == self._id_token] = padded.to(tokens.dtype)
        return self.text_encoder(ids, token_embeds=tokens)[0]

    @torch.no_grad()
    def generate(self, id_embeddings: np.ndarray, latents: torch.Tensor) -> np.ndarray:
        """Images (N, H, W, 3) uint8 RGB for ID embeddings (N, 512) and initial latents (N, C, h,
        w)."""
        emb = torch.from_numpy(np.asarray(id_embeddings, dtype=np.float32)).to(
            self.device, self.dtype
        )
        emb = torch.nn.functional.normalize(emb, dim=1)
        prompt = self.condition(emb)
        out = self.pipe(
            prompt_embeds=prompt,
            negative_prompt_embeds=self._negative.expand(len(emb), -1, -1),
            latents=latents.to(self.device, self.dtype),
            height=self.resolution,
            width=self.resolution,
            num_inference_steps=self.steps,
            guidance_scale=self.guidance_scale,
            output_type="pt",  # [0, 1] on the device: bytes, not float32 images, cross to the host
        ).images
        return to_bytes(out)


def to_bytes(images: torch.Tensor) -> np.ndarray:
    """(N, 3, H, W) in [0, 1], on any device -> (N, H, W, 3) uint8 on the host, rounded in float32
    on the device (as diffusers' ``output_type="np"`` followed by ``* 255`` and rounding)."""
    x = images.float().clamp_(0.0, 1.0).mul_(255.0).round_().to(torch.uint8)
    return x.permute(0, 2, 3, 1).contiguous().cpu().numpy()
