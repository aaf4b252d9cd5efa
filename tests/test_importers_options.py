"""Every importer option is documented: schema and config/README.md list exactly the readers' keywords."""

from __future__ import annotations

import inspect
import re

import pytest

from conftest import REPO
from gutaxis.io.configuration import validate_config
from gutaxis.io.errors import InputError
from gutaxis.io.importers import READERS
from gutaxis.io.sheets import load_schema

#: options the workflow reads itself (gutaxis.io.study.import_modality), for every format
WORKFLOW_OPTIONS = {"sample_id_column"}
SCHEMA = load_schema("config")
FORMATS = SCHEMA["$defs"]["modality"]["properties"]["format"]["enum"]


def reader_keywords(fmt: str) -> dict:
    params = inspect.signature(READERS[fmt]).parameters.values()
    return {p.name: p.default for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY}


def documented(fmt: str) -> dict:
    props = SCHEMA["$defs"][f"options_{fmt}"]["properties"]
    out = {}
    for name, prop in props.items():
        if "$ref" in prop:
            prop = SCHEMA["$defs"][prop["$ref"].split("/")[-1]]
        out[name] = prop
    return out


@pytest.mark.parametrize("fmt", FORMATS)
def test_schema_options_are_the_readers_keywords_with_their_defaults(fmt):
    keywords = reader_keywords(fmt)
    props = documented(fmt)
    assert set(props) == set(keywords) | WORKFLOW_OPTIONS
    for name, default in keywords.items():
        prop = props[name]
        assert prop.get("description"), f"{fmt}.{name} has no description"
        assert "default" in prop, f"{fmt}.{name} has no default"
        expected = list(default) if isinstance(default, tuple) else default
        assert prop["default"] == expected, f"{fmt}.{name}: schema {prop['default']!r} != reader {expected!r}"
        if "enum" in prop:
            assert default in prop["enum"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_readme_lists_every_option_of_every_format(fmt):
    readme = (REPO / "config" / "README.md").read_text()
    match = re.search(rf"^#### `{fmt}`.*?(?=^#### |^### |\Z)", readme, flags=re.M | re.S)
    assert match, f"config/README.md has no section for format {fmt}"
    listed = set(re.findall(r"^\| `([a-z_]+)` \|", match.group(0), flags=re.M))
    assert listed == set(documented(fmt))


def _config(options, fmt="immune"):
    return {"samples": "s.tsv", "subjects": "p.tsv",
            "modalities": {"flow": {"kind": "immune", "format": fmt, "path": "f.tsv",
                                    "sample_type": "blood", "options": options}}}


def test_an_unknown_option_is_named_with_the_valid_ones():
    with pytest.raises(InputError) as err:
        validate_config(_config({"units": "percent", "orientaton": "subsets_as_rows"}))
    message = str(err.value)
    assert "modalities.flow.options" in message and "'orientaton' was unexpected" in message
    assert "valid keys here:" in message and "orientation" in message and "na_values" in message
    # options of another format are not valid here
    with pytest.raises(InputError):
        validate_config(_config({"units": "percent", "rank": "species"}))


def test_option_values_are_checked_against_their_choices():
    with pytest.raises(InputError) as err:
        validate_config(_config({"units": "percent", "orientation": "sideways"}))
    assert "subsets_as_rows" in str(err.value)
    # options are not filled with defaults: the import job's params stay as written
    filled = validate_config(_config({"units": "percent"}))
    assert filled["modalities"]["flow"]["options"] == {"units": "percent"}


def test_path_may_be_a_list_of_files():
    config = _config({"units": "percent"})
    config["modalities"]["flow"]["path"] = ["a.tsv", "b.tsv"]
    assert validate_config(config)["modalities"]["flow"]["path"] == ["a.tsv", "b.tsv"]
    config["modalities"]["flow"]["path"] = []
    with pytest.raises(InputError):
        validate_config(config)


def test_metaphlan_ranks_in_the_schema_are_those_the_reader_knows():
    from gutaxis.io.importers._common import RANK_ALIASES

    assert set(documented("metaphlan")["rank"]["enum"]) == set(RANK_ALIASES)
