"""Immune-subset importer: wide, long and cytometry-export layouts, unit checks, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gutaxis.io.errors import InputError
from gutaxis.io.importers import read_immune, read_table

FORMATS = Path(__file__).parent / "data" / "formats"


def test_wide_percent_of_parent_stays_percent():
    res = read_table(FORMATS / "immune_wide.tsv", "immune", units="percent_of_parent")
    assert list(res.table.index) == ["P01_pre", "P01_post", "P02_pre", "P02_post"]
    assert list(res.table.columns) == ["CD8+ T cells", "CD4+ Treg", "NK cells", "Classical monocytes"]
    assert res.table.loc["P01_post", "CD8+ T cells"] == 28.0
    assert np.isnan(res.table.loc["P02_pre", "CD4+ Treg"])
    assert res.notes["units"] == "percent_of_parent" and res.notes["metadata_columns"] == ["timepoint"]
    assert (res.features["unit"] == "percent_of_parent").all()


def test_long_with_unit_column_mixed_units():
    res = read_immune(FORMATS / "immune_long.tsv", unit_column="unit")
    assert res.notes["layout"] == "long" and res.notes["units"] == "mixed"
    assert res.table.shape == (3, 3)
    assert res.table.loc["P01_post", "Lymphocytes"] == 2100
    assert np.isnan(res.table.loc["P02_pre", "CD4+ Treg"])
    assert res.features.loc["Lymphocytes", "unit"] == "cells_per_ul"
    assert res.features.loc["CD8+ T cells", "unit"] == "percent_of_parent"


def test_long_with_units_mapping_and_sample_filter():
    units = {"CD8+ T cells": "percent_of_parent", "CD4+ Treg": "percent_of_parent",
             "Lymphocytes": "cells_per_ul"}
    res = read_immune(FORMATS / "immune_long.tsv", units=units, sample_ids=["P01_pre", "P01_post"])
    assert list(res.table.index) == ["P01_pre", "P01_post"]
    assert res.dropped[["sample_id", "reason"]].values.tolist() == [["P02_pre", "sample not in the sample sheet"]]


def test_cytometry_export_subsets_as_rows():
    res = read_immune(FORMATS / "immune_subsets_as_rows.csv", units="fraction",
                      orientation="subsets_as_rows")
    assert res.table.shape == (4, 4)
    assert res.table.columns[0] == "B Cell (Memory)"  # the R row-number column is gone
    np.testing.assert_allclose(res.table.sum(axis=1), 1.0)
    assert res.table.loc["P01_pre_acute", "Monocyte (CD14+ CD16+)"] == 0.0326


def test_errors_units(tmp_path):
    wide = FORMATS / "immune_wide.tsv"
    with pytest.raises(InputError, match="immune units not declared"):
        read_immune(wide)
    with pytest.raises(InputError, match="unknown unit\\(s\\) 'percentage'"):
        read_immune(wide, units="percentage")
    # Values up to 60 are not fractions: the message names the subset and the samples.
    with pytest.raises(InputError) as err:
        read_immune(wide, units="fraction")
    msg = str(err.value)
    assert "subset 'CD8+ T cells'" in msg and "above 1" in msg and "'P01_pre'" in msg
    over = tmp_path / "over.tsv"
    over.write_text("sample_id\tCD8\nS1\t120\n")
    with pytest.raises(InputError, match="above 100"):
        read_immune(over, units="percent")
    with pytest.raises(InputError, match="no unit declared"):
        read_immune(over, units={"CD4": "percent"})


def test_errors_values_and_duplicates(tmp_path):
    bad = tmp_path / "bad.tsv"
    bad.write_text("sample_id\tCD8\tNK\nS1\t12\t-1\nS2\t10.5\t3\nS3\t11\t4\n")
    with pytest.raises(InputError, match="negative value\\(s\\) sample 'S1'"):
        read_immune(bad, units="percent")
    text = tmp_path / "text.tsv"
    text.write_text("sample_id\tCD8\tNK\nS1\t12\t5\nS2\tlow\t3\nS3\t11\t4\n")
    with pytest.raises(InputError, match="subset column 'CD8'.*sample 'S2' = 'low'"):
        read_immune(text, units="percent")
    dup = tmp_path / "dup.tsv"
    dup.write_text("sample_id\tsubset\tvalue\nS1\tCD8\t1\nS1\tCD8\t2\n")
    with pytest.raises(InputError, match="S1 / CD8"):
        read_immune(dup, units="percent")
    dup_wide = tmp_path / "dup_wide.tsv"
    dup_wide.write_text("sample_id\tCD8\nS1\t1\nS1\t2\n")
    with pytest.raises(InputError, match="duplicated sample id\\(s\\) 'S1'"):
        read_immune(dup_wide, units="percent")
    with pytest.raises(InputError, match="option 'layout'"):
        read_immune(dup_wide, units="percent", layout="tall")


# ------------------------------------------------------------------------ real files


def test_real_chikv_cytof_assignment_level(shared_data):
    folder = shared_data / "michlmayr_chikv_cytof_pbmc"
    res = read_immune(folder / "assigment_subset_frequencies.csv", units="fraction",
                      orientation="subsets_as_rows")
    # SOURCE.md: 43 patients x 2 timepoints = 86 samples, 28 subsets, columns sum to 1.
    assert res.table.shape == (86, 28)
    np.testing.assert_allclose(res.table.sum(axis=1), 1.0, atol=1e-12)
    raw = pd.read_csv(folder / "assigment_subset_frequencies.csv").set_index("CellSubset").iloc[:, 1:]
    pd.testing.assert_frame_equal(res.table, raw.T.astype(float), check_names=False)
    acute = res.table[res.table.index.str.endswith("_acute")]
    conv = res.table[res.table.index.str.endswith("_conv")]
    assert len(acute) == len(conv) == 43
    # Medians quoted in SOURCE.md (the author's own check).
    assert acute["Monocyte (CD14+ CD16+)"].median() == pytest.approx(0.0326, abs=5e-4)
    assert conv["Monocyte (CD14+ CD16+)"].median() == pytest.approx(0.0046, abs=5e-4)
    profiling = read_immune(folder / "profiling_subset_frequencies.csv", units="fraction",
                            orientation="subsets_as_rows")
    assert profiling.table.shape == (86, 66)
