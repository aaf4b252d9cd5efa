"""gutaxis.io.tables: the binary intermediate of sample x sample matrices keeps every bit and its labels."""

import hashlib

import numpy as np
import pandas as pd
import pytest

from gutaxis.io.tables import read_square_matrix, read_tsv, write_feature_table, write_square_matrix, write_tsv


def distance_matrix(n: int = 40, seed: int = 0) -> pd.DataFrame:
    x = np.random.default_rng(seed).normal(size=(n, 5))
    d = np.sqrt(((x[:, None, :] - x[None, :, :]) ** 2).sum(-1))
    ids = [f"S{i:03d}" for i in range(n)]
    ids[3] = "007"  # a numeric-looking id must stay text
    return pd.DataFrame(d, index=ids, columns=ids)


def test_square_matrix_round_trips_exactly_and_keeps_text_labels(tmp_path):
    matrix = distance_matrix()
    write_square_matrix(matrix, tmp_path / "d.npy", tmp_path / "d.ids.tsv")
    back = read_square_matrix(tmp_path / "d.npy", tmp_path / "d.ids.tsv")
    assert back.index.tolist() == matrix.index.tolist() and back.columns.tolist() == matrix.columns.tolist()
    assert np.array_equal(back.to_numpy(), matrix.to_numpy())  # bit for bit, unlike the 10-digit TSV
    via_tsv = tmp_path / "d.tsv"
    write_tsv(matrix, via_tsv, index=True)
    text = read_tsv(via_tsv, index_col=0, dtype={0: str})
    assert text.index.tolist() == back.index.tolist()
    np.testing.assert_allclose(text.to_numpy(), back.to_numpy(), rtol=1e-9)


def test_square_matrix_files_are_byte_identical_for_identical_values(tmp_path):
    digests = []
    for run in ("a", "b"):
        write_square_matrix(distance_matrix(), tmp_path / f"{run}.npy", tmp_path / f"{run}.ids.tsv")
        digests.append(tuple(hashlib.sha256((tmp_path / f"{run}{ext}").read_bytes()).hexdigest()
                             for ext in (".npy", ".ids.tsv")))
    assert digests[0] == digests[1]


def test_square_matrix_from_another_run_is_refused_with_the_fix(tmp_path):
    write_square_matrix(distance_matrix(40), tmp_path / "d.npy", tmp_path / "d.ids.tsv")
    write_square_matrix(distance_matrix(30), tmp_path / "e.npy", tmp_path / "e.ids.tsv")
    with pytest.raises(ValueError, match=r"d\.npy: a 40x40 matrix, but .*e\.ids\.tsv lists 30 labels.*rerun"):
        read_square_matrix(tmp_path / "d.npy", tmp_path / "e.ids.tsv")
    matrix = distance_matrix(5)
    with pytest.raises(ValueError, match="same labels"):
        write_square_matrix(matrix.iloc[:, ::-1], tmp_path / "f.npy", tmp_path / "f.ids.tsv")


def pandas_bytes(table, path, index):
    table.to_csv(path, sep="\t", index=index, float_format="%.10g", lineterminator="\n")
    return path.read_bytes()


def awkward_float_table():
    table = distance_matrix(25)
    table.iloc[0, 1] = -0.0
    table.iloc[2, 3] = 1e-12
    table.iloc[4, 5] = 123456789012.5
    table.iloc[6, 7] = np.nan
    table.iloc[8, 9] = np.inf
    table.iloc[10, 11] = -np.inf
    table.iloc[12, 13] = 3.0
    return table


@pytest.mark.parametrize("index", [True, False])
@pytest.mark.parametrize("labels", ["named", "unnamed", "integer", "columns_named", "float_index", "no_rows"])
def test_float_tables_are_written_byte_identical_to_pandas(tmp_path, index, labels):
    table = awkward_float_table()
    if labels == "named":
        table.index.name = "sample_id"
    elif labels == "integer":
        table = table.reset_index(drop=True)
        table.columns = range(table.shape[1])
    elif labels == "columns_named":
        table.index.name, table.columns.name = "sample_id", "feature_id"
    elif labels == "float_index":  # pandas formats float labels: handed over to pandas
        table.index = np.linspace(0, 1, len(table))
    elif labels == "no_rows":
        table = table.iloc[:0]
    write_tsv(table, tmp_path / "ours.tsv", index=index)
    assert (tmp_path / "ours.tsv").read_bytes() == pandas_bytes(table, tmp_path / "pandas.tsv", index)


def test_feature_table_with_missing_values_round_trips(tmp_path):
    table = awkward_float_table().replace([np.inf, -np.inf], 0.5)
    write_feature_table(table, tmp_path / "t.tsv")
    from gutaxis.io.tables import read_feature_table

    back = read_feature_table(tmp_path / "t.tsv")
    np.testing.assert_allclose(back.to_numpy(), table.to_numpy(), rtol=1e-9, equal_nan=True)
    assert back.index.tolist() == table.index.tolist()
