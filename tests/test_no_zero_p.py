"""No resampling p-value of the workflow is 0 (issue 19 item 4).

Every bootstrap or permutation p-value is (b + 1)/(B + 1) per tail (Phipson & Smyth 2010,
"Permutation p-values should never be zero"), so the smallest value is 1/(B + 1) for a
one-sided-count (|statistic| or F) permutation test and 2/(B + 1) for the two-sided bootstrap
p of the mediation effects. Each function that computes one is run here on the case that
used to give (or could give) 0: an effect so strong that no replicate is as extreme as the
observed statistic, or every bootstrap replicate falls on one side of 0. The exact
enumerations (complete within-stratum PERMANOVA, the exact sign-flip Wilcoxon) count the
observed arrangement among the arrangements, so their floor is 1/(number of arrangements).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.spatial.distance import pdist, squareform

from gutaxis.diversity import permanova as pm
from gutaxis.integration.associations import associate_blocks, bh_fdr
from gutaxis.stats.paired import wilcoxon_signed_rank
from gutaxis.integration.triads import axis_triads, bootstrap_p, mediate_triad


def _distances(x, ids):
    return pd.DataFrame(squareform(pdist(x)), index=ids, columns=ids)


def _separated(n_per_group=12, seed=0):
    """Two groups whose centroids lie 50 SD apart: no relabelling comes near the observed F."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(2 * n_per_group, 3))
    x[n_per_group:, 0] += 50.0
    ids = [f"s{i:02d}" for i in range(2 * n_per_group)]
    return x, ids, np.repeat(["a", "b"], n_per_group)


def _chain(n=80, seed=1):
    """x -> m -> y with strong paths: every bootstrap replicate of the ACME is positive."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    m = 1.2 * x + 0.5 * rng.normal(size=n)
    y = 1.2 * m + 0.5 * rng.normal(size=n)
    return [(v - v.mean()) / v.std(ddof=1) for v in (x, m, y)]


def test_bootstrap_p_is_never_zero():
    one_sided = np.linspace(0.1, 1.0, 999)
    assert bootstrap_p(one_sided) == 2 / 1000
    assert bootstrap_p(-one_sided) == 2 / 1000
    rng = np.random.default_rng(0)
    p = bootstrap_p(rng.normal(loc=rng.normal(scale=20, size=200), size=(99, 200)))
    assert p.min() == 2 / 100 and (p > 0).all()


def test_mediation_p_values_and_q_are_never_zero():
    x, m, y = _chain()
    fit = mediate_triad(x, m, y, n_rep=99, seed=3)
    assert fit["acme_ci_low"] > 0  # every replicate positive: statsmodels' own p is 0 here
    for key in ("acme", "ade", "total", "prop_mediated"):
        assert fit[f"{key}_p"] >= 2 / 100, key
    assert fit["acme_p"] == 2 / 100
    assert bh_fdr(np.array([fit["acme_p"]] * 3)).min() == 2 / 100


def test_axis_triads_p_and_q_are_never_zero():
    x, m, y = _chain(n=60, seed=2)
    idx = pd.Index([f"P{i:02d}" for i in range(60)], name="subject_id")
    noise = np.random.default_rng(5).normal(size=(60, 2))
    micro = pd.DataFrame({"x0": x, "x1": noise[:, 0]}, index=idx)
    metab = pd.DataFrame({"m0": m}, index=idx)
    immune = pd.DataFrame({"y0": y, "y1": noise[:, 1]}, index=idx)
    xm, my = associate_blocks(micro, metab).table, associate_blocks(metab, immune).table
    result = axis_triads(micro, metab, immune, xm, my, n_rep=49, seed=4)
    table = result.table
    assert len(table) >= 1 and table.loc[0, "microbe"] == "x0" and table.loc[0, "immune"] == "y0"
    p_columns = [c for c in table.columns if c.endswith("_p") or c.endswith("_q")]
    assert table[p_columns].min().min() >= 2 / 50
    assert table.loc[0, "acme_p"] == 2 / 50 and table.loc[0, "acme_q"] > 0


def test_association_permutation_p_is_never_zero():
    rng = np.random.default_rng(3)
    a = pd.DataFrame(rng.normal(size=(30, 3)), columns=["a0", "a1", "a2"])
    b = pd.DataFrame({"b0": a["a0"] * 2 + 1, "b1": rng.normal(size=30)})  # b0 monotone in a0
    result = associate_blocks(a, b, n_perm=199, seed=1)
    p = result.table.set_index(["feature_a", "feature_b"])["p"]
    assert p.loc[("a0", "b0")] == 1 / 200
    assert p.min() > 0 and result.table["q"].min() > 0


def test_permanova_and_permdisp_monte_carlo_p_are_never_zero():
    x, ids, labels = _separated()
    meta = pd.DataFrame({"g": labels}, index=ids)
    table = pm.permanova(_distances(x, ids), meta, ["g"], permutations=199, seed=1)
    row = table.set_index("term").loc["g"]
    assert "Monte Carlo" in row["permutation_scheme"] and row["permutations"] == 199
    assert row["p_value"] == 1 / 200
    # group b spread 40 times wider: no relabelling reaches the observed dispersion F
    x[labels == "b"] = (x[labels == "b"] - x[labels == "b"].mean(axis=0)) * 40.0
    disp = pm.permdisp(_distances(x, ids), pd.Series(labels, index=ids, name="g"), permutations=199, seed=1)
    assert disp.table.loc[0, "p_value"] == 1 / 200


def test_permanova_complete_enumeration_p_is_never_zero():
    """Within-subject swaps of 6 subjects: 2**6 arrangements, the observed one among them."""
    rng = np.random.default_rng(4)
    k = 6
    pre = rng.normal(size=(k, 3))
    post = pre + np.array([30.0, 0.0, 0.0]) + 0.1 * rng.normal(size=(k, 3))
    ids = [f"S{i}_pre" for i in range(k)] + [f"S{i}_post" for i in range(k)]
    meta = pd.DataFrame({"timepoint": ["pre"] * k + ["post"] * k,
                         "subject_id": [f"S{i}" for i in range(k)] * 2}, index=ids)
    table = pm.permanova(_distances(np.vstack([pre, post]), ids), meta, ["timepoint"],
                         strata="subject_id", permutations=999, seed=1)
    row = table.set_index("term").loc["timepoint"]
    assert "complete enumeration" in row["permutation_scheme"]
    # swapping every subject gives the same partition, so the observed F occurs twice
    assert row["p_value"] == pytest.approx(2 / 2**k)


def test_wilcoxon_sign_flip_permutation_p_is_never_zero():
    """n <= 13 with a tie: the exact sign-flip branch; every difference positive."""
    d = np.array([[1.0], [2.0], [2.0], [3.0], [4.0], [5.0], [6.0], [7.0]])
    res = wilcoxon_signed_rank(d)
    assert res.loc[0, "p_method"] == "permutation"
    assert res.loc[0, "p"] == pytest.approx(2 / 2**8)  # only all-positive reaches W+ (both tails)
    assert (res["p"] > 0).all()


def test_model_label_permutation_p_is_never_zero():
    from gutaxis.models.features import EXCLUSION_COLUMNS, NON_RESPONDER, RESPONDER, ModelData
    from gutaxis.models.pipeline import Block, PipelineOptions
    from gutaxis.models.fit import CVSettings, nested_cv, permutation_test

    rng = np.random.default_rng(6)
    n, p = 30, 8
    y = np.r_[np.ones(n // 2, int), np.zeros(n - n // 2, int)]
    X = rng.normal(size=(n, p))
    X[:, 0] += 6.0 * y  # perfectly separating feature: every permutation's AUROC is lower
    rows = pd.DataFrame({"subject_id": [f"S{i:02d}" for i in range(n)], "cohort": "a",
                         "timepoint": "baseline", "label": np.where(y == 1, RESPONDER, NON_RESPONDER)})
    block = Block("omics", "omics", "omics", tuple(range(p)), tuple(f"f{j}" for j in range(p)))
    data = ModelData("sim", X, y, rows, [block], "concatenate", "baseline",
                     pd.DataFrame(columns=EXCLUSION_COLUMNS))
    options = PipelineOptions(max_features_per_block=4, grids={"l1_logistic": {"C": [1.0]}})
    result = nested_cv(data, "l1_logistic", options, CVSettings(outer_folds=3, outer_repeats=1,
                                                                inner_folds=3, seed=2))
    perm = permutation_test(result, options, n_permutations=9, repeats=1)
    assert perm["perm_p_value"] == perm["perm_min_p"] == 1 / 10
