"""Tests for gutaxis.integration.associations: block (partial) Spearman, p-values, permutations, BH."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import stats
from statsmodels.stats.multitest import multipletests

from gutaxis.integration.associations import (
    associate_blocks,
    bh_fdr,
    permutation_pvalues,
    subject_permutations,
    t_test_pvalues,
)
from gutaxis.io.errors import InputError


def _tied_blocks(n=40, p_a=7, p_b=5, seed=0):
    """Count-like data with many ties and zeros, plus one planted association."""
    rng = np.random.default_rng(seed)
    a = rng.poisson(1.2, (n, p_a)).astype(float)
    b = rng.integers(0, 4, (n, p_b)).astype(float)
    b[:, 0] = a[:, 0] + rng.integers(0, 2, n)  # tied, positively associated
    idx = pd.Index([f"P{i:03d}" for i in range(n)], name="subject_id")
    return (pd.DataFrame(a, index=idx, columns=[f"taxon{j}" for j in range(p_a)]),
            pd.DataFrame(b, index=idx, columns=[f"met{j}" for j in range(p_b)]))


def _as_matrix(table, a, b, column):
    wide = table.pivot(index="feature_a", columns="feature_b", values=column)
    return wide.loc[a.columns, b.columns].to_numpy()


def _covariates(index, seed=1):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "cohort": rng.choice(["lung", "esophageal", "other"], len(index)),
        "age": np.round(rng.normal(60, 8, len(index))),  # rounded: ties in a covariate too
    }, index=index)


def _design(cov):
    """Independent design builder: intercept, ranked numeric, one-hot categoricals."""
    parts = [np.ones(len(cov))]
    for name in cov.columns:
        if cov[name].dtype == object:
            dummies = pd.get_dummies(cov[name], drop_first=True, dtype=float)
            parts.extend(dummies.to_numpy().T)
        else:
            parts.append(stats.rankdata(cov[name]))
    return np.column_stack(parts)


def _residual(y, design):
    beta, *_ = np.linalg.lstsq(design, y, rcond=None)
    return y - design @ beta


# ------------------------------------------------------------------ plain Spearman
def test_block_spearman_equals_scipy_per_pair_with_ties():
    a, b = _tied_blocks()
    assert (a.to_numpy() == 0).mean() > 0.2  # the data really are tie-heavy
    res = associate_blocks(a, b)
    rho = _as_matrix(res.table, a, b, "rho")
    p = _as_matrix(res.table, a, b, "p")
    for i, fa in enumerate(a.columns):
        for j, fb in enumerate(b.columns):
            ref = stats.spearmanr(a[fa], b[fb])
            assert abs(rho[i, j] - ref.statistic) < 1e-10
            assert p[i, j] == pytest.approx(ref.pvalue, rel=1e-9, abs=1e-300)
    assert set(res.table["n"]) == {len(a)}
    assert res.summary["method"] == "spearman" and res.summary["df"] == len(a) - 2


def test_invariant_to_monotone_transform_and_row_order():
    a, b = _tied_blocks(seed=3)
    ref = associate_blocks(a, b).table
    shuffled = np.random.default_rng(5).permutation(len(a))
    res = associate_blocks(np.log1p(a).iloc[shuffled], (b ** 3).iloc[shuffled[::-1]])
    pd.testing.assert_frame_equal(
        ref.sort_values(["feature_a", "feature_b"]).reset_index(drop=True),
        res.table.sort_values(["feature_a", "feature_b"]).reset_index(drop=True),
        check_exact=False, rtol=1e-12, atol=1e-14,
    )


def test_planted_association_is_top_and_significant():
    rng = np.random.default_rng(11)
    n = 60
    a = pd.DataFrame(rng.normal(size=(n, 20)), columns=[f"a{i}" for i in range(20)])
    b = pd.DataFrame(rng.normal(size=(n, 30)), columns=[f"b{i}" for i in range(30)])
    b["b7"] = -np.exp(a["a3"]) + 0.3 * rng.normal(size=n)
    res = associate_blocks(a, b)
    top = res.table.iloc[0]
    assert (top.feature_a, top.feature_b) == ("a3", "b7")
    assert top.rho < -0.8 and top.q < 1e-6
    assert (res.table["q"].iloc[1:] > 0.01).mean() > 0.95


# ------------------------------------------------------------------ partial Spearman
def test_partial_spearman_equals_per_pair_residual_correlation_and_ols_t_test():
    a, b = _tied_blocks(n=50, seed=7)
    cov = _covariates(a.index)
    res = associate_blocks(a, b, cov)
    rho = _as_matrix(res.table, a, b, "rho")
    p = _as_matrix(res.table, a, b, "p")
    design = _design(cov)
    k = design.shape[1] - 1
    assert res.summary["k"] == k == 3 and res.summary["df"] == 50 - 2 - k
    for i, fa in enumerate(a.columns):
        ra = stats.rankdata(a[fa])
        for j, fb in enumerate(b.columns):
            rb = stats.rankdata(b[fb])
            expected = np.corrcoef(_residual(ra, design), _residual(rb, design))[0, 1]
            assert abs(rho[i, j] - expected) < 1e-10
            # t-test of the partial correlation == t-test of rank(a)'s coefficient in
            # OLS rank(b) ~ 1 + rank(a) + covariates (df = n - 2 - k)
            fit = sm.OLS(rb, np.column_stack([design, ra])).fit()
            assert p[i, j] == pytest.approx(fit.pvalues[-1], rel=1e-8)


def test_partial_spearman_equals_inverse_correlation_matrix_formula():
    """pingouin/ppcor formula: rank all variables, invert their correlation matrix."""
    rng = np.random.default_rng(2)
    n = 35
    z1, z2 = rng.normal(size=n), rng.integers(0, 5, n).astype(float)
    x = z1 + rng.normal(size=n)
    y = z1 - z2 + rng.normal(size=n) + 0.5 * x
    ranked = np.column_stack([stats.rankdata(v) for v in (x, y, z1, z2)])
    precision = np.linalg.inv(np.corrcoef(ranked, rowvar=False))
    expected = -precision[0, 1] / np.sqrt(precision[0, 0] * precision[1, 1])
    # closed form with one covariate, as a second independent check
    r = np.corrcoef(ranked[:, :3], rowvar=False)
    one_cov = (r[0, 1] - r[0, 2] * r[1, 2]) / np.sqrt((1 - r[0, 2] ** 2) * (1 - r[1, 2] ** 2))

    res2 = associate_blocks(pd.DataFrame({"x": x}), pd.DataFrame({"y": y}),
                            pd.DataFrame({"z1": z1, "z2": z2}))
    res1 = associate_blocks(pd.DataFrame({"x": x}), pd.DataFrame({"y": y}), pd.DataFrame({"z1": z1}))
    assert res2.table["rho"].iloc[0] == pytest.approx(expected, abs=1e-12)
    assert res1.table["rho"].iloc[0] == pytest.approx(one_cov, abs=1e-12)


def test_t_pvalues_formula_and_degenerate_values():
    r = np.array([-1.0, -0.4, 0.0, 0.25, 1.0])
    n, k = 20, 2
    df = n - 2 - k
    t = r[1:4] * np.sqrt(df / (1 - r[1:4] ** 2))
    expected = 2 * stats.t.sf(np.abs(t), df)
    p = t_test_pvalues(r, n, k)
    np.testing.assert_allclose(p[1:4], expected, rtol=1e-12)
    assert p[0] == 0 and p[-1] == 0 and p[2] == 1


@pytest.mark.rcheck
def test_partial_spearman_against_r(tmp_path):
    if shutil.which("Rscript") is None:
        pytest.skip("Rscript not available")
    a, b = _tied_blocks(n=30, p_a=2, p_b=2, seed=4)
    cov = _covariates(a.index, seed=9)
    frame = pd.concat([a, b, cov], axis=1)
    frame.to_csv(tmp_path / "d.tsv", sep="\t", index=False)
    script = f"""
    d <- read.delim("{tmp_path / 'd.tsv'}")
    X <- model.matrix(~ factor(cohort) + rank(age), d)
    k <- ncol(X) - 1; n <- nrow(d)
    for (fa in c("taxon0", "taxon1")) for (fb in c("met0", "met1")) {{
      ea <- resid(lm(rank(d[[fa]]) ~ X - 1)); eb <- resid(lm(rank(d[[fb]]) ~ X - 1))
      r <- cor(ea, eb); df <- n - 2 - k
      p <- 2 * pt(-abs(r * sqrt(df / (1 - r^2))), df)
      s <- cor.test(d[[fa]], d[[fb]], method = "spearman", exact = FALSE)
      cat(fa, fb, sprintf("%.15g", r), sprintf("%.15g", p), sprintf("%.15g", s$estimate), "\\n")
    }}
    """
    out = subprocess.run(["Rscript", "-e", script], capture_output=True, text=True, check=True)
    partial = associate_blocks(a, b, cov).table.set_index(["feature_a", "feature_b"])
    plain = associate_blocks(a, b).table.set_index(["feature_a", "feature_b"])
    lines = [line.split() for line in out.stdout.strip().splitlines()]
    assert len(lines) == 4
    for fa, fb, r, p, rs in lines:
        assert partial.loc[(fa, fb), "rho"] == pytest.approx(float(r), abs=1e-12)
        assert partial.loc[(fa, fb), "p"] == pytest.approx(float(p), rel=1e-9)
        assert plain.loc[(fa, fb), "rho"] == pytest.approx(float(rs), abs=1e-12)


# ------------------------------------------------------------------ BH
def test_bh_equals_statsmodels_including_ties_and_nan():
    rng = np.random.default_rng(0)
    p = np.concatenate([rng.uniform(size=5000) ** 3, np.round(rng.uniform(size=2000), 2),
                        [0.0, 1.0, 1.0, 1e-300]])
    rng.shuffle(p)
    expected = multipletests(p, method="fdr_bh")[1]
    np.testing.assert_array_equal(bh_fdr(p), expected)
    grid = p[:4000].reshape(40, 100)
    np.testing.assert_array_equal(bh_fdr(grid).ravel(), multipletests(grid.ravel(), method="fdr_bh")[1])
    with_nan = p[:100].copy()
    with_nan[[3, 50]] = np.nan
    q = bh_fdr(with_nan)
    assert np.isnan(q[[3, 50]]).all()
    finite = ~np.isnan(with_nan)
    np.testing.assert_array_equal(q[finite], multipletests(with_nan[finite], method="fdr_bh")[1])


def test_table_q_is_bh_over_all_pairs_even_when_filtered():
    a, b = _tied_blocks(n=45, p_a=12, p_b=9, seed=8)
    full = associate_blocks(a, b).table
    np.testing.assert_array_equal(full["q"], multipletests(full["p"], method="fdr_bh")[1])
    assert len(full) == 12 * 9
    assert full["p"].is_monotonic_increasing

    filtered = associate_blocks(a, b, min_abs_rho=0.1, max_q=0.9, top_k=5)
    table = filtered.table
    assert 0 < len(table) <= 5
    assert (table["rho"].abs() >= 0.1).all() and (table["q"] <= 0.9).all()
    merged = table.merge(full, on=["feature_a", "feature_b"], suffixes=("", "_full"))
    np.testing.assert_array_equal(merged["q"], merged["q_full"])
    assert filtered.summary["pairs_tested"] == 108 and filtered.summary["pairs_written"] == len(table)
    assert list(table.columns) == ["feature_a", "feature_b", "rho", "p", "q", "n"]


# ------------------------------------------------------------------ permutations
def _naive_freedman_lane(a, b, design, perms):
    """Per-pair, per-permutation loop: residual of the reduced model permuted."""
    p_a, p_b = a.shape[1], b.shape[1]
    counts = np.zeros((p_a, p_b))
    for i in range(p_a):
        ea = _residual(stats.rankdata(a[:, i]), design)
        for j in range(p_b):
            rb = stats.rankdata(b[:, j])
            eb = _residual(rb, design)
            fitted = rb - eb
            obs = np.corrcoef(ea, eb)[0, 1]
            for perm in perms:
                star = _residual(fitted + eb[perm], design)
                counts[i, j] += abs(np.corrcoef(ea, star)[0, 1]) >= abs(obs) - 1e-9
    return (counts + 1) / (len(perms) + 1)


@pytest.mark.parametrize("with_covariates", [False, True])
def test_permutation_pvalues_equal_naive_loop(with_covariates):
    a, b = _tied_blocks(n=24, p_a=3, p_b=3, seed=12)
    cov = _covariates(a.index, seed=3) if with_covariates else None
    n_perm, seed = 199, 2024
    res = associate_blocks(a, b, cov, n_perm=n_perm, seed=seed, chunk_bytes=200)  # force chunking
    design = _design(cov) if with_covariates else np.ones((len(a), 1))
    perms = subject_permutations(len(a), n_perm, seed)
    expected = _naive_freedman_lane(a.to_numpy(), b.to_numpy(), design, perms)
    np.testing.assert_allclose(_as_matrix(res.table, a, b, "p"), expected, rtol=0, atol=1e-12)
    assert res.summary["p_method"].startswith("permutation")
    np.testing.assert_array_equal(res.table["q"], multipletests(res.table["p"], method="fdr_bh")[1])


def test_permutations_reproducible_bounded_and_find_planted_effect():
    a, b = _tied_blocks(n=40, seed=21)
    first = associate_blocks(a, b, n_perm=499, seed=7)
    again = associate_blocks(a, b, n_perm=499, seed=7)
    other = associate_blocks(a, b, n_perm=499, seed=8)
    pd.testing.assert_frame_equal(first.table, again.table)
    assert not first.table["p"].equals(other.table["p"])
    p = first.table["p"]
    assert p.min() >= 1 / 500 and p.max() <= 1
    planted = first.table.query("feature_a == 'taxon0' and feature_b == 'met0'")
    assert planted["p"].iloc[0] == pytest.approx(1 / 500)
    # agrees with the t approximation away from the tail
    t_p = associate_blocks(a, b).table.set_index(["feature_a", "feature_b"])["p"]
    perm_p = first.table.set_index(["feature_a", "feature_b"])["p"]
    assert np.corrcoef(t_p.loc[perm_p.index], perm_p)[0, 1] > 0.95


def test_stratified_permutations_stay_within_strata():
    strata = np.array(list("aabbbcccca"))
    perms = subject_permutations(10, 300, seed=1, strata=strata)
    assert (strata[perms] == strata).all()
    assert all(sorted(row) == list(range(10)) for row in perms[:20])
    assert len({tuple(row) for row in perms}) > 100


def test_permutation_pvalues_identity_permutation_counts_itself():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(15, 4))
    x -= x.mean(axis=0)
    x /= np.linalg.norm(x, axis=0)
    r = x.T @ x
    identity = np.tile(np.arange(15), (3, 1))
    np.testing.assert_array_equal(permutation_pvalues(x, x, r, identity), np.ones((4, 4)))


# ------------------------------------------------------------------ dropping and errors
def test_constant_missing_and_absorbed_features_are_dropped_with_reasons():
    a, b = _tied_blocks(n=30, seed=5)
    cov = _covariates(a.index, seed=2)
    a["constant_taxon"] = 0.0
    a["cohort_marker"] = (cov["cohort"] == "lung").astype(float)  # explained by cohort
    b.loc[b.index[4], "met2"] = np.nan
    cov.loc[cov.index[0], "age"] = np.nan
    res = associate_blocks(a, b, cov)
    reasons = res.dropped.set_index("id")["reason"]
    assert "constant" in reasons["constant_taxon"]
    assert "covariates" in reasons["cohort_marker"]
    assert "missing" in reasons["met2"]
    assert "age" in reasons[a.index[0]]
    assert set(res.dropped["kind"]) == {"feature_a", "feature_b", "row"}
    kept = set(res.table["feature_a"]) | set(res.table["feature_b"])
    assert not kept & {"constant_taxon", "cohort_marker", "met2"}
    assert set(res.table["n"]) == {29}

    with pytest.raises(InputError, match="met2"):
        associate_blocks(a, b, missing="raise", source_b="metabolome.tsv")


def test_mismatched_rows_and_too_few_subjects_raise_input_error():
    a, b = _tied_blocks(n=20)
    with pytest.raises(InputError, match="no counterpart"):
        associate_blocks(a, b.iloc[:-2], source_a="taxa", source_b="immune")
    with pytest.raises(InputError, match="too few subjects"):
        associate_blocks(a.iloc[:4], b.iloc[:4], _covariates(a.index[:4]))
