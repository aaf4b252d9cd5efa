"""The pins in requirements.txt, environment.yml and workflow/envs/*.yaml agree, and every rule has log: and conda:."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
ENV_FILES = sorted((REPO / "workflow" / "envs").glob("*.yaml"))
# conda and PyPI spell a few names differently
PYPI_TO_CONDA = {"pyyaml": "pyyaml"}


def requirement_pins() -> dict[str, str]:
    pins = {}
    for line in (REPO / "requirements.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        name, sep, version = line.partition("==")
        assert sep, f"requirements.txt: '{line}' is not pinned with =="
        pins[PYPI_TO_CONDA.get(name.lower(), name.lower())] = version
    return pins


def conda_pins(path: Path) -> dict[str, str]:
    env = yaml.safe_load(path.read_text())
    assert env["channels"] == ["conda-forge", "bioconda", "nodefaults"], f"{path.name}: channels"
    pins = {}
    for dep in env["dependencies"]:
        assert isinstance(dep, str), f"{path.name}: nested pip section not allowed: {dep}"
        match = re.fullmatch(r"([A-Za-z0-9_.\-]+)=([0-9][^=<>\s]*)", dep)
        assert match, f"{path.name}: '{dep}' is not pinned exactly (name=version)"
        pins[match.group(1).lower()] = match.group(2)
    return pins


def test_requirements_and_environment_yml_pin_the_same_versions():
    req = requirement_pins()
    env = conda_pins(REPO / "environment.yml")
    env.pop("python")
    assert env == req


@pytest.mark.parametrize("path", ENV_FILES, ids=[p.name for p in ENV_FILES])
def test_rule_env_pins_equal_requirements(path):
    req = requirement_pins()
    pins = conda_pins(path)
    assert pins.pop("python") == "3.11"
    assert pins, f"{path.name} pins nothing"
    for name, version in pins.items():
        assert name in req, f"{path.name}: {name} is not in requirements.txt"
        assert version == req[name], f"{path.name}: {name}={version} but requirements.txt has {req[name]}"


def rule_blocks():
    for smk in sorted((REPO / "workflow" / "rules").glob("*.smk")):
        text = smk.read_text()
        for match in re.finditer(r"^(?:rule|checkpoint) (\w+):\n((?:[ \t]+.*\n|\n)*)", text, re.M):
            yield smk.name, match.group(1), match.group(2)


RULES = list(rule_blocks())


def test_rules_exist():
    assert len(RULES) >= 3


@pytest.mark.parametrize("smk,name,body", RULES, ids=[f"{s}:{n}" for s, n, _ in RULES])
def test_every_rule_has_log_and_conda(smk, name, body):
    assert re.search(r"^\s+log:", body, re.M), f"{smk}: rule {name} has no log:"
    match = re.search(r"^\s+conda:\s*\n\s+\"([^\"]+)\"", body, re.M)
    assert match, f"{smk}: rule {name} has no conda:"
    env = (REPO / "workflow" / "rules" / match.group(1)).resolve()
    assert env.is_file(), f"{smk}: rule {name} points at missing env {env}"
