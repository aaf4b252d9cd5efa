"""The called features of one modality and contrast, one row each (``<contrast>.calls.tsv``).

The long result table has one row per feature x method x term (several test families
side by side). A reader asking "what changed, and did it change differently in
responders?" wants one row per feature that something called, with the effect that
makes the call, its direction, CI and q, which methods agree, and the prevalence
result beside it. Three questions are answered per feature:

* ``change`` - the post - pre change (term ``timepoint[<post>]``): the effect of the
  primary method (``differential.plot_method``; paired t by default), and every method
  of the change (paired t, Wilcoxon, mixed model) that calls the same direction;
* ``by_response`` - whether the change differs between responders and non-responders
  (the mixed model's time x response term);
* ``at_baseline`` - responders vs non-responders before treatment (OLS adjusted for the
  covariates; Mann-Whitney).

A feature appears when any of these is called at q < alpha, or when its presence
test is (a taxon lost or gained in most pairs, with no abundance call).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

CALL_COLUMNS = [
    "feature", "annotation", "modality", "contrast", "called", "change_effect", "change_ci_low",
    "change_ci_high", "change_q", "change_direction", "change_method", "change_methods_agreeing",
    "by_response_effect", "by_response_ci_low", "by_response_ci_high", "by_response_q",
    "by_response_direction", "at_baseline_effect", "at_baseline_ci_low", "at_baseline_ci_high",
    "at_baseline_q", "at_baseline_direction", "at_baseline_methods_agreeing", "prevalence_direction",
    "prevalence_q", "joint_call", "effect_scale",
]
CHANGE_METHODS = ("paired_t", "wilcoxon", "lmm")
BASELINE_METHODS = ("ols", "mann_whitney")
_PRESENCE = ("presence_mcnemar", "presence_interaction", "presence_fisher")


def _question(results: pd.DataFrame, term: str, methods, primary: str, alpha: float, prefix: str):
    """Per feature: the primary method's effect, CI, q, direction and the agreeing methods."""
    rows = results[(results["term"] == term) & results["method"].isin(methods)]
    if rows.empty:
        return pd.DataFrame()
    called = rows["q"] < alpha
    wide = rows.pivot_table(index="feature", columns="method", values=["effect", "ci_low", "ci_high",
                                                                       "q"], aggfunc="first")
    direction = rows.assign(sign=np.where(called, np.sign(rows["effect"]), 0.0)).pivot_table(
        index="feature", columns="method", values="sign", aggfunc="first").fillna(0.0)
    chosen = primary if primary in direction.columns else direction.columns[0]
    # the primary method's direction, or else the first method calling the feature
    main = direction[chosen].copy()
    for method in direction.columns:
        main = main.where(main != 0, direction[method])
    agreeing = pd.Series("", index=direction.index, dtype=object)
    for method in [m for m in methods if m in direction.columns]:
        hit = (direction[method] != 0) & (direction[method] == main)
        agreeing = agreeing.where(~hit, agreeing + np.where(agreeing == "", "", ", ") + method)
    out = pd.DataFrame(index=direction.index)
    for key in ("effect", "ci_low", "ci_high", "q"):
        out[f"{prefix}_{key}"] = wide[(key, chosen)].reindex(out.index) if (key, chosen) in wide else np.nan
    out[f"{prefix}_direction"] = np.where(main > 0, "up", np.where(main < 0, "down", ""))
    if prefix != "by_response":
        out[f"{prefix}_methods_agreeing"] = agreeing
    if prefix == "change":
        out["change_method"] = chosen
    return out


def call_table(results: pd.DataFrame, alpha: float, post: str | None, primary: str = "paired_t"
               ) -> pd.DataFrame:
    """One row per feature called by any question (see the module docstring).

    Parameters
    ----------
    results : pandas.DataFrame
        A contrast's (or the baseline comparison's) result table.
    alpha : float
        q below which a row is called.
    post : str or None
        The contrast's post timepoint (None: a baseline-only comparison).
    primary : str
        Method whose effect reports the change (``differential.plot_method``).

    Returns
    -------
    pandas.DataFrame
        :data:`CALL_COLUMNS`, ordered by the smallest q of any question. ``called``
        lists the questions called ("change; by_response").
    """
    parts = {}
    if post is not None:
        parts["change"] = _question(results, f"timepoint[{post}]", CHANGE_METHODS, primary, alpha,
                                    "change")
        parts["by_response"] = _question(results, f"timepoint[{post}]:response[responder]", ("lmm",),
                                         "lmm", alpha, "by_response")
    parts["at_baseline"] = _question(results, "response[responder]", BASELINE_METHODS, "ols", alpha,
                                     "at_baseline")
    frame = pd.concat([p for p in parts.values() if not p.empty], axis=1)
    info = results.drop_duplicates("feature").set_index("feature")
    presence = results[results["method"].isin(_PRESENCE)]
    prevalence_called = set(presence.loc[presence["q"] < alpha, "feature"])
    called = pd.Series("", index=frame.index, dtype=object)
    for name in parts:
        column = f"{name}_direction"
        if column in frame:
            hit = frame[column] != ""
            called = called.where(~hit, called + np.where(called == "", "", "; ") + name)
    keep = (called != "") | frame.index.isin(prevalence_called)
    frame = frame[keep].assign(called=called[keep].where(called[keep] != "", "prevalence only"))
    # the prevalence result and joint call as the result table gives them (one value per feature)
    change_rows = results[results["method"] == (primary if post is not None else "ols")]
    change_rows = change_rows.drop_duplicates("feature").set_index("feature")
    for column in ("prevalence_direction", "prevalence_q", "joint_call", "effect_scale"):
        source = change_rows if column in change_rows else info
        frame[column] = source[column].reindex(frame.index) if column in source else ""
    frame["annotation"] = info["annotation"].reindex(frame.index) if "annotation" in info else ""
    frame["modality"] = info["modality"].reindex(frame.index) if "modality" in info else ""
    frame["contrast"] = info["contrast"].reindex(frame.index) if "contrast" in info else ""
    smallest = frame[[c for c in frame.columns if c.endswith("_q") and c != "prevalence_q"]].min(axis=1)
    frame = frame.assign(_q=smallest.fillna(1.0)).rename_axis("feature").reset_index()
    frame = frame.sort_values(["_q", "feature"], kind="mergesort").drop(columns="_q")
    return frame.reindex(columns=CALL_COLUMNS).reset_index(drop=True)
