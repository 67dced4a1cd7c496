"""One typed settings object per config section, built once from the validated config.

The schema (``workflow/schemas/config.schema.yaml``) is the only place a default is written: each
class below names its fields and their types, and takes every default from the schema when this
module is imported, so ``TrainingSettings()`` in a notebook trains the recipe the workflow trains.
``tests/test_settings.py`` holds the two together both ways (every schema key is a field of the
matching type, every field is a schema key).

Stages receive these objects; library functions receive the settings they need or plain
arguments. Rules still pass each section to their script as a plain ``params:`` dict (what
Snakemake's params trigger compares), and the script turns it into its settings object with
``from_section``.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

import yaml

SCHEMA = Path(__file__).resolve().parents[1] / "schemas" / "config.schema.yaml"


@cache
def schema() -> dict:
    """The config schema, parsed once per process."""
    return yaml.safe_load(SCHEMA.read_text())


def section_schema(key: str) -> dict:
    """The schema of the section at a dotted ``key`` ("" is the whole config)."""
    node = schema()
    for part in filter(None, key.split(".")):
        node = node["properties"][part]
    return node


_SECTIONS: dict[str, type] = {}  # class name -> settings class, for nested sections


class SettingsError(ValueError):
    """A config value the schema lets through but its setting cannot take (e.g. 3.0 as an int)."""


def settings_of(key: str):
    """Make a class the frozen dataclass of the config section ``key``, its defaults the
    schema's."""

    def wrap(cls: type) -> type:
        props = section_schema(key)["properties"]
        for name in cls.__dict__.get("__annotations__", {}):
            if name not in props:
                raise TypeError(f"{cls.__name__}.{name}: no key {key}.{name} in {SCHEMA.name}")
            setattr(cls, name, _default(props[name]["default"], cls, name))
        made = dataclasses.dataclass(frozen=True)(cls)
        made.KEY = key
        _SECTIONS[cls.__name__] = made
        return made

    return wrap


def _default(value: Any, cls: type, name: str) -> Any:
    hint = cls.__dict__["__annotations__"][name]
    nested = _SECTIONS.get(hint)
    if nested is not None:
        return dataclasses.field(default_factory=lambda: nested.from_section(value))
    if isinstance(value, dict):
        return dataclasses.field(default_factory=lambda: dict(value))
    return tuple(value) if isinstance(value, list) else value


class Section:
    """What every settings class can do: be built from its config section and turned back."""

    KEY: typing.ClassVar[str]

    @classmethod
    def from_section(
        cls, section: Mapping[str, Any] | None = None, *, key: str | None = None, **overrides: Any
    ):
        """The settings of a validated config section (missing keys take the schema's default;
        ``key`` is where the section sits, for messages).

        Unknown keys and floats where integers go are errors naming the key: JSON Schema counts
        3.0 as an integer, and it would fail far downstream (``range(3.0)``).
        """
        key = cls.KEY if key is None else key
        values = {**(section or {}), **overrides}
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(values) - set(names))
        if unknown:
            raise SettingsError(f"{key or 'config'}: unknown setting(s) {unknown}; known: {names}")
        hints = typing.get_type_hints(cls)
        built = {}
        for name, value in values.items():
            where = f"{key}.{name}" if key else name
            nested = _SECTIONS.get(getattr(hints[name], "__name__", ""))
            if nested is not None and isinstance(value, Mapping):
                value = nested.from_section(value, key=where)
            _check_integer(where, hints[name], value)
            built[name] = tuple(value) if isinstance(value, list) else value
        return cls(**built)

    def as_section(self) -> dict[str, Any]:
        """The config section these settings stand for (lists as lists): what lineage hashes."""
        return _plain(dataclasses.asdict(self))


def _check_integer(key: str, hint: Any, value: Any) -> None:
    integer = hint is int or int in typing.get_args(hint)
    values = value if isinstance(value, list | tuple) else [value]
    if integer and any(isinstance(v, float) for v in values):
        raise SettingsError(
            f"{key}: {value!r} is not an integer (write it without a decimal point)"
        )


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


@settings_of("tiny_models")
class TinyModelsSettings(Section):
    """The demo's tiny random models."""

    resolution: int


@settings_of("gallery")
class GallerySettings(Section):
    """The unconditional faces the packing starts from."""

    generator: str
    weights: str
    size: int
    shard_size: int
    batch_size: int
    steps: int
    truncation_psi: float
    noise_mode: str


@settings_of("embedder")
class EmbedderSettings(Section):
    """The recogniser whose space is packed and which re-embeds every crop."""

    backend: str
    weights: str
    batch_size: int


@settings_of("packing")
class PackingSettings(Section):
    """The HyperFace optimisation (Algorithms 1 and 2)."""

    n_identities: int
    init: str
    min_init_distance: float
    alpha: float
    iterations: int
    lr: float
    lr_decay: float
    lr_step: int
    optimizer: str
    batch_size: int | None
    objective: str
    temperature: float
    neighbours: int
    refresh_every: int
    search: str
    chunk_size: int | None
    checkpoint_every: int
    trace_every: int

    def lr_at(self, iteration: int) -> float:
        """The step schedule: ``lr`` times ``lr_decay`` every ``lr_step`` iterations."""
        return self.lr * self.lr_decay ** (iteration // self.lr_step)


@settings_of("generation.realise")
class RealiseSettings(Section):
    """MobileStyleGAN: the search for a face near each packed reference."""

    calls: int
    step: float


@settings_of("generation.variants")
class VariantSettings(Section):
    """MobileStyleGAN: the images of one identity, and the check that keeps them."""

    fine_from_layer: int
    truncation_jitter: float
    yaw: float
    fresh_noise: bool
    accept_far: float
    max_redraws: int


@settings_of("generation")
class GenerationSettings(Section):
    """Images of each packed identity: Arc2Face, or MobileStyleGAN on a CPU."""

    generator: str
    weights: str
    base_model: str
    images_per_identity: int
    beta: float
    identities_per_shard: int
    batch_size: int
    steps: int
    guidance_scale: float
    resolution: int
    realise: RealiseSettings
    variants: VariantSettings


@settings_of("alignment")
class AlignmentSettings(Section):
    """MTCNN to the ArcFace template."""

    size: int
    min_face_prob: float
    fallback: str
    batch_size: int


@settings_of("dataset")
class DatasetSettings(Section):
    """Which aligned images the training set keeps."""

    keep_undetected: bool
    min_reference_cos: float


@settings_of("leakage")
class LeakageSettings(Section):
    """The synthetic images nearest to real faces (HyperFace appendix D)."""

    reference: str | None
    top_k: int
    exclude: bool


@settings_of("quality.judge")
class JudgeSettings(Section):
    """An independent detector and recogniser's verdict on the dataset."""

    backend: str | None
    weights: str
    detector: str
    min_face_score: float
    sample: int


@settings_of("quality")
class QualitySettings(Section):
    judge: JudgeSettings


@settings_of("images.gallery")
class Encoding(Section):
    """How a stage stores its images: ``format`` png (lossless), jpeg or webp, and ``quality``
    (JPEG/WebP 1-100; PNG ignores it and uses fast compression level 1)."""

    format: str
    quality: int

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise SettingsError(
                f"image format must be one of {sorted(FORMATS)}, got {self.format!r}"
            )
        if not 1 <= self.quality <= 100:
            raise SettingsError(f"image quality must be 1-100, got {self.quality}")

    @property
    def suffix(self) -> str:
        return FORMATS[self.format]


FORMATS = {"png": ".png", "jpeg": ".jpg", "webp": ".webp"}


@settings_of("images")
class ImagesSettings(Section):
    """How each stage stores its images inside its shard manifests."""

    gallery: Encoding
    generated: Encoding
    aligned: Encoding
    keep_generated: bool


@settings_of("export")
class ExportSettings(Section):
    """Which exports of the dataset and the model are made."""

    imagefolder: bool
    rec: bool
    model: bool


@settings_of("training")
class TrainingSettings(Section):
    """The recogniser trained on the dataset: backbone, head, optimiser, augmentation, ranks."""

    backbone: str
    width: int
    embedding_size: int
    head: str
    epochs: int
    batch_size: int
    lr: float
    momentum: float
    weight_decay: float
    milestones: tuple[int, ...]
    lr_gamma: float
    flip_prob: float
    crop_prob: float
    low_res_prob: float
    photometric_prob: float
    diversity_weight: float
    workers: int
    shuffle_window: int
    gpus: int
    partial_fc: bool
    sample_rate: float

    def augmentation(self) -> dict[str, float]:
        """The augmentation probabilities, by :func:`hyperface.recognition.augment.augment`'s
        names."""
        names = ("flip_prob", "crop_prob", "low_res_prob", "photometric_prob")
        return {name: getattr(self, name) for name in names}


@settings_of("evaluation")
class EvaluationSettings(Section):
    """The benchmarks and models compared, and the held-out identities."""

    benchmarks: dict[str, str]
    models: dict[str, str]
    holdout_identities: int
    holdout_pairs: int | None
    batch_size: int


@settings_of("")
class Settings(Section):
    """The whole config: one settings object per section."""

    seed: int
    results: str | None
    device: str
    tiny_models: TinyModelsSettings
    gallery: GallerySettings
    embedder: EmbedderSettings
    packing: PackingSettings
    generation: GenerationSettings
    alignment: AlignmentSettings
    dataset: DatasetSettings
    leakage: LeakageSettings
    quality: QualitySettings
    images: ImagesSettings
    export: ExportSettings
    training: TrainingSettings
    evaluation: EvaluationSettings
