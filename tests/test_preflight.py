"""Checks before any job, lists of files, sample ids from another sheet column, and the
messages of a real run printed once."""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import REPO
from gutaxis.io import preflight as pf
from gutaxis.io.configuration import validate_config
from gutaxis.io.errors import InputError
from gutaxis.io.importers import read_table
from gutaxis.io.study import load_study, validate_study

DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture
def study(tmp_path, monkeypatch):
    """The tiny valid study in a fresh working directory; returns its config."""
    shutil.copytree(DATA / "good", tmp_path, dirs_exist_ok=True)
    monkeypatch.chdir(tmp_path)
    return yaml.safe_load((tmp_path / "config.yaml").read_text())


def write_plain(path: Path, table: pd.DataFrame) -> None:
    """features x samples, header cell 'OTU ID' as the ICI per-cohort tables have it."""
    table.rename_axis("OTU ID").to_csv(path, sep="\t")


# ----------------------------------------------------------------------- lists of files


def test_a_list_of_files_is_joined_absent_features_are_zero(tmp_path):
    a = pd.DataFrame({"S1": [60.0, 40.0], "S2": [10.0, 90.0]}, index=["f1", "f2"])
    b = pd.DataFrame({"S3": [25.0, 75.0]}, index=["f2", "f3"])
    write_plain(tmp_path / "a.tsv", a)
    write_plain(tmp_path / "b.tsv", b)
    res = read_table([tmp_path / "a.tsv", tmp_path / "b.tsv"], "plain", units="percent")
    expected = pd.DataFrame({"f1": [0.6, 0.1, 0.0], "f2": [0.4, 0.9, 0.25], "f3": [0.0, 0.0, 0.75]},
                            index=["S1", "S2", "S3"])
    np.testing.assert_allclose(res.table.loc[expected.index, expected.columns], expected)
    assert res.notes["n_files"] == 2 and res.notes["absent_feature_value"] == "0"
    # the same list read twice gives the same table, byte for byte
    again = read_table([tmp_path / "a.tsv", tmp_path / "b.tsv"], "plain", units="percent")
    assert again.table.to_csv() == res.table.to_csv()


def test_metabolites_absent_from_one_file_are_missing_not_zero(tmp_path):
    pd.DataFrame({"S1": [5.0, 7.0]}, index=["m1", "m2"]).rename_axis("id").to_csv(tmp_path / "a.tsv", sep="\t")
    pd.DataFrame({"S2": [3.0]}, index=["m1"]).rename_axis("id").to_csv(tmp_path / "b.tsv", sep="\t")
    res = read_table([tmp_path / "a.tsv", tmp_path / "b.tsv"], "metabolome")
    assert res.table.loc["S2", "m1"] == 3.0 and np.isnan(res.table.loc["S2", "m2"])


def test_absent_fill_follows_the_kind_not_the_reader(tmp_path):
    # cell subsets in plain tables: a subset one file lacks was not measured there (NaN)
    write_plain(tmp_path / "a.tsv", pd.DataFrame({"S1": [60.0, 40.0]}, index=["f1", "f2"]))
    write_plain(tmp_path / "b.tsv", pd.DataFrame({"S2": [25.0]}, index=["f1"]))
    res = read_table([tmp_path / "a.tsv", tmp_path / "b.tsv"], "plain", absent_fill=float("nan"))
    assert not np.isnan(res.table.loc["S2", "f1"]) and np.isnan(res.table.loc["S2", "f2"])
    zero = read_table([tmp_path / "a.tsv", tmp_path / "b.tsv"], "plain")
    assert zero.table.loc["S2", "f2"] == 0.0


def test_a_sample_in_two_files_names_both(tmp_path):
    write_plain(tmp_path / "a.tsv", pd.DataFrame({"S1": [1.0]}, index=["f1"]))
    write_plain(tmp_path / "b.tsv", pd.DataFrame({"S1": [1.0]}, index=["f2"]))
    with pytest.raises(InputError) as err:
        read_table([tmp_path / "a.tsv", tmp_path / "b.tsv"], "plain")
    message = str(err.value)
    assert "a.tsv" in message and "b.tsv" in message and "'S1'" in message


def test_the_ici_cohort_tables_join(shared_data):
    files = sorted((shared_data / "ici_responders_ogu_11cohorts" / "per_cohort").glob("*/ogu_relabund_percent.tsv.gz"))
    assert len(files) == 11
    res = read_table(files[:3], "plain", units="percent")
    per_file = [read_table(f, "plain", units="percent").table for f in files[:3]]
    assert res.table.shape[0] == sum(t.shape[0] for t in per_file)
    assert res.table.shape[1] == len(set().union(*(t.columns for t in per_file)))
    np.testing.assert_allclose(res.table.sum(axis=1), 1.0)
    # a sample's values are those of its own file
    first = per_file[0]
    pd.testing.assert_frame_equal(res.table.loc[first.index, first.columns], first, check_names=False)


# ------------------------------------------------------------------- sample_id_column


def test_sample_id_column_relabels_the_table(study, tmp_path):
    samples = pd.read_csv("samples.tsv", sep="\t", dtype=str, keep_default_na=False)
    blood = samples["sample_type"] == "blood"
    samples["flow_id"] = ""
    samples.loc[blood, "flow_id"] = [f"{i:03d}" for i in range(1, blood.sum() + 1)]
    samples.to_csv("samples.tsv", sep="\t", index=False)
    immune = pd.read_csv("immune_subsets.tsv", sep="\t", index_col=0)
    by_id = dict(zip(samples.loc[blood, "sample_id"], range(1, blood.sum() + 1)))
    immune.index = [str(by_id[s]) for s in immune.index]  # integers without leading zeros
    immune.rename_axis("Client Sample ID").to_csv("immune_subsets.tsv", sep="\t")
    study["modalities"]["immune"]["options"]["sample_id_column"] = "flow_id"
    imported = validate_study(study)["modalities"]["immune"]
    assert list(imported.table.index) == list(samples.loc[blood, "sample_id"])
    np.testing.assert_allclose(imported.table.loc["L1_baseline_BL", "CD8+ T cells"], 8.86)


def test_sample_id_column_never_falls_back_to_sample_id(study):
    # a table id missing from the id column must not be matched to a sample_id of that
    # name: that would give one sample another sample's values
    samples = pd.read_csv("samples.tsv", sep="\t", dtype=str, keep_default_na=False)
    blood = samples["sample_type"] == "blood"
    samples["flow_id"] = ""
    samples.loc[blood, "flow_id"] = [f"F{i}" for i in range(1, blood.sum() + 1)]
    samples.to_csv("samples.tsv", sep="\t", index=False)
    immune = pd.read_csv("immune_subsets.tsv", sep="\t", index_col=0)
    first = samples.loc[blood, "sample_id"].iloc[0]
    immune.index = ["F2", first] + [f"F{i}" for i in range(3, len(immune) + 1)]
    immune.to_csv("immune_subsets.tsv", sep="\t")
    study["modalities"]["immune"]["options"]["sample_id_column"] = "flow_id"
    with pytest.raises(InputError) as err:
        validate_study(study)
    message = str(err.value)
    assert f"sample(s) {first}" in message and "not in column 'flow_id'" in message


def test_sample_id_column_missing_from_the_sheet(study):
    study["modalities"]["immune"]["options"]["sample_id_column"] = "flow_id"
    with pytest.raises(InputError) as err:
        validate_study(study)
    assert "column 'flow_id'" in str(err.value) and "sample_id_column" in str(err.value)


def test_the_thriene_scfa_long_table(shared_data):
    path = shared_data / "thriene_yogurt_oats" / "scfa_long.tsv"
    res = read_table(path, "metabolome", layout="long", sample_column="Client Sample ID",
                     feature_column="Analyte", value_column="Results", na_values=["QNS", "N/Q"], units="ug/g")
    assert res.table.shape == (462, 8)  # SOURCE.md: 3696 rows = 462 samples x 8 analytes
    assert int(res.table.isna().to_numpy().sum()) == 10  # QNS (8) and N/Q (2)
    assert res.table.loc["1", "2-Methylbutyric acid"] == pytest.approx(321.137)
    assert (res.features["unit"] == "ug/g").all()
    # without na_values the message names the option and the codes
    with pytest.raises(InputError) as err:
        read_table(path, "metabolome", layout="long", sample_column="Client Sample ID",
                   feature_column="Analyte", value_column="Results")
    assert "options.na_values" in str(err.value) and "QNS" in str(err.value)
    # read as wide, the message asks for the long layout and names the columns
    with pytest.raises(InputError) as err:
        read_table(path, "metabolome")
    assert "options.layout: long" in str(err.value) and "'Results'" in str(err.value)


# --------------------------------------------------------------------------- preflight


def test_missing_and_all_zero_samples_are_notes_not_errors(study):
    taxa = pd.read_csv("metaphlan4_merged.txt", sep="\t", skiprows=1, index_col=0)
    taxa = taxa.drop(columns="E2_post_ST")
    taxa["E1_post_ST"] = 0.0
    with open("metaphlan4_merged.txt", "w") as fh:
        fh.write("#mpa_vJun23_CHOCOPhlAnSGB_202403\n")
        taxa.to_csv(fh, sep="\t")
    out = io.StringIO()
    load_study(study, preflight=True, warn=out)
    lines = [line for line in out.getvalue().splitlines() if "metaphlan4_merged.txt" in line]
    assert len(lines) == 2, out.getvalue()
    assert any("E2_post_ST" in line and "not in this table" in line for line in lines)
    assert any("E1_post_ST" in line and "every value is zero" in line for line in lines)


def test_the_good_study_has_nothing_to_report(study):
    out = io.StringIO()
    load_study(study, preflight=True, warn=out)
    assert out.getvalue() == ""


def test_a_header_only_bracken_file_is_a_dropped_sample(study):
    header = ("name\ttaxonomy_id\ttaxonomy_lvl\tkraken_assigned_reads\tadded_reads\t"
              "new_est_reads\tfraction_total_reads\n")
    stool = [f"{s}_{t}_ST" for s in ("L1", "L2", "E1", "E2") for t in ("baseline", "post")]
    for i, sample in enumerate(stool):
        rows = "" if sample == "L2_post_ST" else (f"Bacteroides uniformis\t820\tS\t{90 + i}\t10\t{100 + i}\t0.5\n"
                                                   f"Akkermansia muciniphila\t239935\tS\t{95 - i}\t5\t{100 - i}\t0.5\n")
        Path(f"{sample}.bracken").write_text(header + rows)
    study["modalities"]["taxa"] = {"kind": "taxonomy", "format": "bracken", "sample_type": "stool",
                                   "path": [f"{s}.bracken" for s in stool], "transform": "clr"}
    out = io.StringIO()
    load_study(study, preflight=True, warn=out)
    assert "L2_post_ST" in out.getvalue() and "header and no taxa" in out.getvalue()
    taxa = validate_study(study)["modalities"]["taxa"]
    assert "L2_post_ST" not in taxa.table.index and len(taxa.table) == 7
    reason = taxa.dropped.set_index("id").loc["L2_post_ST", "reason"]
    assert "header and no taxa" in reason


def test_orientation_error_names_the_option_for_a_plain_table(study):
    taxa = pd.read_csv("metaphlan4_merged.txt", sep="\t", skiprows=1, index_col=0)
    (taxa / 100).T.rename_axis("sample").to_csv("taxa_plain.tsv", sep="\t")
    study["modalities"]["taxa"] = {"kind": "taxonomy", "format": "plain", "path": "taxa_plain.tsv",
                                   "sample_type": "stool"}
    with pytest.raises(InputError) as err:
        load_study(study, preflight=True)
    assert "set options.orientation: samples_as_rows" in str(err.value)
    # the importer says the same when the table is read by its job
    from gutaxis.io.sheets import load_sheets
    from gutaxis.io.study import import_modality

    spec = {**study["modalities"]["taxa"], "options": {}}
    with pytest.raises(InputError) as err:
        import_modality(spec, load_sheets(validate_config(study))["samples"], "samples.tsv")
    assert "set options.orientation: samples_as_rows" in str(err.value)
    study["modalities"]["taxa"]["options"] = {"orientation": "samples_as_rows"}
    assert validate_study(study)["modalities"]["taxa"].table.shape == (8, 5)


def test_facts_are_cached_by_path_size_and_mtime(study, monkeypatch):
    path = Path("immune_subsets.tsv")
    first = pf.scan_table(path, None, False)
    assert list(pf.CACHE_DIR.glob("*.json"))

    def no_read(*args):
        raise AssertionError("the file was read again")

    real_scan = pf._scan
    monkeypatch.setattr(pf, "_scan", no_read)
    assert pf.scan_table(path, None, False) == first
    path.write_text(path.read_text() + "E3_post_BL\t1\t2\t3\n")  # new size: read again
    monkeypatch.setattr(pf, "_scan", real_scan)
    assert pf.scan_table(path, None, False)["ids"][-1] == "E3_post_BL"


# ------------------------------------------------------------------------ with snakemake


def _snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"),
           "--directory", str(workdir), "--configfile", str(workdir / "config.yaml"), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600)


@pytest.mark.workflow
def test_the_dry_run_plans_a_list_of_files(study, tmp_path):
    taxa = pd.read_csv("metaphlan4_merged.txt", sep="\t", skiprows=1, index_col=0)
    for name, cols in (("cohort_l.txt", [c for c in taxa.columns if c.startswith("L")]),
                       ("cohort_e.txt", [c for c in taxa.columns if c.startswith("E")])):
        taxa[cols].to_csv(name, sep="\t")
    study["modalities"]["taxa"]["path"] = ["cohort_l.txt", "cohort_e.txt"]
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(study))
    result = _snakemake(tmp_path, "-n", "results/import/taxa.tsv")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "import_modality" in result.stdout + result.stderr


@pytest.mark.workflow
def test_an_input_error_of_a_job_is_printed_once(study, tmp_path):
    """A problem only the import job finds (text in a MetaPhlAn cell): the job stops, the
    profile's retry stops at once, and the message is printed once, last on screen."""
    shutil.copy(DATA / "bad" / "taxa_non_numeric" / "metaphlan4_merged.txt", tmp_path)
    result = _snakemake(tmp_path, "--cores", "1", "results/import/taxa.tsv")
    assert result.returncode != 0
    problem = [line for line in result.stderr.splitlines() if "n/a?" in line]
    assert len(problem) == 1, result.stderr[-4000:]
    assert problem[0].startswith("  - metaphlan4_merged.txt") and ". Fix: " in problem[0]
    assert "Traceback" not in result.stderr
    # after Snakemake's job error blocks (only its closing sentence follows)
    lines = result.stderr.splitlines()
    errors = [i for i, line in enumerate(lines) if line.startswith("Error in rule")]
    assert errors and lines.index(problem[0]) > max(errors)
    after = [line for line in lines[lines.index(problem[0]) + 1:] if line.strip()]
    snakemake_closing = ("Complete log", "Elapsed time", "WorkflowError", "did not complete")
    assert all(any(k in line for k in snakemake_closing) for line in after), after
