"""calls.tsv: one row per called feature, the called effect and the methods that agree."""

from __future__ import annotations

import numpy as np
import pandas as pd

from gutaxis.differential.calls import CALL_COLUMNS, call_table
from gutaxis.differential.contrast import run_contrast
from test_differential import CONTRAST, simulate_trial


def test_calls_are_the_features_any_question_calls_one_row_each():
    table, samples, responders, truth = simulate_trial(n_features=80, n_changed=10, effect=1.0, seed=21)
    res = run_contrast(table, samples, CONTRAST, transform="log2", responders=responders,
                       sensitivity="none").results
    calls = call_table(res, 0.1, "post")
    assert list(calls.columns) == CALL_COLUMNS and calls["feature"].is_unique
    called_any = set(res.loc[(res["q"] < 0.1) & res["term"].isin(
        ["timepoint[post]", "timepoint[post]:response[responder]", "response[responder]"]), "feature"])
    assert set(calls["feature"]) == called_any
    # the planted changes are called with the paired t effect, in the planted direction
    planted = truth[truth != 0]
    change = calls.set_index("feature").loc[lambda d: d["change_direction"] != ""]
    assert set(planted.index) <= set(change.index)
    paired = res[(res["method"] == "paired_t")].set_index("feature")
    for feature in planted.index:
        row = change.loc[feature]
        assert row["change_direction"] == ("up" if planted[feature] > 0 else "down")
        assert row["change_effect"] == paired.loc[feature, "effect"]
        assert row["change_q"] == paired.loc[feature, "q"]
        agreeing = set(row["change_methods_agreeing"].split(", "))
        expected = {m for m in ("paired_t", "wilcoxon", "lmm")
                    if ((r := res[(res["method"] == m) & (res["feature"] == feature)
                                  & (res["term"] == "timepoint[post]")]).iloc[0]["q"] < 0.1)
                    and np.sign(r.iloc[0]["effect"]) == np.sign(planted[feature])}
        assert agreeing == expected
    # ordered by the smallest q of any question
    smallest = calls[["change_q", "by_response_q", "at_baseline_q"]].min(axis=1)
    assert smallest.is_monotonic_increasing


def test_baseline_only_calls_have_the_baseline_question_only():
    rows = pd.DataFrame({
        "feature": ["a", "a", "b", "b"], "annotation": "", "modality": "m", "contrast": "baseline",
        "term": "response[responder]", "method": ["ols", "mann_whitney"] * 2,
        "effect": [1.0, 0.9, -0.2, -0.1], "ci_low": [0.5, 0.4, -0.6, -0.5], "ci_high": [1.5, 1.4, 0.2, 0.3],
        "q": [0.01, 0.2, 0.6, 0.7], "effect_scale": "log2"})
    calls = call_table(rows, 0.1, None)
    assert calls["feature"].tolist() == ["a"]
    assert calls.loc[0, "called"] == "at_baseline" and calls.loc[0, "at_baseline_methods_agreeing"] == "ols"
    assert calls[["change_effect", "by_response_q"]].isna().all().all()
