"""Bracken importer: per-sample files, combined table, level selection, counts, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gutaxis.io.errors import InputError
from gutaxis.io.importers import read_bracken, read_table

FORMATS = Path(__file__).parent / "data" / "formats"
BRACKEN_DIR = FORMATS / "bracken"
COMBINED = FORMATS / "bracken_combined_species.tsv"
HEADER = ("name\ttaxonomy_id\ttaxonomy_lvl\tkraken_assigned_reads\tadded_reads\t"
          "new_est_reads\tfraction_total_reads\n")


def test_directory_of_species_files_hand_worked():
    res = read_table(BRACKEN_DIR, "bracken", rank="species")
    assert sorted(res.table.index) == ["P01_post", "P01_pre", "P02_pre"]
    # P01_pre: 5120 + 3080 + 1500 + 300 = 10000 reads.
    assert res.table.loc["P01_pre", "Faecalibacterium prausnitzii"] == pytest.approx(0.512)
    assert res.table.loc["P01_post", "Akkermansia muciniphila"] == pytest.approx(1000 / 9000)
    # Taxa absent from a sample's file are 0 there.
    assert res.table.loc["P02_pre", "Faecalibacterium prausnitzii"] == 0.0
    np.testing.assert_allclose(res.table.sum(axis=1), 1.0)
    assert res.counts.loc["P01_pre", "Bacteroides uniformis"] == 3080
    assert res.counts.index.equals(res.table.index) and res.counts.columns.equals(res.table.columns)
    assert res.notes["units"] == "counts" and res.notes["output_units"] == "fraction"
    assert res.notes["rank"] == "species"
    assert list(res.notes["files_ignored"].values()) == ["G"]
    assert res.features.loc["Akkermansia muciniphila", "taxid"] == "239935"
    assert res.sample_info.loc["P01_post", "total_reads"] == 9000


def test_combined_table_equals_per_sample_files():
    combined = read_table(COMBINED, "bracken")
    per_file = read_bracken(BRACKEN_DIR, rank="species")
    assert combined.notes["layout"] == "combine_bracken_outputs"
    pd.testing.assert_frame_equal(combined.table.sort_index(), per_file.table.sort_index())
    pd.testing.assert_frame_equal(combined.counts.sort_index(), per_file.counts.sort_index())


def test_counts_value_and_taxid_ids():
    res = read_bracken(COMBINED, value="counts", feature_id="taxid")
    assert res.notes["output_units"] == "counts"
    assert res.table.loc["P01_post", "239935"] == 1000
    pd.testing.assert_frame_equal(res.table, res.counts)


def test_genus_file_selected_by_rank_and_pattern():
    by_rank = read_bracken(BRACKEN_DIR, rank="genus")
    by_pattern = read_bracken(BRACKEN_DIR, pattern="*.bracken.g")
    assert list(by_rank.table.index) == ["P01_pre"]
    pd.testing.assert_frame_equal(by_rank.table, by_pattern.table)
    assert by_rank.features["rank"].unique().tolist() == ["genus"]


def test_sample_without_reads_is_dropped(tmp_path):
    (tmp_path / "A.bracken").write_text(HEADER + "Escherichia coli\t562\tS\t10\t0\t10\t1.00000\n")
    (tmp_path / "B.bracken").write_text(HEADER + "Escherichia coli\t562\tS\t0\t0\t0\t0.00000\n")
    res = read_bracken(tmp_path)
    assert list(res.table.index) == ["A"]
    assert res.dropped.loc[res.dropped["sample_id"] == "B", "reason"].tolist() == [
        "no classified reads at rank species"]


def test_error_mixed_levels_without_rank():
    with pytest.raises(InputError) as err:
        read_bracken(BRACKEN_DIR)
    msg = str(err.value)
    assert "G (1 files)" in msg and "S (3 files)" in msg and "rank=" in msg


def test_error_not_bracken_output(tmp_path):
    path = tmp_path / "S1.kreport"
    path.write_text(" 10.00\t100\t100\tU\t0\tunclassified\n 90.00\t900\t5\tR\t1\troot\n")
    with pytest.raises(InputError, match="not a Bracken output"):
        read_bracken(path)


def test_error_non_integer_and_negative_reads(tmp_path):
    path = tmp_path / "S1.bracken"
    path.write_text(HEADER + "Escherichia coli\t562\tS\t10\t0\t10.5\t0.5\n"
                    "Bacteroides fragilis\t817\tS\t10\t0\t-3\t0.5\n")
    with pytest.raises(InputError) as err:
        read_bracken(path)
    msg = str(err.value)
    assert "negative" in msg and "Bacteroides fragilis" in msg and str(path) in msg


def test_error_duplicate_sample_ids(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    for d in ("a", "b"):
        (tmp_path / d / "S1.bracken").write_text(HEADER + "Escherichia coli\t562\tS\t10\t0\t10\t1.0\n")
    with pytest.raises(InputError, match="same sample id: 'S1'"):
        read_bracken([tmp_path / "a" / "S1.bracken", tmp_path / "b" / "S1.bracken"])


def test_error_rank_absent_and_empty_directory(tmp_path):
    with pytest.raises(InputError, match="levels present: G, S"):
        read_bracken(BRACKEN_DIR, rank="phylum")
    with pytest.raises(InputError, match="no Bracken files"):
        read_bracken(tmp_path)
    with pytest.raises(InputError, match="does not exist"):
        read_bracken([tmp_path / "missing.bracken"])


def test_error_duplicated_taxon_rows(tmp_path):
    path = tmp_path / "S1.bracken"
    path.write_text(HEADER + "Escherichia coli\t562\tS\t10\t0\t10\t0.5\n"
                    "Escherichia coli\t562\tS\t10\t0\t10\t0.5\n")
    with pytest.raises(InputError, match="taxon listed more than once"):
        read_bracken(path)


# ------------------------------------------------------------------------ real files


def test_real_skin_bracken_species(shared_data):
    folder = shared_data / "bracken_format_fixture_skin" / "bracken_out"
    res = read_bracken(folder, rank="species")
    assert res.table.shape[0] == 9
    assert sorted(res.table.index) == ["MBT272", "MBT273", "MBT274", "MBT275", "MBT309",
                                       "MBT310", "MBT311", "MBT312", "MBT313"]
    raw = pd.read_csv(folder / "MBT272.bracken.s", sep="\t")
    assert (raw["taxonomy_lvl"] == "S").all()
    mine = res.counts.loc["MBT272", raw["name"]].to_numpy()
    np.testing.assert_array_equal(mine, raw["new_est_reads"].to_numpy())
    # Fractions are the counts over the listed reads (an independent computation) ...
    frac = res.table.loc["MBT272", raw["name"]].to_numpy()
    np.testing.assert_allclose(frac, raw["new_est_reads"] / raw["new_est_reads"].sum(), rtol=1e-12)
    # ... close to, but not exactly, Bracken's rounded column, whose denominator is
    # slightly larger than the listed reads in this real file (0.46908 vs 0.47020).
    major = raw["fraction_total_reads"].to_numpy() > 0.001
    rel = np.abs(frac[major] / raw["fraction_total_reads"].to_numpy()[major] - 1)
    assert rel.max() < 0.02 and np.median(rel) < 0.005
    assert res.sample_info.loc["MBT272", "total_reads"] == raw["new_est_reads"].sum()
    # Every species named in any file is a column.
    names = set()
    for f in folder.glob("*.bracken.s"):
        names |= set(pd.read_csv(f, sep="\t")["name"])
    assert set(res.table.columns) == names


def test_real_skin_bracken_genus_and_mixed_levels(shared_data):
    folder = shared_data / "bracken_format_fixture_skin" / "bracken_out"
    genus = read_bracken(folder, pattern="*.bracken.g", value="counts")
    assert genus.table.shape[0] == 9 and genus.notes["rank"] == "genus"
    raw = pd.read_csv(folder / "MBT313.bracken.g", sep="\t")
    assert genus.table.loc["MBT313"].sum() == raw["new_est_reads"].sum()
    with pytest.raises(InputError, match="G \\(9 files\\), S \\(9 files\\)|S \\(9 files\\), G \\(9 files\\)"):
        read_bracken(folder)
