#!/usr/bin/env python
"""Formula models against MaAsLin 3's own HMP2 test (abundance and prevalence associations).

Data: the public data set ``hmp2_maaslin3`` (github.com/biobakery/maaslin3,
inst/extdata/HMP2_taxonomy.tsv and HMP2_metadata.tsv; its SOURCE.md gives the commit and
MaAsLin 3's expected_results_run1.tsv). Give the folder with ``--data``.

MaAsLin 3's test: TSS, LOG, ``~ diagnosis + dysbiosis_state + antibiotics + age + reads``
(references nonIBD, none, No), no random effect, the abundance model on the non-zero values
with the median comparison, the prevalence model by augmented logistic regression. The same
two models here (``outcome: nonzero`` with ``median_comparison``, and ``outcome: presence``),
BH over each model; every expected association (model, feature, term) is looked up and the
recall (called at q <= 0.1 in the same direction) and the sign agreement are printed.

Usage::

    python benchmarks/hmp2_maaslin3.py --data ../shared/data/hmp2_maaslin3
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workflow" / "scripts"))
from gutaxis.differential.models import ModelSpec, fit_formula_model  # noqa: E402

FIXED = "diagnosis + dysbiosis_state + antibiotics + age + reads"
REFERENCE = {"diagnosis": "nonIBD", "dysbiosis_state": "none", "antibiotics": "No"}


def sheets(data: Path):
    # R write.table: the header has one field fewer; the first column is the row name
    meta = pd.read_csv(data / "HMP2_metadata.tsv", sep="\t", dtype=str)
    samples = meta.rename_axis("sample_id").reset_index().rename(columns={"participant_id": "subject_id"})
    samples["timepoint"] = "w" + samples["week_num"]
    samples["sample_type"] = "stool"
    subjects = pd.DataFrame({"subject_id": samples["subject_id"].unique()})
    return samples, subjects


def compare(ours: pd.DataFrame, expected: pd.DataFrame, alpha: float) -> dict:
    ours = ours.assign(key=ours["feature"] + "|" + ours["variable"] + "|" + ours["value"].astype(str))
    # MaAsLin 3 reports the coefficient itself (subtract_median = FALSE) and tests it against
    # the median: compare signs and coefficients on that scale
    ours["coefficient"] = ours["effect"] + ours["median_shift"].fillna(0.0)
    expected = expected.assign(key=expected["feature"] + "|" + expected["metadata"] + "|"
                               + expected["value"].astype(str))
    both = expected.merge(ours, on="key", how="left")
    called = expected["qval_individual"] <= alpha
    same = np.sign(both["coef"]) == np.sign(both["coefficient"])
    ok = both["coef"].notna() & both["coefficient"].notna()
    return {"expected_rows": len(expected), "expected_called": int(called.sum()),
            "recall": float(((both["q"] <= alpha)
                             & (np.sign(both["coef"]) == np.sign(both["effect"])))[called.to_numpy()].mean()),
            "sign_agreement": float(same[ok].mean()),
            "coef_spearman": float(stats.spearmanr(both.loc[ok, "coef"], both.loc[ok, "coefficient"])[0]),
            "ours_called": int((ours["q"] <= alpha).sum())}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/hmp2_maaslin3"))
    args = parser.parse_args(argv)
    table = pd.read_csv(args.data / "HMP2_taxonomy.tsv.gz", sep="\t")
    samples, subjects = sheets(args.data)
    expected = pd.read_csv(args.data / "reference_results/expected_results_run1.tsv", sep="\t")
    base = dict(fixed=FIXED, random=(), reference=REFERENCE, normalization="tss", transform="log",
                bh_family="model")
    for model, spec in (
        ("abundance", ModelSpec(name="abundance", outcome="nonzero", median_comparison=True, **base)),
        ("prevalence", ModelSpec(name="prevalence", outcome="presence", **base)),
    ):
        start = time.perf_counter()
        res = fit_formula_model(table, samples, subjects, spec, alpha=0.1).results
        numbers = compare(res, expected[expected["model"] == model], 0.1)
        print(f"{model}: {numbers} ({time.perf_counter() - start:.1f} s)")


if __name__ == "__main__":
    main()
