"""Metabolome importer: peak tables both ways round, annotations, missing values, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gutaxis.io.errors import InputError
from gutaxis.io.importers import read_metabolome, read_table

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


# ----------------------------------------------------- annotations in every layout (issue 17)


def _first_field(path: Path, line: int) -> str:
    """Field 1 of line ``line`` (0 = header) of a tab-separated file, read as plain text."""
    with open(path, encoding="utf-8") as fh:
        for i, text in enumerate(fh):
            if i == line:
                return text.split("\t", 1)[0]
    raise AssertionError(f"{path} has fewer than {line + 1} lines")


def test_real_mtbls79_mz_ids_become_the_mz_column(shared_data):
    path = shared_data / "mtbls79_dims_qc_metax" / "MTBLS79.txt"
    res = read_metabolome(path)
    # SOURCE.md: first column `name` = m/z (e.g. 78.02055); before, features had only 'unit'.
    assert _first_field(path, 0) == "name"
    assert res.features["mz"].iloc[0] == float(_first_field(path, 1)) == 78.02055
    assert res.features["mz"].iloc[-1] == float(_first_field(path, 500))
    np.testing.assert_array_equal(res.features["mz"].to_numpy(), res.table.columns.astype(float))
    assert res.features["mz"].dtype == float and "rt" not in res.features and "name" not in res.features
    assert res.notes["id_annotation"].startswith("mz")
    assert list(res.features.columns) == ["mz", "unit"]


def test_real_thriene_long_keeps_per_analyte_columns(shared_data):
    path = shared_data / "thriene_yogurt_oats" / "scfa_long.tsv"
    res = read_metabolome(path, layout="long", sample_column="Client Sample ID", feature_column="Analyte",
                          value_column="Results", na_values=["QNS", "N/Q"], units="ug_per_g")
    raw = pd.read_csv(path, sep="\t", dtype=str)
    per_analyte = raw.drop_duplicates("Analyte").set_index("Analyte")
    f = res.features
    assert len(f) == 8 and f.loc["Acetic acid", "name"] == "Acetic acid"
    # SOURCE.md: LLOQ/ULOQ per analyte (acetic acid 50-20000, hexanoic 1-400 ug/g)
    assert f.loc["Acetic acid", "LLOQ"] == 50 and f.loc["Hexanoic acid", "ULOQ"] == 400
    for col in ("LLOQ", "ULOQ"):
        np.testing.assert_array_equal(f[col].to_numpy(float),
                                      per_analyte.loc[f.index, col].to_numpy(float))
    # the option labels the unit; the file's own unit column is kept beside it
    assert set(f["unit"]) == {"ug_per_g"} and set(f["unit_reported"]) == {"µg/g"}
    assert res.notes["units_reported"] == ["µg/g"]
    # per-cell and per-sample columns vary within an analyte: not feature annotations
    assert "Analysis Comments" not in f and "Unique Tube Label ID" not in f and "Results" not in f


def test_real_mmcd_kegg_name_ids_agree_with_the_map(shared_data):
    folder = shared_data / "mmcd_yachida_crc"
    res = read_metabolome(folder / "mtb.tsv")
    mapping = pd.read_csv(folder / "mtb.map.tsv", sep="\t", index_col="Compound", dtype=str)
    f = res.features
    assert res.notes["id_annotation"] == "kegg_name"
    assert f.loc["C00024_Acetyl CoA", ["kegg", "name"]].tolist() == ["C00024", "Acetyl CoA"]
    # every KEGG id read from the column names is the one the map gives (independent file)
    both = f["kegg"].notna() & mapping["KEGG"].reindex(f.index).notna()
    assert both.sum() == 432
    assert (f.loc[both, "kegg"] == mapping["KEGG"].reindex(f.index)[both]).all()
    # ids without the C#####_ prefix get nothing rather than a guess
    assert pd.isna(f.loc["gamma-Glu-2AB", "kegg"]) and pd.isna(f.loc["gamma-Glu-2AB", "name"])


def test_real_mmcd_map_without_names_gets_names_from_ids(shared_data):
    folder = shared_data / "mmcd_erawijantari_gastrectomy"
    res = read_metabolome(folder / "mtb.tsv", annotation=folder / "mtb.map.tsv")
    mapping = pd.read_csv(folder / "mtb.map.tsv", sep="\t", index_col="Compound", dtype=str)
    f = res.features
    # SOURCE.md: the map has Compound, KEGG, HMDB, High.Confidence.Annotation - no name column
    assert {"name", "kegg", "hmdb", "High.Confidence.Annotation"} <= set(f.columns)
    assert f.loc["-_2-Hydroxyisobutyrate", "name"] == "2-Hydroxyisobutyrate"
    # the map's KEGG wins where the id has none ('-_Ophthalmate' is C21016 in the map)
    assert f.loc["-_Ophthalmate", "kegg"] == mapping.loc["-_Ophthalmate", "KEGG"] == "C21016"
    assert f["kegg"].notna().sum() == mapping["KEGG"].reindex(f.index).notna().sum() == 506
    assert (f["hmdb"].fillna("") == mapping["HMDB"].reindex(f.index).fillna("")).all()


def test_real_cimcb_peak_sheet_columns_survive(shared_data):
    folder = shared_data / "cimcb_gastric_cancer_nmr"
    res = read_metabolome(folder / "Data_sheet.tsv", annotation=folder / "Peak_sheet.tsv")
    peaks = pd.read_csv(folder / "Peak_sheet.tsv", sep="\t", index_col="Name")
    f = res.features
    assert {"name", "Perc_missing", "QC_RSD"} <= set(f.columns)
    np.testing.assert_allclose(f["QC_RSD"].astype(float), peaks.loc[f.index, "QC_RSD"], rtol=1e-15)
    assert f.loc["M1", "name"] == peaks.loc["M1", "Label"]


def test_peak_table_numeric_annotations_are_not_samples(tmp_path):
    # an XCMS-like peak table: group bounds and counts are numbers, not samples
    path = tmp_path / "xcms.tsv"
    path.write_text("name\tmzmed\tmzmin\tmzmax\trtmed\tnpeaks\tS1\tS2\n"
                    "M147T63\t147.0764\t147.0760\t147.0770\t63.2\t4\t100\t110\n"
                    "M180T120\t\t180.0630\t180.0640\t\t2\t200\t210\n")
    res = read_metabolome(path)
    assert list(res.table.index) == ["S1", "S2"]
    f = res.features
    assert f.loc["M147T63", "mzmin"] == 147.0760 and f.loc["M180T120", "npeaks"] == 2
    # the table's own columns win; the XCMS name fills only the empty cells (RT in seconds)
    assert f.loc["M147T63", "mz"] == 147.0764 and f.loc["M147T63", "rt"] == 63.2
    assert f.loc["M180T120", "mz"] == 180.0 and f.loc["M180T120", "rt"] == 120.0
    assert res.notes["id_annotation"] == "xcms" and "name" not in f
    # with a sample sheet, the same columns stay annotations instead of 'not in the sheet'
    sheet = read_metabolome(path, sample_ids=["S1", "S2"])
    assert sheet.dropped.empty and list(sheet.features["npeaks"]) == [4, 2]


@pytest.mark.parametrize("ids, header, mz, rt", [
    (["123.4567@5.67", "200.1@12"], "feature_id", [123.4567, 200.1], [5.67, 12.0]),
    (["123.4567__5.67", "200.1000__12"], "id", [123.4567, 200.1], [5.67, 12.0]),
    (["0.53_130.0651m/z", "12.01_200.5m/z"], "Compound", [130.0651, 200.5], [0.53, 12.01]),
    (["M147T63", "M147T63_1"], "name", [147.0, 147.0], [63.0, 63.0]),
    (["78.02055", "452.00345"], "name", [78.02055, 452.00345], None),
    (["90", "91.5"], "m/z", [90.0, 91.5], None),
    (["1.52", "3.77"], "RT", None, [1.52, 3.77]),
])
def test_ids_give_mz_and_rt(tmp_path, ids, header, mz, rt):
    path = tmp_path / "t.tsv"
    path.write_text(f"{header}\tS1\tS2\n" + "".join(f"{i}\t1\t2\n" for i in ids))
    f = read_metabolome(path).features
    for col, want in (("mz", mz), ("rt", rt)):
        if want is None:
            assert col not in f
        else:
            np.testing.assert_array_equal(f[col].to_numpy(float), want)


@pytest.mark.parametrize("ids, header", [
    (["1", "2", "3"], "name"),              # row numbers, not m/z
    (["0.98", "1.02", "3.21"], "bin"),      # NMR chemical shifts (ppm)
    (["FT0001", "FT0002", "FT0003"], "feature_id"),
    (["M1", "M2", "M3"], "Idx"),            # CIMCB-like ids: no pattern
    (["123.45_5.67", "200.1_8.1", "99.5_1.0"], "id"),   # RT_mz or mz_RT: ambiguous
])
def test_ambiguous_ids_give_nothing(tmp_path, ids, header):
    path = tmp_path / "t.tsv"
    path.write_text(f"{header}\tS1\tS2\n" + "".join(f"{i}\t1\t2\n" for i in ids))
    res = read_metabolome(path)
    assert list(res.features.columns) == ["unit"] and "id_annotation" not in res.notes


def test_samples_as_rows_mz_headers_and_ppm_bins(tmp_path):
    ms = tmp_path / "ms.tsv"
    ms.write_text("Sample\t78.02055\t452.00345\nS1\t1\t2\nS2\t3\t4\n")
    np.testing.assert_array_equal(read_metabolome(ms).features["mz"].to_numpy(), [78.02055, 452.00345])
    nmr = tmp_path / "nmr.tsv"
    nmr.write_text("Sample\t0.98\t1.02\nS1\t1\t2\nS2\t3\t4\n")
    assert "mz" not in read_metabolome(nmr).features


def test_name_id_column_is_the_name_and_file_fills_cells(tmp_path):
    path = tmp_path / "t.tsv"
    path.write_text("Metabolite\tHMDB\tS1\tS2\nAlanine\tHMDB0000161\t1\t2\nGlycine\t\t3\t4\n")
    ann = tmp_path / "ann.tsv"
    ann.write_text("Metabolite\tHMDB\tPlatform\nAlanine\tHMDB9999999\tNMR\nGlycine\tHMDB0000123\tNMR\n")
    f = read_metabolome(path, annotation=ann).features
    assert list(f["name"]) == ["Alanine", "Glycine"]
    # the table's HMDB is kept; the file fills the empty cell; other columns kept
    assert list(f["hmdb"]) == ["HMDB0000161", "HMDB0000123"] and list(f["Platform"]) == ["NMR", "NMR"]
    assert list(f["unit"]) == ["intensity", "intensity"]


def test_long_layout_unit_and_limits(tmp_path):
    path = tmp_path / "long.tsv"
    path.write_text("Sample\tAnalyte\tResult\tUnit\tLOD\tTube\tComment\n"
                    "S1\tAcetate\t10\tuM\t0.5\tT1\t\nS2\tAcetate\t12\tuM\t0.5\tT2\tBLOQ\n"
                    "S1\tButyrate\t3\t\t0.1\tT1\t\nS2\tButyrate\t4\t\t0.1\tT2\t\n")
    res = read_metabolome(path, layout="long", value_column="Result", units="mM")
    f = res.features
    assert list(f.columns) == ["unit_reported", "LOD", "name", "unit"]
    assert list(f["unit_reported"].fillna("")) == ["uM", ""] and list(f["LOD"]) == [0.5, 0.1]
    assert list(f["unit"]) == ["mM", "mM"]
    assert list(f["name"]) == ["Acetate", "Butyrate"]


def test_id_annotations_explicit_patterns():
    from gutaxis.io.importers.metabolome import id_annotations
    found, rule = id_annotations(["M123_456", "M90_12", "blank"], r"M(?P<mz>\d+)_(?P<rt>\d+)")
    assert found.loc["M123_456", "mz"] == 123 and found.loc["M90_12", "rt"] == 12
    assert found.loc["blank"].isna().all()
    found, _ = id_annotations(["90", "91"], "mz")          # integers allowed when asked
    assert list(found["mz"]) == [90.0, 91.0]
    assert id_annotations(["123.4@5"], "none")[0].empty
    with pytest.raises(InputError, match="no named group"):
        id_annotations(["M1"], r"M(\d+)")
    with pytest.raises(InputError, match="regular expression"):
        id_annotations(["M1"], "M(?P<mz>")


def test_real_mmcd_map_id_column_gives_the_name(shared_data):
    folder = shared_data / "mmcd_he_infants_mfgm"
    res = read_metabolome(folder / "mtb.tsv", annotation=folder / "mtb.map.tsv")
    mapping = pd.read_csv(folder / "mtb.map.tsv", sep="\t", index_col="Compound", dtype=str)
    f = res.features
    # SOURCE.md: 120 NMR metabolites named in the header; the map's 'Compound' holds those names
    assert f["name"].notna().sum() == 120 and f.loc["2' fucosyl lactose", "name"] == "2' fucosyl lactose"
    assert (f["hmdb"].fillna("") == mapping["HMDB"].reindex(f.index).fillna("")).all()
    # MARS: the map's Compound.Name wins over its prefixed Compound id
    mars = read_metabolome(shared_data / "mmcd_mars_ibs" / "mtb.tsv",
                           annotation=shared_data / "mmcd_mars_ibs" / "mtb.map.tsv").features
    assert mars.loc["NMR_Lactate", "name"] == "Lactate"


def test_id_annotation_option_reads_a_named_pattern(tmp_path):
    """options.id_annotation: an explicit pattern for ids the automatic rules leave alone."""
    path = tmp_path / "peaks.tsv"
    path.write_text("feature\tS1\tS2\nM123_456\t1\t2\nM200_30\t3\t4\n")
    auto = read_metabolome(path, orientation="features_as_rows")
    assert "mz" not in auto.features.columns  # ambiguous: not read without being asked
    given = read_metabolome(path, orientation="features_as_rows", id_annotation=r"M(?P<mz>\d+)_(?P<rt>\d+)")
    assert given.features["mz"].astype(float).tolist() == [123.0, 200.0]
    assert given.features["rt"].astype(float).tolist() == [456.0, 30.0]
    none = read_metabolome(path, orientation="features_as_rows", id_annotation="none")
    assert "mz" not in none.features.columns
