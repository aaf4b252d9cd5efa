"""The bad-input corpus: every broken study gets one clear message, never a traceback.

Each folder of tests/data/bad/ holds a case.yaml (what is broken, the message
fragments that must appear, an optional config patch) and the files that
replace the tiny valid study in tests/data/good/.
"""

from __future__ import annotations

import copy
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from gutaxis.io.errors import InputError
from gutaxis.io.study import validate_study

DATA = Path(__file__).resolve().parent / "data"
CASES = sorted(p.name for p in (DATA / "bad").iterdir() if (p / "case.yaml").is_file())


def deep_merge(base: dict, patch: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def build_case(name: str, target: Path) -> tuple[dict, dict]:
    shutil.copytree(DATA / "good", target, dirs_exist_ok=True)
    case_dir = DATA / "bad" / name
    spec = yaml.safe_load((case_dir / "case.yaml").read_text())
    for path in case_dir.iterdir():
        if path.name != "case.yaml":
            shutil.copy(path, target / path.name)
    config = yaml.safe_load((target / "config.yaml").read_text())
    config = deep_merge(config, spec.get("config", {}))
    return config, spec


def test_corpus_is_large_enough():
    assert len(CASES) >= 25


def test_the_good_study_is_valid(tmp_path, monkeypatch):
    shutil.copytree(DATA / "good", tmp_path, dirs_exist_ok=True)
    monkeypatch.chdir(tmp_path)
    study = validate_study(yaml.safe_load(Path("config.yaml").read_text()))
    assert set(study["modalities"]) == {"taxa", "metabolites", "immune"}
    taxa = study["modalities"]["taxa"].table
    assert taxa.shape == (8, 5)
    assert abs(taxa.sum(axis=1) - 1).max() < 1e-12
    # QC pool and blank stay in the metabolome table for the QC filters
    assert {"QC01", "BLANK01"} <= set(study["modalities"]["metabolites"].table.index)


@pytest.mark.parametrize("name", CASES)
def test_bad_input_gives_a_clear_message(name, tmp_path, monkeypatch):
    config, spec = build_case(name, tmp_path)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InputError) as caught:
        validate_study(config)
    message = str(caught.value)
    for fragment in spec["expect"]:
        assert fragment in message, f"{name}: {fragment!r} not in\n{message}"
    for fragment in spec.get("absent", []):
        assert fragment not in message, f"{name}: {fragment!r} should not be in\n{message}"
    # every problem says how to fix it
    assert all(p.fix for p in caught.value.problems)
    assert "Traceback" not in message


#: cases whose problem the dry run finds (the config, the sheets, or the tables' preflight)
DRY_RUN_CASES = ["samples_undeclared_timepoint", "config_bad_transform", "immune_subsets_as_rows",
                 "metabolome_semicolon_separated", "taxa_truncated_file", "bracken_truncated_file",
                 "immune_fraction_declared_percent", "config_path_is_directory", "subjects_pfs2_na"]


@pytest.mark.parametrize("name", DRY_RUN_CASES)
def test_snakemake_prints_the_message_without_a_traceback(name, tmp_path, repo):
    config, spec = build_case(name, tmp_path)
    (tmp_path / "case_config.yaml").write_text(yaml.safe_dump(config))
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--snakefile", str(repo / "Snakefile"),
         "--directory", str(tmp_path), "--configfile", str(tmp_path / "case_config.yaml")],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode != 0
    for fragment in spec["expect"]:
        assert fragment in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    # one line per problem, printed once
    lines = [line for line in result.stderr.splitlines() if line.startswith("  - ")]
    assert lines and len(lines) == len(set(lines)), result.stderr
    assert all(line.count(". Fix: ") == 1 for line in lines)
