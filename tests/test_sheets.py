"""Sheet checks, config defaults, duplicate resolution and the sampling QC tables."""

from __future__ import annotations

import pandas as pd
import pytest
import yaml

from gutaxis.io.configuration import validate_config
from gutaxis.io.errors import InputError
from gutaxis.io.sample_qc import not_analysed_summary, pairing_table, sample_status
from gutaxis.io.sheets import resolve_duplicate_samples


def sheet(rows):
    return pd.DataFrame(rows, columns=["sample_id", "subject_id", "timepoint", "sample_type"], dtype=str)


def test_defaults_are_filled_for_every_modality(repo):
    config = {
        "samples": "s.tsv",
        "subjects": "p.tsv",
        "modalities": {"taxa": {"kind": "taxonomy", "format": "metaphlan", "path": "t.txt", "sample_type": "stool"}},
    }
    filled = validate_config(config)
    assert filled["modalities"]["taxa"]["transform"] == "none"
    assert filled["modalities"]["taxa"]["options"] == {}
    assert filled["design"]["duplicates"] == "last"
    assert filled["style"]["formats"] == ["pdf", "svg", "png"]
    assert filled["seed"] == 20261122


def test_shipped_config_is_valid(repo):
    config = yaml.safe_load((repo / "config" / "config.yaml").read_text())
    filled = validate_config(config)
    assert filled["response"]["primary"] in filled["response"]["definitions"]


def test_every_schema_key_has_description_and_default(repo):
    """Every named key (a property anywhere in a schema) documents itself and its default."""

    def walk(node, path, named):
        if not isinstance(node, dict):
            return
        if named and "$ref" not in node:
            assert "description" in node, f"{path} has no description"
            assert "default" in node, f"{path} has no default"
        for name, sub in node.get("properties", {}).items():
            walk(sub, f"{path}.{name}", True)
        for key in ("items", "additionalProperties"):
            walk(node.get(key), f"{path}.{key}", False)
        for name, sub in node.get("$defs", {}).items():
            walk(sub, f"{path}.$defs.{name}", True)

    schemas = sorted((repo / "workflow" / "schemas").glob("*.schema.yaml"))
    assert len(schemas) >= 4
    for schema_file in schemas:
        walk(yaml.safe_load(schema_file.read_text()), schema_file.name, False)


def test_duplicates_keep_last_and_record_the_reason():
    samples = sheet(
        [
            ["A_pre", "A", "baseline", "stool"],
            ["A_pre_reseq", "A", "baseline", "stool"],
            ["A_pre_BL", "A", "baseline", "blood"],
            ["QC1", "", "", "qc"],
            ["QC2", "", "", "qc"],
        ]
    )
    kept, dropped = resolve_duplicate_samples(samples, "last", "samples.tsv")
    assert list(kept["sample_id"]) == ["A_pre_reseq", "A_pre_BL", "QC1", "QC2"]
    assert list(dropped["sample_id"]) == ["A_pre"]
    assert "A_pre_reseq" in dropped.loc[0, "reason"]
    kept_first, dropped_first = resolve_duplicate_samples(samples, "first", "samples.tsv")
    assert list(dropped_first["sample_id"]) == ["A_pre_reseq"]
    with pytest.raises(InputError, match="share a subject and timepoint"):
        resolve_duplicate_samples(samples, "error", "samples.tsv")


def test_sample_status_and_pairing():
    samples = sheet(
        [
            ["A1", "A", "baseline", "stool"],
            ["A2", "A", "post", "stool"],
            ["B1", "B", "baseline", "stool"],
            ["B2", "B", "post", "stool"],
            ["C1", "C", "baseline", "stool"],
        ]
    )
    modalities = {
        "taxa": {
            "sample_type": "stool",
            "kept": ["A1", "A2", "B1", "C1"],
            "dropped": pd.DataFrame({"sample_id": ["B2"], "reason": ["failed sample"]}),
        },
        "immune": {
            "sample_type": "blood",
            "kept": [],
            "dropped": pd.DataFrame({"sample_id": [], "reason": []}),
        }
    }
    status = sample_status(samples, modalities)
    assert dict(zip(status["sample_id"], status["status"])) == {
        "A1": "kept", "A2": "kept", "B1": "kept", "B2": "dropped", "C1": "kept"
    }
    assert status.set_index("sample_id").loc["B2", "reason"] == "failed sample"
    assert set(status["modality"]) == {"taxa"}
    subjects = pd.DataFrame({"subject_id": ["A", "B", "C", "D"], "cohort": ["x", "x", "y", "y"]})
    pairing = pairing_table(
        status, subjects, ["baseline", "post"], [{"name": "post_vs_baseline", "pre": "baseline", "post": "post"}]
    ).set_index("subject_id")
    assert pairing["paired_post_vs_baseline"].to_dict() == {"A": "yes", "B": "no", "C": "no", "D": "no"}
    assert pairing.loc["B", "post"] == ""
    assert pairing.loc["D", "n_timepoints"] == 0


def test_excluded_samples_get_their_reason_and_the_end_of_run_summary_counts_causes():
    samples = sheet([["A1", "A", "baseline", "stool"], ["A2", "A", "post", "stool"],
                     ["B1", "B", "baseline", "stool"], ["B2", "B", "post", "stool"]])
    excluded = pd.DataFrame({"sample_id": ["C1"], "subject_id": ["C"], "timepoint": ["baseline"],
                             "sample_type": ["stool"], "reason": ["excluded in the sample sheet: spoilt"]})
    modalities = {"taxa": {"sample_type": "stool", "kept": ["A1", "A2"],
                           "dropped": pd.DataFrame({"sample_id": ["B1", "B2"],
                                                    "reason": ["duplicate of X (kept last)",
                                                               "duplicate of Y (kept last)"]})},
                  "immune": {"sample_type": "blood", "kept": [],
                             "dropped": pd.DataFrame({"sample_id": [], "reason": []})}}
    status = sample_status(samples, modalities, excluded)
    row = status.set_index("sample_id").loc["C1"]
    assert (row["status"], row["modality"], row["reason"]) == ("excluded", "taxa", "excluded in the sample sheet: spoilt")
    # the blood modality has no stool sample: the excluded stool sample is not listed there
    assert "immune" not in set(status["modality"])
    lines = not_analysed_summary(status)
    # two duplicates are one cause; the excluded sample is another
    assert lines == ["taxa: 3 of 5 samples not analysed: duplicate sample (kept last) (2); excluded in the sample sheet: spoilt (1)"]
    assert not_analysed_summary(status[status["status"] == "kept"]) == []
