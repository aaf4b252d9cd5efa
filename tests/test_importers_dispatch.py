"""read_table dispatch and the shape contract every reader keeps."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from gutaxis.io.errors import InputError
from gutaxis.io.importers import FORMATS as FORMAT_NAMES
from gutaxis.io.importers import ImportResult, read_table

FORMATS = Path(__file__).parent / "data" / "formats"

CASES = [
    ("metaphlan4_merged_allranks.tsv", "metaphlan", {"sample_suffix_strip": "_metagenome"}),
    ("metaphlan3_merged_taxid.tsv", "metaphlan3", {}),
    ("sampleX_profile.txt", "metaphlan", {}),
    ("bracken", "bracken", {"rank": "species"}),
    ("bracken_combined_species.tsv", "kraken2_bracken", {"value": "counts"}),
    ("humann3_pathabundance_stratified.tsv", "humann3", {"stratified": "keep"}),
    ("humann3_genefamilies_cpm.tsv", "humann", {}),
    ("hmp2_maaslin2_taxonomy_excerpt.tsv", "plain", {"orientation": "samples_as_rows"}),
    ("mmcd_he_infants_genera_counts_excerpt.tsv", "plain", {"orientation": "samples_as_rows"}),
    ("peak_table_lcms.tsv", "metabolome", {}),
    ("mmcd_mars_ibs_mtb_excerpt.tsv", "metabolome", {"annotation": FORMATS / "mmcd_mars_ibs_mtb_map.tsv"}),
    ("immune_wide.tsv", "immune", {"units": "percent"}),
    ("immune_long.tsv", "immune", {"unit_column": "unit"}),
    ("immune_subsets_as_rows.csv", "immune", {"units": "fraction", "orientation": "subsets_as_rows"}),
]


@pytest.mark.parametrize("name, fmt, options", CASES, ids=[c[0] for c in CASES])
def test_every_reader_returns_the_canonical_shapes(name, fmt, options):
    res = read_table(FORMATS / name, fmt, **options)
    assert isinstance(res, ImportResult)
    t = res.table
    assert t.index.name == "sample_id" and t.columns.name == "feature_id"
    assert all(dtype == np.float64 for dtype in t.dtypes)
    assert t.index.is_unique and t.columns.is_unique and len(t) > 0 and t.shape[1] > 0
    assert res.features.index.name == "feature_id"
    assert list(res.features.index) == list(t.columns)
    assert list(res.dropped.columns) == ["feature_id", "sample_id", "reason"]
    assert ((res.dropped["feature_id"] == "") != (res.dropped["sample_id"] == "")).all()
    assert res.dropped["reason"].str.len().gt(0).all()
    assert isinstance(res.notes, dict) and "units" in res.notes and "format" in res.notes
    if res.counts is not None:
        assert res.counts.index.equals(t.index) and res.counts.columns.equals(t.columns)
    if res.notes.get("output_units") == "fraction":
        np.testing.assert_allclose(t.sum(axis=1), 1.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        res.table = t  # type: ignore[misc]


def test_unknown_format_lists_valid_ones():
    with pytest.raises(InputError) as err:
        read_table(FORMATS / "immune_wide.tsv", "kraken-report")
    msg = str(err.value)
    assert "unknown input format 'kraken-report'" in msg
    for name in ("metaphlan", "bracken", "humann", "biom", "plain", "metabolome", "immune"):
        assert name in msg and name in FORMAT_NAMES


def test_unknown_option_lists_valid_ones():
    with pytest.raises(InputError) as err:
        read_table(FORMATS / "metaphlan3_merged_taxid.tsv", "metaphlan", level="species")
    msg = str(err.value)
    assert "unknown option(s) level" in msg and "rank" in msg and "sample_suffix_strip" in msg


def test_format_names_are_case_and_dash_insensitive():
    a = read_table(FORMATS / "bracken_combined_species.tsv", "Kraken2-Bracken")
    assert a.notes["format"] == "bracken"
