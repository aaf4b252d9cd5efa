"""MetaPhlAn importer: hand-made MetaPhlAn 3/4 layouts, real MetaPhlAn 4 tables, errors."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gutaxis.io.errors import InputError
from gutaxis.io.importers import read_metaphlan, read_table

FORMATS = Path(__file__).parent / "data" / "formats"
MPA4 = FORMATS / "metaphlan4_merged_allranks.tsv"
MPA3 = FORMATS / "metaphlan3_merged_taxid.tsv"
PROFILE = FORMATS / "sampleX_profile.txt"


# ------------------------------------------------------------------ hand-made files


def test_metaphlan4_species_hand_worked():
    res = read_table(MPA4, "metaphlan", sample_suffix_strip="_metagenome")
    t = res.table
    assert t.index.name == "sample_id" and t.columns.name == "feature_id"
    # P02_pre is 100 % UNCLASSIFIED: no classified reads, so it leaves the table.
    assert list(t.index) == ["P01_pre", "P01_post", "P02_post"]
    assert list(t.columns) == ["s__Faecalibacterium_prausnitzii", "s__Roseburia_intestinalis",
                               "s__Bacteroides_uniformis", "s__Methanobrevibacter_smithii"]
    # P01_pre: 40, 20, 25, 5 % with 10 % unclassified -> divided by the classified 90 %.
    np.testing.assert_allclose(t.loc["P01_pre"], np.array([40, 20, 25, 5]) / 90)
    np.testing.assert_allclose(t.loc["P02_post"], np.array([10, 0, 70, 0]) / 80)
    np.testing.assert_allclose(t.sum(axis=1), 1.0)
    failed = res.dropped[res.dropped["sample_id"] == "P02_pre"]
    assert list(failed["reason"]) == ["no classified reads at rank species"]
    info = res.sample_info
    np.testing.assert_allclose(info.loc[["P01_pre", "P01_post", "P02_pre", "P02_post"],
                                        "classified_fraction"], [0.9, 1.0, 0.0, 0.8])
    np.testing.assert_allclose(info["unclassified_fraction"], [0.1, 0.0, 1.0, 0.2])
    assert res.notes["units"] == "percent" and res.notes["renormalised"] is True
    assert res.notes["header_version"] == "mpa_vOct22_CHOCOPhlAnSGB_202212"
    assert res.notes["rank_counts"] == {"kingdom": 2, "phylum": 3, "class": 3, "order": 3,
                                        "family": 4, "genus": 4, "species": 4, "sgb": 4}
    assert res.features.loc["s__Bacteroides_uniformis", "lineage"] == (
        "k__Bacteria|p__Bacteroidetes|c__Bacteroidia|o__Bacteroidales|f__Bacteroidaceae|"
        "g__Bacteroides|s__Bacteroides_uniformis")
    assert res.features.loc["s__Bacteroides_uniformis", "name"] == "Bacteroides_uniformis"
    # Every other-rank row and the UNCLASSIFIED row are recorded, nothing vanishes.
    dropped_rows = res.dropped[res.dropped["feature_id"] != ""]
    assert len(dropped_rows) == 28 - 4
    assert (dropped_rows["reason"].str.startswith("rank ")).sum() == 23
    assert "UNCLASSIFIED" in set(dropped_rows["feature_id"])


@pytest.mark.parametrize("rank, n, first", [("kingdom", 2, "k__Bacteria"), ("genus", 4, "g__Faecalibacterium"),
                                            ("sgb", 4, "t__SGB15318"), ("t", 4, "t__SGB15318"),
                                            ("order", 3, "o__Eubacteriales")])
def test_metaphlan4_other_ranks(rank, n, first):
    res = read_metaphlan(MPA4, rank=rank, sample_suffix_strip="_metagenome")
    assert res.table.shape == (3, n)
    assert res.table.columns[0] == first
    np.testing.assert_allclose(res.table.sum(axis=1), 1.0)


def test_metaphlan4_kingdom_values():
    res = read_metaphlan(MPA4, rank="kingdom", sample_suffix_strip="_metagenome")
    np.testing.assert_allclose(res.table.loc["P01_pre", ["k__Bacteria", "k__Archaea"]], [85 / 90, 5 / 90])


def test_metaphlan4_keep_unclassified():
    res = read_metaphlan(MPA4, unclassified="keep", sample_suffix_strip="_metagenome")
    t = res.table
    assert "UNCLASSIFIED" in t.columns
    # Nothing is renormalised away: the unclassified share is a feature.
    np.testing.assert_allclose(t.loc["P01_pre", "UNCLASSIFIED"], 0.1)
    np.testing.assert_allclose(t.loc["P01_pre", "s__Faecalibacterium_prausnitzii"], 0.4)
    assert t.loc["P02_pre", "UNCLASSIFIED"] == 1.0
    np.testing.assert_allclose(t.sum(axis=1), 1.0)
    assert res.features.loc["UNCLASSIFIED", "rank"] == "unclassified"
    assert (res.dropped["sample_id"] != "").sum() == 0


def test_metaphlan3_taxid_column_and_unknown_row():
    res = read_table(MPA3, "metaphlan3")
    assert res.notes["taxid_column"] is True
    assert res.notes["header_version"] == "mpa_v30_CHOCOPhlAn_201901"
    np.testing.assert_allclose(res.table.loc["S1"], np.array([35, 25, 35]) / 95)
    assert res.features.loc["s__Faecalibacterium_prausnitzii", "taxid"] == "2|1239|186801|186802|541000|216851|853"
    assert res.features.loc["s__Eubacterium_rectale", "lineage"].endswith(
        "g__Lachnospiraceae_unclassified|s__Eubacterium_rectale")
    unknown = res.dropped[res.dropped["feature_id"] == "UNKNOWN"]
    assert len(unknown) == 1 and "unclassified" in unknown["reason"].iloc[0]
    np.testing.assert_allclose(res.sample_info["unclassified_fraction"], [0.05, 0.0])


def test_single_profile_with_read_stats_and_list_of_files():
    res = read_metaphlan(PROFILE, sample_suffix_strip="_profile")
    assert res.notes["single_sample_profile"] is True
    assert list(res.table.index) == ["sampleX"]
    np.testing.assert_allclose(res.table.loc["sampleX"], np.array([50, 10, 20]) / 80)
    both = read_metaphlan([PROFILE, MPA3], sample_suffix_strip="_profile")
    assert list(both.table.index) == ["sampleX", "S1", "S2"]
    np.testing.assert_allclose(both.table.loc["S2"], [0.2, 0.1, 0.7])


def test_fraction_table_without_header_or_higher_ranks(tmp_path):
    path = tmp_path / "species_fraction.tsv"
    path.write_text("clade_name\tA\tB\n"
                    "k__Bacteria|p__F|c__C|o__O|f__F|g__G|s__G_one\t0.25\t0.5\n"
                    "k__Bacteria|p__F|c__C|o__O|f__F|g__G|s__G_two\t0.75\t0.5\n")
    res = read_metaphlan(path)
    assert res.notes["units"] == "fraction" and res.notes["header_version"] is None
    np.testing.assert_allclose(res.table.loc["A"], [0.25, 0.75])


def test_merged_estimated_reads_are_counts(tmp_path):
    path = tmp_path / "merged_counts.tsv"
    path.write_text("#mpa_vJan21_CHOCOPhlAnSGB_202103\nclade_name\tA\tB\n"
                    "UNCLASSIFIED\t1000\t0\nk__B\t9000\t5000\n"
                    "k__B|p__F|c__C|o__O|f__F|g__G|s__one\t6000\t1000\n"
                    "k__B|p__F|c__C|o__O|f__F|g__G|s__two\t3000\t4000\n")
    res = read_metaphlan(path)
    assert res.notes["units"] == "counts"
    np.testing.assert_allclose(res.table.loc["A"], [2 / 3, 1 / 3])
    np.testing.assert_allclose(res.sample_info["classified_fraction"], [0.9, 1.0])
    np.testing.assert_array_equal(res.counts.loc["B"], [1000, 4000])


def test_unprefixed_names(tmp_path):
    path = tmp_path / "bare.tsv"
    path.write_text("clade_name\tA\tB\nGemmiger_formicilis\t60\t20\nRuminococcus_bromii\t40\t80\n")
    res = read_metaphlan(path)
    assert "no rank prefix" in res.notes["rank_source"]
    np.testing.assert_allclose(res.table.loc["B"], [0.2, 0.8])
    sgb = tmp_path / "sgb.tsv"
    sgb.write_text("clade_name\tA\nSGB15300\t60\nSGB4285_group\t40\n")
    with pytest.raises(InputError, match="rank='sgb'"):
        read_metaphlan(sgb)
    assert read_metaphlan(sgb, rank="sgb").table.shape == (1, 2)


# ------------------------------------------------------------------------- errors


def test_error_missing_and_empty_file(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        read_metaphlan(tmp_path / "nope.tsv")
    empty = tmp_path / "empty.tsv"
    empty.write_text("")
    with pytest.raises(InputError, match="empty"):
        read_metaphlan(empty)
    header_only = tmp_path / "header_only.tsv"
    header_only.write_text("#mpa_vOct22_CHOCOPhlAnSGB_202212\nclade_name\tA\n")
    with pytest.raises(InputError, match="no data rows"):
        read_metaphlan(header_only)
    comma = tmp_path / "comma.csv"
    comma.write_text("clade_name,A,B\nk__Bacteria,100,100\n")
    with pytest.raises(InputError, match="comma-separated"):
        read_metaphlan(comma)


def test_error_rank_absent_lists_ranks_present(tmp_path):
    path = tmp_path / "genus_only.tsv"
    path.write_text("clade_name\tA\nk__B|p__F|c__C|o__O|f__F|g__G1\t60\nk__B|p__F|c__C|o__O|f__F|g__G2\t40\n")
    with pytest.raises(InputError) as err:
        read_metaphlan(path, rank="species")
    msg = str(err.value)
    assert "rank 'species' is not in the table" in msg and "genus (2 rows)" in msg and str(path) in msg
    with pytest.raises(InputError, match="unknown rank 'subspecies'"):
        read_metaphlan(MPA4, rank="subspecies")


def test_error_duplicated_samples_after_strip_and_duplicated_clades(tmp_path):
    with pytest.raises(InputError, match="duplicated sample id"):
        read_metaphlan(MPA4, sample_suffix_strip="_(pre|post)_metagenome")
    path = tmp_path / "dup.tsv"
    path.write_text("clade_name\tA\nk__B|p__F|c__C|o__O|f__F|g__G|s__x\t60\n"
                    "k__B|p__F|c__C|o__O|f__F|g__G|s__x\t40\n")
    with pytest.raises(InputError, match="duplicated clade id"):
        read_metaphlan(path)
    dup_cols = tmp_path / "dupcols.tsv"
    dup_cols.write_text("clade_name\tA\tA\nk__B|p__F|c__C|o__O|f__F|g__G|s__x\t100\t100\n")
    with pytest.raises(InputError, match="duplicated sample id"):
        read_metaphlan(dup_cols)


def test_error_non_numeric_and_negative_values_named(tmp_path):
    path = tmp_path / "bad.tsv"
    path.write_text("clade_name\tA\tB\n"
                    "k__B|p__F|c__C|o__O|f__F|g__G|s__one\t50\tn/d?\n"
                    "k__B|p__F|c__C|o__O|f__F|g__G|s__two\t50\t-3\n")
    with pytest.raises(InputError) as err:
        read_metaphlan(path)
    msg = str(err.value)
    assert "2 problems" in msg
    assert "sample column 'B'" in msg and "non-numeric" in msg and "s__one" in msg and "n/d?" in msg


def test_error_negative_value(tmp_path):
    path = tmp_path / "neg.tsv"
    path.write_text("clade_name\tA\nk__B|p__F|c__C|o__O|f__F|g__G|s__one\t110\n"
                    "k__B|p__F|c__C|o__O|f__F|g__G|s__two\t-10\n")
    with pytest.raises(InputError, match=r"negative value\(s\) clade 'k__B\|p__F\|c__C\|o__O\|f__F\|g__G\|s__two'"):
        read_metaphlan(path)


def test_error_composition_not_100_names_sample(tmp_path):
    path = tmp_path / "subset.tsv"
    path.write_text("clade_name\tA\tB\nk__B|p__F|c__C|o__O|f__F|g__G|s__one\t30\t60\n"
                    "k__B|p__F|c__C|o__O|f__F|g__G|s__two\t20\t40\n")
    with pytest.raises(InputError) as err:
        read_metaphlan(path)
    msg = str(err.value)
    assert "'A' = 50" in msg and "'B'" not in msg.split("sum(s) are")[1]
    # A deliberately subset table is accepted when the check is turned off.
    res = read_metaphlan(path, check_sums=False, units="percent")
    np.testing.assert_allclose(res.table.loc["A"], [0.6, 0.4])
    np.testing.assert_allclose(res.sample_info.loc["A", "classified_fraction"], 0.5)


def test_error_mixed_prefixed_and_bare_rows(tmp_path):
    path = tmp_path / "mixed.tsv"
    path.write_text("clade_name\tA\nk__B\t100\nk__B|p__F|c__C|o__O|f__F|g__G|s__one\t100\nstray_row\t0\n")
    with pytest.raises(InputError, match="'stray_row'"):
        read_metaphlan(path)


def test_error_feature_id_collision_suggests_lineage(tmp_path):
    path = tmp_path / "collide.tsv"
    path.write_text("clade_name\tA\nk__B|p__F|c__C|o__O|f__F1|g__\t40\nk__B|p__F|c__C|o__O|f__F2|g__\t60\n")
    with pytest.raises(InputError, match="feature_id='lineage'"):
        read_metaphlan(path, rank="genus")
    res = read_metaphlan(path, rank="genus", feature_id="lineage")
    assert res.table.shape == (1, 2)


def test_5000_samples_import_in_seconds(tmp_path):
    rng = np.random.default_rng(1)
    n_species, n_samples = 400, 5000
    clades = [f"k__Bacteria|p__P{i % 7}|c__C{i % 11}|o__O{i % 13}|f__F{i % 17}|g__G{i % 50}|s__S{i}"
              for i in range(n_species)]
    # 500 distinct samples repeated 10 times: formatting 2 million floats in Python
    # would dominate the test, and the reader does not care that columns repeat.
    x = rng.gamma(0.3, size=(n_species, n_samples // 10))
    x = 100 * x / x.sum(axis=0)
    path = tmp_path / "big.tsv"
    with open(path, "w") as fh:
        fh.write("#mpa_vOct22_CHOCOPhlAnSGB_202212\n")
        fh.write("\t".join(["clade_name"] + [f"S{j:04d}_metagenome" for j in range(n_samples)]) + "\n")
        for clade, row in zip(clades, x):
            fh.write(clade + ("\t" + "\t".join(map("{:.5f}".format, row))) * 10 + "\n")
    start = time.perf_counter()
    res = read_metaphlan(path, sample_suffix_strip="_metagenome")
    elapsed = time.perf_counter() - start
    assert res.table.shape == (n_samples, n_species)
    assert elapsed < 10, f"import took {elapsed:.1f} s"


# ------------------------------------------------------------------------ real files


def test_real_tudca_metaphlan4_all_ranks(shared_data):
    path = shared_data / "tudca_ms_metaphlan4_raw" / "merged_abundance_table.txt.gz"
    res = read_metaphlan(path, sample_suffix_strip="d_metagenome")
    # Facts from SOURCE.md: 113 samples, rank row counts, percent, #mpa_vOct22 header.
    assert res.table.shape == (113, 1353)
    assert res.notes["rank_counts"] == {"kingdom": 2, "phylum": 15, "class": 212, "order": 231,
                                        "family": 269, "genus": 787, "species": 1353, "sgb": 1417}
    assert res.notes["header_version"] == "mpa_vOct22_CHOCOPhlAnSGB_202212"
    assert res.notes["units"] == "percent" and res.notes["unclassified_row"] is False
    assert res.table.index[0] == "S00KA-0001"
    np.testing.assert_allclose(res.table.sum(axis=1), 1.0, atol=1e-12)
    # Independent read with plain pandas.
    raw = pd.read_csv(path, sep="\t", comment="#", index_col=0)
    species = raw[raw.index.str.contains(r"\|s__[^|]*$")]
    fp = [c for c in species.index if c.endswith("|s__Faecalibacterium_prausnitzii")][0]
    col = "S00KA-0001d_metagenome"
    expected = species.loc[fp, col] / species[col].sum()
    assert res.table.loc["S00KA-0001", "s__Faecalibacterium_prausnitzii"] == pytest.approx(expected, rel=1e-12)
    assert res.features.loc["s__Faecalibacterium_prausnitzii", "lineage"] == fp
    assert (res.dropped["feature_id"] != "").sum() == 4286 - 1353


def test_real_tudca_genus_classified_fraction(shared_data):
    path = shared_data / "tudca_ms_metaphlan4_raw" / "merged_abundance_table.txt.gz"
    res = read_metaphlan(path, rank="genus", sample_suffix_strip="d_metagenome")
    assert res.table.shape == (113, 787)
    raw = pd.read_csv(path, sep="\t", comment="#", index_col=0)
    genus_sums = raw[raw.index.str.contains(r"\|g__[^|]*$")].sum() / 100
    # Genus rows of this real table do not add up to 100 % (some genus rows are
    # missing): the shortfall is reported per sample, then renormalised away.
    assert res.sample_info["classified_fraction"].min() == pytest.approx(genus_sums.min())
    assert genus_sums.min() < 0.9
    np.testing.assert_allclose(res.table.sum(axis=1), 1.0, atol=1e-12)
    assert read_metaphlan(path, rank="sgb").table.shape == (113, 1417)


def test_real_thriene_post_processed_tables(shared_data):
    raw_dir = shared_data / "thriene_yogurt_oats" / "raw"
    tax = read_metaphlan(raw_dir / "merged_abundance_table_ALL_species_TAX.txt.gz")
    assert tax.table.shape == (440, 1378) and tax.notes["header_version"] is None
    bare = read_metaphlan(raw_dir / "merged_abundance_table_ALL_species.txt.gz")
    assert bare.table.shape == (440, 1378)
    raw = pd.read_csv(raw_dir / "merged_abundance_table_ALL_species.txt.gz", sep="\t", index_col=0)
    expected = raw.loc["Gemmiger_formicilis", "JH001"] / raw["JH001"].sum()
    assert bare.table.loc["JH001", "Gemmiger_formicilis"] == pytest.approx(expected, rel=1e-12)
    assert tax.table.loc["JH001", "s__Gemmiger_formicilis"] == pytest.approx(expected, rel=1e-12)
    sgb = read_metaphlan(raw_dir / "merged_abundance_table_ALL_SGB.txt.gz", rank="sgb")
    assert sgb.table.shape == (440, 1875)
    with pytest.raises(InputError, match="ranks present: sgb \\(1875 rows\\)"):
        read_metaphlan(raw_dir / "merged_abundance_table_ALL_SGB_TAX.txt.gz")
