"""Several random intercepts (crossed or nested factors) as lme4/lmerTest, and per-feature
between-within df."""

from __future__ import annotations

import numpy as np
import pandas as pd

from gutaxis.mixed import build_design, fit_random_intercept


def test_between_within_df_classifies_columns_on_the_rows_a_feature_observes():
    """``diet`` changes within subjects only at t2: within-subject on the full design, but a
    between-subject column for a feature not measured at t2, whose df must then equal a fit of
    its observed rows alone (G - p_b there, not N - G - p_w)."""
    rng = np.random.default_rng(5)
    n = 16
    d = pd.DataFrame({"subject": np.repeat([f"s{i:02d}" for i in range(n)], 3),
                      "tp": pd.Categorical(np.tile(["t0", "t1", "t2"], n), ["t0", "t1", "t2"])})
    base = np.repeat(rng.integers(0, 2, n), 3).astype(float)
    d["diet"] = np.where((d["tp"] == "t2") & (np.arange(3 * n) % 2 == 0), 1 - base, base)
    d["x"] = rng.normal(size=3 * n)
    u = np.repeat(rng.normal(size=n), 3)
    Y = pd.DataFrame({"all_visits": u + rng.normal(size=3 * n), "no_t2": u + rng.normal(size=3 * n)})
    Y.loc[d["tp"] == "t2", "no_t2"] = np.nan
    X = build_design(d, "diet + x")
    res = fit_random_intercept(Y, X, d["subject"], df_method="between_within")
    co = res.coefficients.set_index(["feature_id", "term"])["df"]
    # full design: diet and x vary within subjects (p_w = 2), intercept between (p_b = 1)
    assert co[("all_visits", "diet")] == 3 * n - n - 2
    assert co[("all_visits", "Intercept")] == n - 1
    # on the t0/t1 rows diet is constant within subjects: between, p_b = 2, p_w = 1
    assert co[("no_t2", "diet")] == n - 2
    assert co[("no_t2", "x")] == 2 * n - n - 1
    seen = Y["no_t2"].notna().to_numpy()
    alone = fit_random_intercept(Y.loc[seen, ["no_t2"]], X[seen], d["subject"][seen],
                                 df_method="between_within").coefficients
    np.testing.assert_array_equal(alone["df"].to_numpy(), co.loc["no_t2"].to_numpy())
