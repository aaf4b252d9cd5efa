"""HUMAnN importer: stratified rows, UNMAPPED/UNINTEGRATED, units, real HUMAnN2/3 tables."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gutaxis.io.errors import InputError
from gutaxis.io.importers import read_humann, read_table

FORMATS = Path(__file__).parent / "data" / "formats"
PATHWAYS = FORMATS / "humann3_pathabundance_stratified.tsv"
GENES = FORMATS / "humann3_genefamilies_cpm.tsv"


def test_default_keeps_community_rows_only():
    res = read_table(PATHWAYS, "humann")
    assert list(res.table.index) == ["P01_pre", "P01_post"]
    assert list(res.table.columns) == ["PWY-5100", "PWY-1042", "PWY-7219"]
    assert res.table.loc["P01_pre", "PWY-5100"] == 120.5
    assert res.table.loc["P01_post", "PWY-1042"] == 110.0
    assert res.features.loc["PWY-1042", "name"] == "glycolysis IV (plant cytosol)"
    assert res.notes["units"] == "rpk" and res.notes["kind"] == "pathway"
    assert res.notes["header"] == "# Pathway"
    reasons = res.dropped["reason"].str.split(" ").str[0].value_counts().to_dict()
    assert reasons == {"UNMAPPED": 1, "UNINTEGRATED": 4, "stratified": 5}
    assert len(res.dropped) + res.table.shape[1] == 13


def test_stratified_only_and_keep():
    only = read_humann(PATHWAYS, stratified="only")
    assert only.table.shape == (2, 5)
    assert "PWY-5100|g__Faecalibacterium.s__Faecalibacterium_prausnitzii" in only.table.columns
    f = only.features.loc["PWY-1042|g__Bacteroides.s__Bacteroides_uniformis"]
    assert (f["function"], f["genus"], f["species"], f["stratified"]) == (
        "PWY-1042", "Bacteroides", "Bacteroides_uniformis", True)
    assert pd.isna(only.features.loc["PWY-1042|unclassified", "genus"])
    # In this table the per-taxon rows add up to the community row of each pathway.
    per_pathway = only.table.T.groupby(only.features["function"]).sum().T
    community = read_humann(PATHWAYS).table
    pd.testing.assert_frame_equal(per_pathway[community.columns], community, check_names=False)
    keep = read_humann(PATHWAYS, stratified="keep")
    assert keep.table.shape == (2, 8)
    assert set(keep.table.columns) == set(only.table.columns) | set(community.columns)


def test_unmapped_keep_and_full_ids():
    res = read_humann(PATHWAYS, unmapped="keep", feature_id="full")
    assert {"UNMAPPED", "UNINTEGRATED"} <= set(res.table.columns)
    assert "PWY-5100: pyruvate fermentation to acetate and lactate II" in res.table.columns
    assert res.table.loc["P01_pre", "UNINTEGRATED"] == 5000.0
    assert res.dropped["reason"].str.startswith("stratified").all()


def test_gene_families_cpm_and_renormalise():
    res = read_humann(GENES)
    assert res.notes["kind"] == "gene_family" and res.notes["units"] == "cpm"
    assert list(res.table.index) == ["P01_pre", "P01_post"]
    # Unstratified rows including UNMAPPED add up to 1e6 CPM.
    np.testing.assert_allclose(res.sample_info["total"], 1e6)
    renorm = read_humann(GENES, renormalise=True)
    np.testing.assert_allclose(renorm.table.sum(axis=1), 1.0)
    np.testing.assert_allclose(renorm.table.loc["P01_pre", "UniRef90_R5X8T5"], 0.3 / 0.6)
    assert renorm.notes["output_units"] == "fraction"


def test_units_detected_from_totals_without_suffix(tmp_path):
    path = tmp_path / "joined.tsv"
    path.write_text("# Pathway\tA\tB\nUNMAPPED\t400000\t500000\nPWY-1: x\t600000\t500000\n")
    assert read_humann(path).notes["units"] == "cpm"
    path.write_text("# Pathway\tA\tB\nUNMAPPED\t0.4\t0.5\nPWY-1: x\t0.6\t0.5\n")
    assert read_humann(path).notes["units"] == "relab"
    assert read_humann(path, units="cpm").notes["units"] == "cpm"


def test_error_duplicate_ids_after_split(tmp_path):
    path = tmp_path / "dup.tsv"
    path.write_text("# Pathway\tA_Abundance\nPWY-1: first\t1\nPWY-1: second\t2\n")
    with pytest.raises(InputError, match="feature_id='full'"):
        read_humann(path)
    assert read_humann(path, feature_id="full").table.shape == (1, 2)


def test_error_non_numeric_and_options(tmp_path):
    path = tmp_path / "bad.tsv"
    path.write_text("# Pathway\tA_Abundance\tB_Abundance\nPWY-1: x\t1\tabc\n")
    with pytest.raises(InputError) as err:
        read_humann(path)
    assert "sample column 'B_Abundance'" in str(err.value) and "'abc'" in str(err.value)
    with pytest.raises(InputError, match="option 'stratified'"):
        read_humann(PATHWAYS, stratified="yes")
    no_samples = tmp_path / "no_samples.tsv"
    no_samples.write_text("# Pathway\nPWY-1: x\n")
    with pytest.raises(InputError, match="no sample columns"):
        read_humann(no_samples)
    only_special = tmp_path / "special.tsv"
    only_special.write_text("# Pathway\tA\nUNMAPPED\t1\nUNINTEGRATED\t2\n")
    with pytest.raises(InputError, match="no rows left"):
        read_humann(only_special)


# ------------------------------------------------------------------------ real files


def test_real_humann2_pathabundance_cpm(shared_data):
    path = shared_data / "limeta_ici_motus_humann2" / "validation_humann2_pathabundance_cpm_unstratified.tsv"
    res = read_humann(path)
    # SOURCE.md: 421 rows (UNMAPPED, UNINTEGRATED, then MetaCyc pathways) x 27 samples, CPM.
    assert res.table.shape == (27, 419)
    assert res.notes["units"] == "cpm" and res.notes["n_stratified_rows"] == 0
    assert sorted(res.dropped["feature_id"]) == ["UNINTEGRATED", "UNMAPPED"]
    raw = pd.read_csv(path, sep="\t", index_col=0)
    assert res.table.loc["p005_Val_NR", "1CMET2-PWY"] == raw.loc[
        "1CMET2-PWY: N10-formyl-tetrahydrofolate biosynthesis", "p005_Val_NR"]
    np.testing.assert_allclose(res.sample_info["total"], raw.sum(), rtol=1e-12)
    assert res.sample_info["total"].between(0.99e6, 1.0e6 + 1).all()


def test_real_humann3_stratified_single_sample(shared_data):
    path = shared_data / "thriene_yogurt_oats" / "raw" / "JH144_pathabundance_cpm.tsv.gz"
    raw = pd.read_csv(path, sep="\t", index_col=0)
    labels = raw.index.to_series()
    strat = labels.str.contains("|", regex=False)
    special = labels.str.split("|").str[0].isin(["UNMAPPED", "UNINTEGRATED"])
    res = read_humann(path)
    assert list(res.table.index) == ["JH144"] and res.notes["units"] == "cpm"
    assert res.table.shape[1] == int((~strat & ~special).sum())
    only = read_humann(path, stratified="only")
    assert only.table.shape[1] == int((strat & ~special).sum())
    assert len(res.dropped) + res.table.shape[1] == len(raw)
    row = labels[~strat & ~special].iloc[0]
    assert res.table.loc["JH144", row.split(": ")[0]] == raw.loc[row, "JH144_Abundance-CPM"]
