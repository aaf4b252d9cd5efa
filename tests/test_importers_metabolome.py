"""Metabolome importer: peak tables both ways round, annotations, missing values, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gutaxis.errors import InputError
from gutaxis.importers import read_metabolome, read_table

FORMATS = Path(__file__).parent / "data" / "formats"
PEAKS = FORMATS / "peak_table_lcms.tsv"
MARS = FORMATS / "mmcd_mars_ibs_mtb_excerpt.tsv"
MARS_MAP = FORMATS / "mmcd_mars_ibs_mtb_map.tsv"


def test_peak_table_aliases_and_missing_cells():
    res = read_table(PEAKS, "metabolome")
    t = res.table
    assert res.notes["orientation"] == "features_as_rows"
    assert list(t.index) == ["QC01", "P01_pre", "P01_post", "P02_pre", "P02_post", "QC02", "blank01"]
    assert list(t.columns) == ["FT0001", "FT0002", "FT0003", "FT0004"]
    f = res.features
    assert f.loc["FT0002", "mz"] == pytest.approx(118.0863) and f.loc["FT0003", "rt"] == pytest.approx(3.77)
    assert f.loc["FT0001", "name"] == "4-Aminobutyrate" and f.loc["FT0002", "hmdb"] == "HMDB0000883"
    assert f.loc["FT0004", "kegg"] == "C00082" and pd.isna(f.loc["FT0004", "name"])
    # Empty, 'NA' and empty-at-end cells stay missing; zeros stay zeros by default.
    assert np.isnan(t.loc["P02_pre", "FT0001"]) and np.isnan(t.loc["P01_pre", "FT0002"])
    assert np.isnan(t.loc["blank01", "FT0004"])
    assert res.notes["n_missing_cells"] == 3 and res.notes["n_zero_cells"] == 3
    assert t.loc["P01_post", "FT0001"] == 16020.25


def test_sample_sheet_selects_columns_and_zeros_as_missing():
    sheet = ["QC01", "P01_pre", "P01_post", "P02_pre", "P02_post", "QC02"]
    res = read_metabolome(PEAKS, sample_ids=sheet, zeros="missing")
    assert list(res.table.index) == sheet
    assert res.dropped[["sample_id", "reason"]].values.tolist() == [
        ["blank01", "value column not in the sample sheet"]]
    assert np.isnan(res.table.loc["P02_post", "FT0002"]) and np.isnan(res.table.loc["P02_pre", "FT0004"])
    assert res.table.isna().to_numpy().sum() == 4


def test_samples_as_rows_with_annotation_file():
    res = read_metabolome(MARS, annotation=MARS_MAP)
    raw = pd.read_csv(MARS, sep="\t", index_col=0)
    assert res.notes["orientation"] == "samples_as_rows" and res.notes["sample_column"] == "Sample"
    assert res.table.shape == raw.shape == (12, 43)
    assert int(res.table.isna().to_numpy().sum()) == int(raw.isna().to_numpy().sum()) > 0
    np.testing.assert_array_equal(res.table.to_numpy(), raw.to_numpy())
    mapping = pd.read_csv(MARS_MAP, sep="\t", index_col=0)
    assert res.features.loc["NMR_Lactate", "hmdb"] == mapping.loc["NMR_Lactate", "HMDB"]
    assert res.features.loc["NMR_Lactate", "name"] == "Lactate"
    assert res.notes["annotation_matched"] == 43
    from_frame = read_metabolome(MARS, annotation=mapping)
    pd.testing.assert_frame_equal(from_frame.features[["hmdb", "kegg"]], res.features[["hmdb", "kegg"]])


def test_transposed_with_sample_sheet_and_metadata_columns(tmp_path):
    path = tmp_path / "data.tsv"
    path.write_text("Idx\tSampleID\tSampleType\tM1\tM2\n1\tQC1\tQC\t10\t20\n2\tS1\tSample\t11\tNA\n"
                    "3\tS2\tSample\t12\t22\n")
    res = read_metabolome(path, sample_ids=["S1", "S2", "QC1"])
    assert res.notes["orientation"] == "samples_as_rows"
    assert list(res.table.columns) == ["M1", "M2"] and list(res.table.index) == ["QC1", "S1", "S2"]
    assert set(res.notes["metadata_columns"]) == {"Idx", "SampleType"}
    only_s = read_metabolome(path, sample_ids=["S1", "S2"])
    assert only_s.dropped["sample_id"].tolist() == ["QC1"]


def test_errors_name_column_and_row(tmp_path):
    path = tmp_path / "bad.tsv"
    path.write_text("feature_id\tname\tS1\tS2\tS3\nF1\tAlanine\t10\tn.d.\t12\nF2\tGlycine\t-5\t3\t4\n"
                    "F3\tSerine\t1\t2\t3\n")
    with pytest.raises(InputError) as err:
        read_metabolome(path)
    msg = str(err.value)
    assert "sample column 'S2'" in msg and "feature 'F1' = 'n.d.'" in msg
    assert "sample column 'S1'" in msg and "negative" in msg and "'F2'" in msg
    # With the code declared as missing and negatives allowed, the same file reads.
    ok = read_metabolome(path, na_values=["n.d."], allow_negative=True)
    assert np.isnan(ok.table.loc["S2", "F1"]) and ok.table.loc["S1", "F2"] == -5


def test_errors_duplicates_and_no_samples(tmp_path):
    dup = tmp_path / "dup.tsv"
    dup.write_text("feature_id\tS1\nF1\t1\nF1\t2\n")
    with pytest.raises(InputError, match="duplicated feature id\\(s\\) 'F1'"):
        read_metabolome(dup)
    dup_samples = tmp_path / "dup_samples.tsv"
    dup_samples.write_text("Sample\tM1\nS1\t1\nS1\t2\n")
    with pytest.raises(InputError, match="duplicated sample id\\(s\\) 'S1'"):
        read_metabolome(dup_samples)
    annot_only = tmp_path / "annot.tsv"
    annot_only.write_text("feature_id\tname\tm/z\nF1\tAlanine\t90.05\n")
    with pytest.raises(InputError, match="no sample columns"):
        read_metabolome(annot_only)
    with pytest.raises(InputError, match="none of the sample sheet's ids"):
        read_metabolome(PEAKS, sample_ids=["X1", "X2"])
    with pytest.raises(InputError, match="does not exist"):
        read_metabolome(tmp_path / "missing.tsv")


# ------------------------------------------------------------------------ real files


def test_real_cimcb_nmr_transposed(shared_data):
    folder = shared_data / "cimcb_gastric_cancer_nmr"
    res = read_metabolome(folder / "Data_sheet.tsv", annotation=folder / "Peak_sheet.tsv")
    # SOURCE.md: 140 rows (123 samples + 17 QC), 149 metabolites M1..M149, 1,069 missing cells.
    assert res.table.shape == (140, 149)
    assert res.notes["n_missing_cells"] == 1069 and res.notes["n_zero_cells"] == 0
    assert set(res.notes["metadata_columns"]) == {"Idx", "SampleType", "Class"}
    assert res.features.loc["M1", "name"] == "1_3-Dimethylurate"
    raw = pd.read_csv(folder / "Data_sheet.tsv", sep="\t", index_col="SampleID")
    assert res.table.loc["sample_2", "M2"] == raw.loc["sample_2", "M2"]


def test_real_mtbls79_dims_with_sample_list(shared_data):
    folder = shared_data / "mtbls79_dims_qc_metax"
    samples = pd.read_csv(folder / "MTBLS79_sampleList.txt", sep="\t")
    res = read_metabolome(folder / "MTBLS79.txt", sample_ids=samples["sample"], zeros="missing")
    # SOURCE.md: 500 m/z features x 172 injections; undetected = 0 (4.6 % of cells).
    assert res.table.shape == (172, 500)
    assert res.notes["orientation"] == "features_as_rows"
    assert res.table.isna().to_numpy().mean() == pytest.approx(0.046, abs=5e-4)
    assert res.table.columns[0] == "78.02055"
    raw = pd.read_csv(folder / "MTBLS79.txt", sep="\t", index_col=0)
    assert res.table.loc["batch01_QC01"].iloc[0] == raw["batch01_QC01"].iloc[0]


def test_real_mmcd_mars_metabolome_nas(shared_data):
    folder = shared_data / "mmcd_mars_ibs"
    res = read_metabolome(folder / "mtb.tsv", annotation=folder / "mtb.map.tsv")
    # SOURCE.md: 444 samples, 43 metabolites, 3,793 NA cells (BA_ 1,627, Tryptophan_ 2,090, NMR_ 76).
    assert res.table.shape == (444, 43)
    na = res.table.isna().sum()
    assert int(na.sum()) == 3793
    by_platform = na.groupby(na.index.str.split("_").str[0]).sum().to_dict()
    assert by_platform == {"BA": 1627, "NMR": 76, "Tryptophan": 2090}
    assert res.features["hmdb"].notna().sum() > 0
