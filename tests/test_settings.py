"""The settings classes and the config schema say the same thing, both ways."""

from __future__ import annotations

import dataclasses

import pytest
import yaml

from hyperface.settings import (
    Settings,
    SettingsError,
    TrainingSettings,
    section_schema,
)

from .conftest import REPO

SIMPLE_TYPES = {"integer": "int", "number": "float", "boolean": "bool", "string": "str"}


def expected_type(prop: dict, nested: type | None) -> str:
    """The annotation a schema property calls for."""
    if nested is not None:
        return nested.__name__
    if "enum" in prop:
        return "str | None" if None in prop["enum"] else "str"
    kind = prop["type"]
    if kind == "array":
        return f"tuple[{SIMPLE_TYPES[prop['items']['type']]}, ...]"
    if kind == "object":
        return "dict[str, str]"
    if isinstance(kind, list):
        names = [SIMPLE_TYPES[k] for k in kind if k != "null"]
        return " | ".join(names) + (" | None" if "null" in kind else "")
    return SIMPLE_TYPES[kind]


def sections(cls: type = Settings) -> list[type]:
    """``cls`` and every settings class nested in it."""
    found = [cls]
    for field in dataclasses.fields(cls):
        default = (
            field.default_factory() if field.default_factory is not dataclasses.MISSING else None
        )
        if dataclasses.is_dataclass(default):
            found += sections(type(default))
    return found


@pytest.mark.parametrize(
    "cls", sorted(set(sections()), key=lambda c: c.KEY), ids=lambda c: c.KEY or "config"
)
def test_every_schema_key_is_a_field_of_the_same_type_and_default(cls):
    props = section_schema(cls.KEY)["properties"]
    fields = {f.name: f for f in dataclasses.fields(cls)}
    assert sorted(fields) == sorted(props), f"{cls.__name__} fields vs schema keys of {cls.KEY!r}"
    instance = cls()
    for name, prop in props.items():
        value = getattr(instance, name)
        nested = type(value) if dataclasses.is_dataclass(value) else None
        assert fields[name].type == expected_type(prop, nested), f"{cls.KEY}.{name}"
        if nested is None:
            default = prop["default"]
            assert value == (tuple(default) if isinstance(default, list) else default), (
                f"{cls.KEY}.{name}"
            )
        else:
            assert value == nested.from_section(prop["default"]), f"{cls.KEY}.{name}"


def test_encoding_sections_share_one_schema():
    """images.{gallery,generated,aligned} are one YAML anchor, hence one Encoding class."""
    assert section_schema("images.generated") == section_schema("images.gallery")
    assert section_schema("images.aligned") == section_schema("images.gallery")


def test_a_config_round_trips_through_its_settings():
    """as_section gives back the validated section: what lineage hashes is unchanged."""
    from snakemake.utils import validate

    for name in ("config.yaml", "paper.yaml", "large.yaml"):
        config = yaml.safe_load((REPO / "config" / name).read_text())
        validate(config, str(REPO / "workflow/schemas/config.schema.yaml"))
        assert Settings.from_section(config).as_section() == config, name


def test_library_defaults_are_the_workflows():
    """Drifted once (crop_prob 0.2 in the schema, 0.0 in training.py): now there is one place."""
    training = TrainingSettings()
    assert (training.crop_prob, training.milestones, training.batch_size) == (
        0.2,
        (12, 20, 24),
        256,
    )


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"training": {"epochs": 3.0}}, "training.epochs: 3.0 is not an integer"),
        (
            {"generation": {"identities_per_shard": 10.0}},
            "generation.identities_per_shard: 10.0 is not",
        ),
        ({"training": {"milestones": [2.0]}}, "training.milestones: [2.0] is not an integer"),
        ({"images": {"aligned": {"quality": 90.0}}}, "images.aligned.quality: 90.0 is not"),
        ({"packing": {"lr_steps": 5}}, "packing: unknown setting(s) ['lr_steps']"),
    ],
)
def test_bad_values_name_their_key(section, message):
    with pytest.raises(SettingsError) as err:
        Settings.from_section(section)
    assert message in str(err.value)


def test_settings_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        TrainingSettings().epochs = 3
