"""Matching an imported table to the sample sheet: kept, dropped with reason, or a clear error."""

from __future__ import annotations

import pandas as pd
import pytest

from gutaxis.io.errors import InputError
from gutaxis.io.reconcile import reconcile_with_sheet

SHEET = pd.DataFrame(
    [
        ["A1", "A", "baseline", "stool"],
        ["A2", "A", "post", "stool"],
        ["B1", "B", "baseline", "stool"],
        ["B2", "B", "post", "stool"],
        ["A1_BL", "A", "baseline", "blood"],
        ["QC1", "", "", "qc"],
    ],
    columns=["sample_id", "subject_id", "timepoint", "sample_type"],
)
NO_IMPORT_DROPS = pd.DataFrame(columns=["feature_id", "sample_id", "reason"])


def table(samples, values=None):
    values = values if values is not None else [[0.5, 0.5]] * len(samples)
    return pd.DataFrame(values, index=samples, columns=["f1", "f2"])


def reconcile(tab, **kwargs):
    args = dict(sample_type="stool", table_label="t.tsv", sheet_label="samples.tsv")
    args.update(kwargs)
    return reconcile_with_sheet(tab, SHEET, NO_IMPORT_DROPS, **args)


def test_missing_failed_and_zero_samples_are_dropped_with_reasons():
    tab = table(["B1", "A1", "A2"], [[0.5, 0.5], [0.2, 0.8], [0.0, 0.0]])
    out = reconcile(tab)
    # sheet order, not table order
    assert list(out.table.index) == ["A1", "B1"]
    reasons = dict(zip(out.dropped["sample_id"], out.dropped["reason"]))
    assert set(reasons) == {"A2", "B2"}
    assert "failed sample" in reasons["A2"]
    assert reasons["B2"] == "not in t.tsv"


def test_importer_drops_are_carried_with_their_reason():
    drops = pd.DataFrame({"feature_id": ["", "x"], "sample_id": ["B2", ""], "reason": ["no classified reads", "rank"]})
    out = reconcile_with_sheet(
        table(["A1", "A2", "B1"]), SHEET, drops, "stool", "t.tsv", "samples.tsv"
    )
    reasons = dict(zip(out.dropped["sample_id"], out.dropped["reason"]))
    assert reasons == {"B2": "no classified reads"}


def test_unknown_and_wrong_type_samples_are_errors():
    with pytest.raises(InputError) as caught:
        reconcile(table(["A1", "ZZ9", "A1_BL"]))
    text = str(caught.value)
    assert "ZZ9" in text and "not in the sample sheet" in text
    assert "A1_BL" in text and "sample_type blood" in text


def test_technical_injections_only_when_asked():
    with pytest.raises(InputError, match="QC1"):
        reconcile(table(["A1", "QC1"]))
    out = reconcile(table(["A1", "A2", "B1", "B2", "QC1"]), keep_technical=True)
    assert "QC1" in out.table.index


def test_min_total_drops_low_samples():
    out = reconcile(table(["A1", "A2", "B1", "B2"], [[0.5, 0.5], [0.01, 0.0], [0.3, 0.3], [0.5, 0.4]]), min_total=0.5)
    assert list(out.table.index) == ["A1", "B1", "B2"]
    assert "below min_total" in out.dropped.set_index("sample_id").loc["A2", "reason"]


def test_written_tables_are_readable_by_others(tmp_path):
    import os
    import stat

    from gutaxis.io.tables import write_tsv

    old = os.umask(0o022)
    try:
        write_tsv(pd.DataFrame({"a": [1.5]}), tmp_path / "x.tsv")
    finally:
        os.umask(old)
    mode = stat.S_IMODE((tmp_path / "x.tsv").stat().st_mode)
    assert mode == 0o644
    assert not list(tmp_path.glob(".*tmp"))


def test_duplicates_are_resolved_among_the_samples_a_table_holds():
    sheet = pd.concat(
        [SHEET, pd.DataFrame([["A2_reseq", "A", "post", "stool"]], columns=SHEET.columns)], ignore_index=True
    )
    # the metagenome was re-sequenced: both libraries are in the table, the later one wins
    out = reconcile_with_sheet(
        table(["A1", "A2", "A2_reseq", "B1", "B2"]), sheet, NO_IMPORT_DROPS, "stool", "mpa.txt", "samples.tsv"
    )
    assert "A2_reseq" in out.table.index and "A2" not in out.table.index
    assert "duplicate of A2_reseq" in out.dropped.set_index("sample_id").loc["A2", "reason"]
    # the metabolome only has the original aliquot: it is kept, not lost to the re-run
    out = reconcile_with_sheet(
        table(["A1", "A2", "B1", "B2"]), sheet, NO_IMPORT_DROPS, "stool", "peaks.tsv", "samples.tsv"
    )
    assert "A2" in out.table.index
    assert out.dropped.set_index("sample_id").loc["A2_reseq", "reason"] == "not in peaks.tsv"
    first = reconcile_with_sheet(
        table(["A1", "A2", "A2_reseq", "B1", "B2"]), sheet, NO_IMPORT_DROPS, "stool", "mpa.txt", "samples.tsv",
        duplicates="first",
    )
    assert "A2" in first.table.index and "A2_reseq" not in first.table.index
