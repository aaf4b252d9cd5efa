"""Check a gutaxis config against its schema, fill in defaults, check its meaning."""

from __future__ import annotations

import copy

import jsonschema

from gutaxis.io.design import RESPONSE_TYPES
from gutaxis.io.errors import InputError, Problem
from gutaxis.io.sheets import load_schema

CONFIG_LABEL = "config"
#: the demo study's folder: a user's config must not point into it
DEMO_DIR = "resources/demo/"


def _resolve(schema: dict, root: dict) -> dict:
    ref = schema.get("$ref")
    if ref and ref.startswith("#/$defs/"):
        return root["$defs"][ref.split("/")[-1]]
    return schema


def fill_defaults(value, schema: dict, root: dict):
    """Return ``value`` with every missing key set to its schema default, recursively.

    Objects named under ``properties`` get their defaults; objects matched by
    ``additionalProperties`` (e.g. each modality) are filled from that schema.
    """
    schema = _resolve(schema, root)
    if isinstance(value, dict) and schema.get("type") == "object":
        out = dict(value)
        for key, sub in schema.get("properties", {}).items():
            sub = _resolve(sub, root)
            if key not in out and "default" in sub:
                out[key] = copy.deepcopy(sub["default"])
            if key in out:
                out[key] = fill_defaults(out[key], sub, root)
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            for key in out:
                if key not in schema.get("properties", {}):
                    out[key] = fill_defaults(out[key], extra, root)
        return out
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [fill_defaults(item, schema["items"], root) for item in value]
    return value


def _where(error: jsonschema.ValidationError) -> str:
    path = ".".join(str(p) for p in error.absolute_path)
    return f"key '{path}'" if path else "top level"


def schema_problems(config: dict, schema: dict) -> list[Problem]:
    """Every schema violation of the config as a Problem naming the key."""
    validator = jsonschema.Draft202012Validator(schema)
    problems = []
    for error in sorted(validator.iter_errors(config), key=lambda e: list(map(str, e.absolute_path))):
        if error.validator == "additionalProperties":
            valid = list(error.schema.get("properties", {}))
            fix = (f"remove or rename the key; valid keys here: {', '.join(valid)}" if valid else
                   "remove or rename the key (see workflow/schemas/config.schema.yaml for valid keys)")
        elif error.validator == "enum":
            fix = "use one of " + ", ".join(map(str, error.validator_value))
        elif error.validator == "required":
            fix = "add the key; config/config.yaml shows an example"
        else:
            fix = "see the key's description in workflow/schemas/config.schema.yaml"
        problems.append(Problem(CONFIG_LABEL, _where(error), error.message, fix))
    return problems


def meaning_problems(config: dict) -> list[Problem]:
    """Cross-key checks the schema cannot express."""
    problems = []
    design = config["design"]
    timepoints = design["timepoints"]
    if design["baseline"] not in timepoints:
        problems.append(
            Problem(
                CONFIG_LABEL,
                "key 'design.baseline'",
                f"'{design['baseline']}' is not in design.timepoints",
                f"use one of {', '.join(timepoints)}",
            )
        )
    names = [c["name"] for c in design["contrasts"]]
    for i, contrast in enumerate(design["contrasts"]):
        for side in ("pre", "post"):
            if contrast[side] not in timepoints:
                problems.append(
                    Problem(
                        CONFIG_LABEL,
                        f"key 'design.contrasts.{i}.{side}'",
                        f"'{contrast[side]}' is not in design.timepoints",
                        f"use one of {', '.join(timepoints)}",
                    )
                )
        if contrast["pre"] == contrast["post"]:
            problems.append(
                Problem(
                    CONFIG_LABEL,
                    f"key 'design.contrasts.{i}'",
                    "pre and post are the same timepoint",
                    "choose two different timepoints",
                )
            )
    if len(set(names)) != len(names):
        problems.append(
            Problem(CONFIG_LABEL, "key 'design.contrasts'", "contrast names repeat", "give each contrast a unique name")
        )
    response = config["response"]
    # a study without response never reads it (the plan says so); a stale name is harmless there
    if (response["primary"] and response["primary"] not in response["definitions"]
            and config["design"]["study_type"] in RESPONSE_TYPES):
        problems.append(
            Problem(
                CONFIG_LABEL,
                "key 'response.primary'",
                f"'{response['primary']}' is not one of response.definitions",
                f"use one of {', '.join(response['definitions']) or '(none defined)'} or leave it empty",
            )
        )
    diversity = config.get("diversity", {})
    primary_metric = diversity.get("primary_metric")
    if primary_metric and primary_metric not in diversity.get("beta_metrics", []):
        problems.append(
            Problem(
                CONFIG_LABEL,
                "key 'diversity.primary_metric'",
                f"'{primary_metric}' is not one of diversity.beta_metrics",
                f"use one of {', '.join(diversity.get('beta_metrics', []))} or add it to diversity.beta_metrics",
            )
        )
    for key in ("samples", "subjects"):
        if not config[key]:
            problems.append(
                Problem(
                    CONFIG_LABEL,
                    f"key '{key}'",
                    f"no {'sample sheet' if key == 'samples' else 'subjects table'} is given",
                    f"set {key}: <path of your {key} table> (config/README.md describes its columns)",
                )
            )
    problems.extend(demo_path_problems(config))
    if not config["modalities"]:
        problems.append(
            Problem(CONFIG_LABEL, "key 'modalities'", "no omics table is configured", "add at least one modality")
        )
    return problems


def _input_paths(config: dict) -> list[tuple[str, str]]:
    """(config key, path) of every input file the config names."""
    paths = [(key, config.get(key) or "") for key in ("samples", "subjects", "adverse_events")]
    for name, spec in config["modalities"].items():
        path = spec.get("path") or ""
        if isinstance(path, list):  # a list of files: each named by its position
            paths += [(f"modalities.{name}.path.{i}", p) for i, p in enumerate(path)]
        else:
            paths.append((f"modalities.{name}.path", path))
    return [(key, str(path)) for key, path in paths if path]


def demo_path_problems(config: dict) -> list[Problem]:
    """A user's config (its sample sheet is not the demo's) whose other inputs still point
    into the demo study: the config was copied from the demo and one path was missed."""
    samples = str(config.get("samples") or "")
    if not samples or DEMO_DIR in samples.replace("\\", "/"):
        return []
    return [
        Problem(
            CONFIG_LABEL,
            f"key '{key}'",
            f"'{path}' is the demo study's file, but the sample sheet is yours ({samples})",
            f"point {key} at your own file (or remove the modality)",
        )
        for key, path in _input_paths(config)
        if DEMO_DIR in path.replace("\\", "/")
    ]


def validate_config(config: dict) -> dict:
    """Validate a config dict and return a copy with every default filled in.

    Raises
    ------
    InputError
        Listing every schema violation (or, when the schema passes, every
        cross-key problem such as a contrast naming an undeclared timepoint).
    """
    schema = load_schema("config")
    problems = schema_problems(config, schema)
    if problems:
        raise InputError(problems)
    filled = fill_defaults(config, schema, schema)
    problems = meaning_problems(filled)
    if problems:
        raise InputError(problems)
    return filled
