"""The demo study through the input rules: canonical tables and QC tables, and the workflow checks."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pandas as pd
import pytest

from gutaxis.io.tables import read_feature_table, read_sheet


def test_canonical_tables_exist_and_are_closed(demo_run):
    taxa = read_feature_table(demo_run / "results/import/taxa.tsv")
    assert taxa.shape[1] > 300
    assert (taxa.sum(axis=1) - 1).abs().max() < 1e-9
    assert all(c.startswith("s__") for c in taxa.columns)
    metabolites = read_feature_table(demo_run / "results/import/metabolites.tsv")
    sheet = read_sheet(demo_run / "results/inputs/samples.tsv")
    types = sheet.set_index("sample_id")["sample_type"]
    assert {"qc", "blank"} <= set(types[metabolites.index])
    immune = read_feature_table(demo_run / "results/import/immune.tsv")
    assert set(types[immune.index]) == {"blood"}
    annotations = pd.read_csv(demo_run / "results/import/metabolites.features.tsv", sep="\t", index_col=0)
    assert list(annotations.index) == list(metabolites.columns)
    assert {"name", "mz", "rt"} <= set(annotations.columns)


def test_every_sheet_sample_has_a_fate_per_modality(demo_run):
    status = read_sheet(demo_run / "results/qc/samples.tsv")
    sheet = read_sheet(demo_run / "results/inputs/samples.tsv")
    stool = set(sheet.loc[sheet["sample_type"] == "stool", "sample_id"])
    for modality in ("taxa", "metabolites"):
        rows = status[(status["modality"] == modality) & (status["sample_type"] == "stool")]
        assert set(rows["sample_id"]) == stool
    dropped = status[status["status"] == "dropped"]
    assert (dropped["reason"] != "").all()
    kept = status[status["status"] == "kept"]
    assert (kept["reason"] == "").all()
    # the kept rows are exactly the rows of the canonical tables
    for modality in ("taxa", "metabolites", "immune"):
        table = read_feature_table(demo_run / f"results/import/{modality}.tsv")
        assert set(kept.loc[kept["modality"] == modality, "sample_id"]) == set(table.index)


def test_demo_gaps_are_reported_with_reasons(demo_run):
    status = read_sheet(demo_run / "results/qc/samples.tsv").set_index(["modality", "sample_id"])
    reasons = status["reason"]
    failed = [s for (m, s), r in reasons.items() if m == "taxa" and "no classified reads" in r]
    assert len(failed) == 1
    resequenced = [s for (m, s), r in reasons.items() if m == "taxa" and r.startswith("duplicate of")]
    assert len(resequenced) == 1
    assert reasons[("taxa", resequenced[0])].startswith(f"duplicate of {resequenced[0]}_reseq")
    # the original aliquot's metabolome is kept: the re-run exists only as a metagenome
    assert status.loc[("metabolites", resequenced[0]), "status"] == "kept"
    pairing = read_sheet(demo_run / "results/qc/pairing.tsv")
    taxa = pairing[pairing["modality"] == "taxa"]
    subjects = read_sheet(demo_run / "results/inputs/subjects.tsv")
    assert len(taxa) == len(subjects) == 48
    unpaired = set(taxa.loc[taxa["paired_post_vs_baseline"] == "no", "subject_id"])
    failed_subject = failed[0].split("_")[0]
    assert failed_subject in unpaired
    assert 1 <= len(unpaired) <= 4
    progression = pairing[pairing["progression"] != ""]
    assert len(progression) > 0


def test_sampling_figure_in_every_format(demo_run):
    for fmt in ("pdf", "svg", "png"):
        path = demo_run / f"results/figures/qc/sampling.{fmt}"
        assert path.stat().st_size > 1000
    svg = (demo_run / "results/figures/qc/sampling.svg").read_text()
    assert "<text" in svg  # text stays editable
    assert (demo_run / "results/figures/qc/sampling.source.tsv").is_file()


def test_nothing_left_to_do_after_the_run(demo_run):
    from conftest import run_snakemake

    result = run_snakemake(demo_run, "-n")
    assert result.returncode == 0, result.stderr
    assert "Nothing to be done" in result.stdout + result.stderr


def test_snakemake_lint_is_clean(repo):
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "--lint"], cwd=repo, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Congratulations" in result.stdout + result.stderr or "good condition" in (result.stdout + result.stderr)


@pytest.mark.skipif(shutil.which("snakefmt") is None, reason="snakefmt not installed")
def test_snakefmt_check_is_clean(repo):
    result = subprocess.run(["snakefmt", "--check", "."], cwd=repo, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
