"""BIOM importer: HDF5 and JSON written with biom itself, taxonomy, collapse, errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

biom = pytest.importorskip("biom")
h5py = pytest.importorskip("h5py")

from gutaxis.io.errors import InputError  # noqa: E402
from gutaxis.io.importers import read_biom, read_table  # noqa: E402

COUNTS = np.array([[100, 0, 50],
                   [200, 300, 0],
                   [50, 50, 50],
                   [0, 0, 0],
                   [10, 0, 0]])
OBS = ["ASV1", "ASV2", "ASV3", "ASV4", "ASV5"]
TAXONOMY = [
    ["k__Bacteria", "p__Firmicutes", "c__Clostridia", "o__Eubacteriales", "f__Oscillospiraceae",
     "g__Faecalibacterium", "s__prausnitzii"],
    ["k__Bacteria", "p__Bacteroidetes", "c__Bacteroidia", "o__Bacteroidales", "f__Bacteroidaceae",
     "g__Bacteroides", "s__"],
    ["k__Bacteria", "p__Bacteroidetes", "c__Bacteroidia", "o__Bacteroidales", "f__Bacteroidaceae",
     "g__Bacteroides", "s__uniformis"],
    ["k__Bacteria", "p__Firmicutes", "c__", "o__", "f__", "g__", "s__"],
    ["k__Bacteria", "p__Firmicutes", "c__Clostridia", "o__Eubacteriales", "f__Lachnospiraceae",
     "g__", "s__"],
]


def _table(data=COUNTS, tax=TAXONOMY):
    return biom.Table(data, OBS, ["S1", "S2", "S3"],
                      observation_metadata=[{"taxonomy": t, "confidence": 0.9} for t in tax])


@pytest.fixture()
def biom_files(tmp_path):
    tbl = _table()
    hdf5 = tmp_path / "table.biom"
    with h5py.File(hdf5, "w") as fh:
        tbl.to_hdf5(fh, "gutaxis tests")
    js = tmp_path / "table.json.biom"
    js.write_text(tbl.to_json("gutaxis tests"))
    return hdf5, js


def test_hdf5_and_json_read_the_same(biom_files):
    hdf5, js = biom_files
    a, b = read_table(hdf5, "biom"), read_biom(js)
    assert a.notes["encoding"] == "hdf5" and b.notes["encoding"] == "json"
    pd.testing.assert_frame_equal(a.table, b.table)
    pd.testing.assert_frame_equal(a.counts, b.counts)
    assert a.notes["units"] == "counts"
    # Observations x samples became samples x observations; fractions per sample.
    assert list(a.table.index) == ["S1", "S2", "S3"] and list(a.table.columns) == OBS
    np.testing.assert_allclose(a.table.loc["S1"], COUNTS[:, 0] / COUNTS[:, 0].sum())
    np.testing.assert_array_equal(a.counts.loc["S2"], COUNTS[:, 1])
    assert a.features.loc["ASV3", "name"] == "uniformis"
    assert a.features.loc["ASV2", "rank"] == "genus"  # 's__' carries no assignment
    assert a.features.loc["ASV1", "lineage"].startswith("k__Bacteria; p__Firmicutes")
    assert a.features.loc["ASV1", "confidence"] == pytest.approx(0.9)


def test_collapse_to_genus(biom_files):
    hdf5, _ = biom_files
    res = read_biom(hdf5, rank="genus")
    assert list(res.table.columns) == ["g__Faecalibacterium", "g__Bacteroides"]
    np.testing.assert_array_equal(res.counts["g__Bacteroides"], COUNTS[1] + COUNTS[2])
    assert res.features.loc["g__Bacteroides", "n_observations"] == 2
    assert sorted(res.dropped["feature_id"]) == ["ASV4", "ASV5"]
    assert res.dropped["reason"].str.contains("no assignment at rank genus").all()
    kept = read_biom(hdf5, rank="genus", unclassified="keep")
    np.testing.assert_array_equal(kept.counts["UNCLASSIFIED"], COUNTS[3] + COUNTS[4])
    np.testing.assert_allclose(kept.table.sum(axis=1), 1.0)


def test_as_is_and_relative_input(tmp_path):
    rel = COUNTS / COUNTS.sum(axis=0)
    path = tmp_path / "rel.json.biom"
    path.write_text(_table(rel).to_json("t"))
    res = read_biom(path)
    assert res.notes["units"] == "fraction" and res.counts is None
    raw = read_biom(tmp_path / "rel.json.biom", value="as_is")
    # biom's JSON writer keeps 6 significant digits.
    np.testing.assert_allclose(raw.table.to_numpy(), rel.T, rtol=1e-5)


def test_errors(tmp_path, biom_files):
    bad = tmp_path / "bad.biom"
    bad.write_text("this is not a biom table\n")
    with pytest.raises(InputError, match="cannot be read as a BIOM table"):
        read_biom(bad)
    with pytest.raises(InputError, match="does not exist"):
        read_biom(tmp_path / "missing.biom")
    with pytest.raises(InputError, match="deepest ranks present"):
        read_biom(biom_files[0], rank="sgb")
    neg = tmp_path / "neg.json.biom"
    neg.write_text(_table(COUNTS - 60).to_json("t"))
    with pytest.raises(InputError, match="negative"):
        read_biom(neg)
