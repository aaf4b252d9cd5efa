"""QC-RLSC drift correction measured on MTBLS79 (8 batches, 38 QC injections, re-injected samples).

Run by hand from the repository root:

    python benchmarks/mtbls79_drift.py [--data ../shared/data/mtbls79_dims_qc_metax]

Steps: the current pipeline's filters (``process_metabolome`` with missingness per class,
no scaling) choose the features; the pure steps are re-run with the QC rows kept
(half-minimum imputation -> PQN against the QC median -> log2), and the imputed cells are
masked back to NaN so no correction is fitted to, or judged on, invented values.  Then,
for no correction, per-batch median centring (QC reference) and QC-RLSC:

* leave-one-QC-out (LOQO) median QC RSD, the honest figure, and the in-sample one;
* replicate-injection RSD (biological sample = name without ``batchNN_``);
* batch R^2 of the first five QC principal components;
* variants of QC-RLSC (span grid, span scope, extrapolation, min_qc, and the drift fitted
  over the sample list's 4 collapsed batches or over the whole run instead of the 8
  name-prefix batches; replicate RSD and batch R^2 are always judged on the 8 batches).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "workflow" / "scripts"))

from gutaxis.metabolome.process import process_metabolome  # noqa: E402
from gutaxis.metabolome.drift import (  # noqa: E402
    loqo_qc_rsd, qc_pc_batch_r2, qc_rlsc, qc_rsd_linear, replicate_rsd,
)
from gutaxis.metabolome.impute import impute_half_minimum  # noqa: E402
from gutaxis.metabolome.normalise import batch_median_centre, log2_transform, pqn_normalise  # noqa: E402


def load(folder: Path):
    """The MTBLS79 layout, read by the test suite's loader (one reader of this layout)."""
    sys.path.insert(0, str(REPO / "tests"))
    from test_metabolome import load_mtbls79

    x, sheet, _ = load_mtbls79(folder.parent)
    return x, sheet


def prepare(folder: Path):
    x, sheet = load(folder)
    result = process_metabolome(x, sheet, None, {"missingness": {"group_column": "class"}, "scale": "none"})
    kept = result.table.columns
    sheet = sheet.set_index("sample_id")
    raw = x.mask(x == 0)[kept]
    raw = raw.loc[raw.notna().any(axis=1)]
    is_qc = (sheet.loc[raw.index, "sample_type"] == "qc").to_numpy()
    # PQN from measured values only, as process_metabolome does
    normalised, _ = pqn_normalise(impute_half_minimum(raw), "qc", is_qc, measured=raw.notna())
    log = log2_transform(normalised)
    study = log.loc[~is_qc]
    gap = float(np.abs(study.loc[result.table.index, kept].to_numpy() - result.table.to_numpy()).max())
    log = log.mask(raw.isna())
    sheet = sheet.loc[log.index]
    return log, sheet, is_qc, gap


def summary(name, corrected, sheet, is_qc, loqo):
    groups = pd.Series(np.where(is_qc, None, sheet.index.str.slice(8)), index=sheet.index)
    r2 = qc_pc_batch_r2(corrected, sheet["batch"], is_qc).set_index("component")["batch_r2"]
    return {
        "method": name,
        "loqo_qc_rsd": float(np.nanmedian(loqo)),
        "in_sample_qc_rsd": float(qc_rsd_linear(corrected, is_qc).median()),
        "replicate_rsd": float(replicate_rsd(np.exp2(corrected), groups).median()),
        "qc_pc_batch_r2_total": float(r2["total"]),
        "qc_pc1_batch_r2": float(r2["PC1"]),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "mtbls79_dims_qc_metax")
    parser.add_argument("--out", type=Path, default=None, help="write the summary table here (TSV)")
    args = parser.parse_args(argv)
    log, sheet, is_qc, gap = prepare(args.data)
    t, b = sheet["injection_order"].astype(float), sheet["batch"]
    print(f"{log.shape[0]} injections ({is_qc.sum()} QC) x {log.shape[1]} features; "
          f"study rows equal process_metabolome up to {gap:.1e}; "
          f"{int(log.isna().to_numpy().sum())} imputed cells masked")
    print("QC per batch:", b[is_qc].value_counts().sort_index().to_dict())
    rows = [summary("none", log, sheet, is_qc, loqo_qc_rsd(log, t, b, is_qc, "none"))]
    centred = batch_median_centre(log, b, "qc", is_qc)
    rows.append(summary("batch median centring", centred, sheet, is_qc, loqo_qc_rsd(log, t, b, is_qc, "median")))
    variants = [
        ("qc_rlsc (default)", {}),
        ("qc_rlsc as published (no median candidate)", {"median_candidate": False}),
        ("qc_rlsc min_qc=4", {"min_qc": 4}),
        ("qc_rlsc span per batch", {"span_scope": "feature_batch"}),
        ("qc_rlsc extrapolate=linear", {"extrapolate": "linear"}),
        ("qc_rlsc spans + (1.5, 2, 4)", {"spans": (0.25, 0.35, 0.5, 0.65, 0.8, 1.0, 1.5, 2.0, 4.0)}),
        ("qc_rlsc spans + (1.5, 2, 4), min_qc=4", {"spans": (0.25, 0.35, 0.5, 0.65, 0.8, 1.0, 1.5, 2.0, 4.0),
                                                   "min_qc": 4}),
    ]
    # the sample list's own batch column joins batch01-04 and batch07-08 (4 analytical runs?):
    # fit the drift over those longer runs (19 / 5 / 5 / 9 QCs); judged on the 8 batches
    runs = pd.read_csv(args.data / "MTBLS79_sampleList.txt", sep="\t").set_index("sample").loc[log.index, "batch"]
    runs = runs.astype(str)
    wide = (0.1, 0.15, 0.2, 0.25, 0.35, 0.5, 0.65, 0.8, 1.0, 1.5, 2.0)
    variants += [
        ("qc_rlsc over sample-list batches (4 runs)", {"batches": runs}),
        ("qc_rlsc over 4 runs, span per run", {"batches": runs, "span_scope": "feature_batch"}),
        ("qc_rlsc over 4 runs, spans 0.1-2", {"batches": runs, "spans": wide}),
        ("qc_rlsc over 4 runs, as published", {"batches": runs, "median_candidate": False}),
        ("qc_rlsc over the whole run (1 batch)", {"batches": pd.Series("all", index=log.index), "spans": wide}),
    ]
    fits = {}
    for name, kw in variants:
        start = time.perf_counter()
        kw = dict(kw)
        fit_batches = kw.pop("batches", b)
        result = qc_rlsc(log, t, fit_batches, is_qc, **kw)
        loqo = loqo_qc_rsd(log, t, fit_batches, is_qc, "qc_rlsc", **kw)
        row = summary(name, result.table, sheet, is_qc, loqo)
        row["seconds"] = time.perf_counter() - start
        row["corrected_fraction"] = float((result.fits["status"] == "corrected").mean())
        rows.append(row)
        fits[name] = result.fits
    table = pd.DataFrame(rows)
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(table.round(4).to_string(index=False))
        default = fits["qc_rlsc (default)"]
        print("\ndefault fits: status per batch")
        print(pd.crosstab(default["batch"], default["status"]))
        print("chosen spans:", default["span"].value_counts().sort_index().to_dict())
    if args.out:
        table.to_csv(args.out, sep="\t", index=False)


if __name__ == "__main__":
    main()
