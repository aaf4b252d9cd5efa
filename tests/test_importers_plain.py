"""Plain matrix importer: orientations, unit detection, lineage ids, real curated tables."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gutaxis.io.errors import InputError
from gutaxis.io.importers import detect_units, read_plain, read_table

FORMATS = Path(__file__).parent / "data" / "formats"


@pytest.mark.parametrize("values, expected", [
    ([[0.2, 0.8], [0.5, 0.5]], "fraction"),
    ([[0.2, 0.3], [0.1, 0.1]], "fraction"),          # subset of a composition
    ([[20.0, 80.0], [50.5, 49.5]], "percent"),
    ([[20.0, 30.0], [1.5, 2.5]], "percent"),           # subset of percents, values > 1
    ([[120, 3000], [0, 51]], "counts"),
    ([[1.5e5 + 0.5, 8.5e5 - 0.5], [2.5e5, 7.5e5]], "other"),   # e.g. CPM
])
def test_detect_units(values, expected):
    assert detect_units(pd.DataFrame(values)) == expected


def test_hmp2_maaslin2_excerpt_samples_as_rows():
    path = FORMATS / "hmp2_maaslin2_taxonomy_excerpt.tsv"
    res = read_table(path, "plain", orientation="samples_as_rows")
    raw = pd.read_csv(path, sep="\t", index_col=0)
    assert res.table.shape == (8, 87) == raw.shape
    assert "Faecalibacterium prausnitzii" in res.table.columns
    assert res.notes["units"] == "fraction" and res.notes["renormalised"] is True
    # The share before renormalisation is the row sum of the fractions as given.
    np.testing.assert_allclose(res.sample_info["classified_fraction"], raw.sum(axis=1))
    np.testing.assert_allclose(res.table, raw.div(raw.sum(axis=1), axis=0))
    as_is = read_plain(path, orientation="samples_as_rows", value="as_is")
    np.testing.assert_allclose(as_is.table, raw)
    assert as_is.notes["renormalised"] is False


def test_hmp2_maaslin3_excerpt_r_header():
    path = FORMATS / "hmp2_maaslin3_taxonomy_excerpt.tsv"
    res = read_plain(path, orientation="samples_as_rows")
    # R write.table header: one field short, quoted names.
    assert res.table.shape == (6, 151)
    assert res.table.index[0] == "CSM5FZ3N_P" and res.table.columns[0] == "Phocaeicola_vulgatus"
    raw = pd.read_csv(path, sep="\t")
    assert res.table.loc["CSM5FZ3N_P", "Phocaeicola_vulgatus"] == pytest.approx(
        raw.loc["CSM5FZ3N_P", "Phocaeicola_vulgatus"] / raw.loc["CSM5FZ3N_P"].sum())


def test_counts_excerpt_keeps_counts_and_last_id_collision():
    path = FORMATS / "mmcd_he_infants_genera_counts_excerpt.tsv"
    res = read_plain(path, orientation="samples_as_rows")
    raw = pd.read_csv(path, sep="\t", index_col=0)
    assert res.notes["units"] == "counts"
    np.testing.assert_array_equal(res.counts.to_numpy(), raw.to_numpy())
    np.testing.assert_allclose(res.table.sum(axis=1), 1.0)
    assert res.features["lineage"].iloc[0].startswith("d__Bacteria;")
    assert read_plain(path, orientation="samples_as_rows", value="counts").table.equals(res.counts)
    # Two GTDB genera are unnamed ('g__'): last-element ids would collide.
    with pytest.raises(InputError, match="duplicated feature id\\(s\\) 'g__'"):
        read_plain(path, orientation="samples_as_rows", feature_id="last")


def test_qiime_classic_table_with_taxonomy_and_unassigned(tmp_path):
    path = tmp_path / "otu_table.txt"
    path.write_text("# Constructed from biom file\n"
                    "#OTU ID\tA\tB\ttaxonomy\n"
                    "OTU1\t10\t0\tk__Bacteria; p__Firmicutes\n"
                    "OTU2\t30\t150\tk__Bacteria; p__Bacteroidetes\n"
                    "Unassigned\t60\t50\tUnassigned\n")
    res = read_plain(path)
    assert list(res.table.columns) == ["OTU1", "OTU2"] and res.notes["units"] == "counts"
    np.testing.assert_allclose(res.table.loc["A"], [0.25, 0.75])
    assert res.features.loc["OTU2", "lineage"] == "k__Bacteria; p__Bacteroidetes"
    assert res.dropped["feature_id"].tolist() == ["Unassigned"]
    keep = read_plain(path, unclassified="keep")
    np.testing.assert_allclose(keep.table.loc["A", "UNCLASSIFIED"], 0.6)


def test_percent_features_as_rows_last_ids(tmp_path):
    path = tmp_path / "pct.tsv"
    path.write_text("taxon\tA\tB\nk__B|g__X|s__X_one\t40\t10\nk__B|g__X|s__X_two\t60\t90\n")
    res = read_plain(path, feature_id="last")
    assert res.notes["units"] == "percent"
    assert list(res.table.columns) == ["s__X_one", "s__X_two"]
    assert res.features.loc["s__X_one", "lineage"] == "k__B|g__X|s__X_one"
    np.testing.assert_allclose(res.table.loc["B"], [0.1, 0.9])


def test_zero_sample_dropped_and_composition_check(tmp_path):
    path = tmp_path / "frac.tsv"
    path.write_text("id\tA\tB\tC\nf1\t0.5\t0\t0.2\nf2\t0.5\t0\t0.2\n")
    res = read_plain(path)
    assert list(res.table.index) == ["A", "C"]
    assert res.dropped.loc[res.dropped["sample_id"] == "B", "reason"].item().startswith("all features are 0")
    with pytest.raises(InputError) as err:
        read_plain(path, check_sums=True)
    assert "'C' = 0.4" in str(err.value) and "'A'" not in str(err.value).split("sum(s) are")[1]


def test_errors(tmp_path):
    path = tmp_path / "bad.tsv"
    path.write_text("id\tA\tB\nf1\t1\tx\nf1\t2\t3\n")
    with pytest.raises(InputError) as err:
        read_plain(path)
    msg = str(err.value)
    assert "non-numeric" in msg and "'x'" in msg and "duplicated feature id(s) 'f1'" in msg
    cpm = tmp_path / "cpm.tsv"
    cpm.write_text("id\tA\nf1\t150000.5\nf2\t849999.5\n")
    with pytest.raises(InputError, match="value='as_is'"):
        read_plain(cpm)
    assert read_plain(cpm, value="as_is").notes["units"] == "other"
    frac = tmp_path / "frac.tsv"
    frac.write_text("id\tA\nf1\t0.4\nf2\t0.6\n")
    with pytest.raises(InputError, match="counts requested"):
        read_plain(frac, value="counts")
    with pytest.raises(InputError, match="option 'orientation'"):
        read_plain(frac, orientation="rows")
    missing_cell = tmp_path / "gap.tsv"
    missing_cell.write_text("id\tA\tB\nf1\t1\t\nf2\t2\t3\n")
    with pytest.raises(InputError, match="empty/NA cell"):
        read_plain(missing_cell)


# ------------------------------------------------------------------------ real files


def test_real_hmp2_maaslin2(shared_data):
    path = shared_data / "hmp2_maaslin2" / "HMP2_taxonomy.tsv"
    res = read_plain(path, orientation="samples_as_rows")
    # SOURCE.md: 1595 samples, 87 species, fractions whose row sums range 0.006-1.0, median 0.966.
    assert res.table.shape == (1595, 87)
    cf = res.sample_info["classified_fraction"]
    assert cf.min() == pytest.approx(0.006, abs=5e-4) and cf.max() == pytest.approx(1.0, abs=1e-3)
    assert cf.median() == pytest.approx(0.966, abs=1e-3)
    np.testing.assert_allclose(res.table.sum(axis=1), 1.0)


def test_real_hmp2_maaslin3(shared_data):
    path = shared_data / "hmp2_maaslin3" / "HMP2_taxonomy.tsv.gz"
    res = read_plain(path, orientation="samples_as_rows")
    raw = pd.read_csv(path, sep="\t")
    # SOURCE.md says 150 species; the file's header has 151 names (checked with pandas).
    assert res.table.shape == (1527, 151) == raw.shape
    assert res.notes["units"] == "fraction"
    np.testing.assert_allclose(res.sample_info["total"], 1.0, atol=1e-9)
    pd.testing.assert_frame_equal(res.table, raw.div(raw.sum(axis=1), axis=0),
                                  check_names=False, check_index_type=False)


def test_real_mmcd_bracken_genus_counts(shared_data):
    path = shared_data / "mmcd_mars_ibs" / "genera.counts.tsv.gz"
    res = read_plain(path, orientation="samples_as_rows")
    # SOURCE.md: 444 samples, 2,895 GTDB genera, integer counts, sums 5.4e4-2.6e6.
    assert res.table.shape == (444, 2895) and res.notes["units"] == "counts"
    totals = res.counts.sum(axis=1)
    assert 5.4e4 <= totals.min() < 5.5e4 and 2.6e6 <= totals.max() < 2.7e6
    assert int((res.counts.sum(axis=0) > 0).sum()) == 2471


def test_real_motus_counts_unassigned_row(shared_data):
    path = shared_data / "limeta_ici_motus_humann2" / "validation_mOTUs_v2_counts.tsv.gz"
    res = read_plain(path)
    raw = pd.read_csv(path, sep="\t", index_col=0)
    assert res.table.shape == (27, len(raw) - 1)
    assert res.dropped["feature_id"].tolist() == ["-1"]
    np.testing.assert_allclose(res.sample_info["unclassified_total"], raw.loc["-1"])
    np.testing.assert_allclose(res.counts.sum(axis=1), raw.drop(index="-1").sum())
