"""The config against its schema: every problem at once, one line each, naming the key.

JSON Schema as Snakemake's ``validate`` applies it stops at the first error and prints the whole
schema; it also takes 3.0 for an integer. Here each problem is one line (``training.epochs: 3.0
is not an integer``), an unknown key gets the nearest known one (``packing.lr_steps: unknown key;
did you mean packing.lr_step?``), and values that ``--config`` passes as text (``--config
'packing={"n_identities": 50000}'`` gives the string "50000") are read as YAML first when the
schema wants a number or a boolean.
"""

from __future__ import annotations

import difflib
from typing import Any

import jsonschema
import yaml

SCALARS = {"integer": int, "number": (int, float), "boolean": bool, "null": type(None)}


def config_problems(config: dict[str, Any], schema: dict[str, Any]) -> list[str]:
    """Every way ``config`` breaks ``schema``, one line each (none: it is valid). Text values
    where the schema wants a number or a boolean are converted in place first."""
    coerce_text(config, schema)
    validator = jsonschema.Draft202012Validator(schema)
    problems = []
    for error in sorted(
        validator.iter_errors(config), key=lambda e: [str(p) for p in e.absolute_path]
    ):
        problems += describe(error)
    problems += floats_for_integers(config, schema)
    return sorted(dict.fromkeys(problems))


def refusal(problems: list[str]) -> str:
    """The message a run with a bad config stops with."""
    many = "s" * (len(problems) > 1)
    return f"invalid config ({len(problems)} problem{many}):\n  " + "\n  ".join(problems)


def describe(error: jsonschema.ValidationError) -> list[str]:
    """One line per problem of a schema error, led by the dotted key."""
    key = ".".join(str(p) for p in error.absolute_path)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        known = list(error.schema.get("properties", {}))
        return [
            unknown_key(key, extra, known) for extra in sorted(set(error.instance) - set(known))
        ]
    if error.validator == "enum":
        return [f"{key}: {error.instance!r} is not one of {error.validator_value}"]
    if error.validator == "type":
        wanted = error.validator_value
        wanted = " or ".join(wanted) if isinstance(wanted, list) else wanted
        return [f"{key or 'config'}: {error.instance!r} is not of type {wanted}"]
    message = error.message if len(error.message) < 160 else error.message[:157] + "..."
    return [f"{key or 'config'}: {message}"]


def unknown_key(section: str, key: str, known: list[str]) -> str:
    where = f"{section}.{key}" if section else key
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    if close:
        hint = f"{section}.{close[0]}" if section else close[0]
        return f"{where}: unknown key; did you mean {hint}?"
    return f"{where}: unknown key; known keys here: {', '.join(known)}"


def _properties(schema: dict[str, Any], config: Any):
    """(key, value, property schema) of each known key of a config section."""
    if not isinstance(config, dict):
        return
    for key, prop in schema.get("properties", {}).items():
        if key in config:
            yield key, config[key], prop


def coerce_text(config: Any, schema: dict[str, Any]) -> None:
    """Read text values as YAML where the schema wants an integer, a number or a boolean."""
    for key, value, prop in _properties(schema, config):
        if isinstance(value, str):
            kinds = prop.get("type", [])
            kinds = kinds if isinstance(kinds, list) else [kinds]
            wanted = tuple(t for k in kinds if k in SCALARS for t in _types(SCALARS[k]))
            if wanted:
                parsed = _yaml_scalar(value)
                if isinstance(parsed, wanted) and not (
                    isinstance(parsed, bool) and bool not in wanted
                ):
                    config[key] = parsed
        else:
            coerce_text(value, prop)


def floats_for_integers(config: Any, schema: dict[str, Any], prefix: str = "") -> list[str]:
    """JSON Schema counts 3.0 as an integer; the code that uses it (``range(3.0)``) does not."""
    found = []
    for key, value, prop in _properties(schema, config):
        where = f"{prefix}{key}"
        kinds = prop.get("type", [])
        items = prop.get("items", {}).get("type")
        if "integer" in (kinds if isinstance(kinds, list) else [kinds]) and isinstance(
            value, float
        ):
            found.append(f"{where}: {value!r} is not an integer (write it without a decimal point)")
        elif (
            items == "integer"
            and isinstance(value, list)
            and any(isinstance(v, float) for v in value)
        ):
            found.append(f"{where}: {value!r} holds a number that is not an integer")
        else:
            found += floats_for_integers(value, prop, f"{where}.")
    return found


def _types(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def _yaml_scalar(text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text
