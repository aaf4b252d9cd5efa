"""PERMANOVA / PERMDISP: textbook sums of squares, scikit-bio, exact enumeration, vegan."""

from __future__ import annotations

import itertools
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.spatial.distance import pdist, squareform

from gutaxis.diversity import permanova as pm
from gutaxis.io.errors import InputError


# ---------------------------------------------------------------------------
# helpers


def euclidean_frame(x, ids):
    return pd.DataFrame(squareform(pdist(x)), index=ids, columns=ids)


def braycurtis_frame(x, ids):
    return pd.DataFrame(squareform(pdist(x, "braycurtis")), index=ids, columns=ids)


def textbook_one_way(d, labels):
    """Anderson (2001) eq. 1-3: SS_T, SS_W from sums of squared distances."""
    n = len(labels)
    labels = np.asarray(labels)
    iu = np.triu_indices(n, 1)
    ss_t = np.sum(d[iu] ** 2) / n
    ss_w = 0.0
    groups = np.unique(labels)
    for g in groups:
        idx = np.flatnonzero(labels == g)
        sub = d[np.ix_(idx, idx)]
        ss_w += np.sum(np.triu(sub, 1) ** 2) / len(idx)
    a = len(groups)
    f = ((ss_t - ss_w) / (a - 1)) / (ss_w / (n - a))
    return f, (ss_t - ss_w) / ss_t


def textbook_sequential(d, designs):
    """Type I SS with explicit hat matrices H = X (X'X)^+ X' (McArdle & Anderson 2001)."""
    n = d.shape[0]
    j = np.eye(n) - np.ones((n, n)) / n
    g = j @ (-0.5 * d**2) @ j
    x = np.ones((n, 1))
    previous = 0.0
    ss, dfs = [], []
    for block in designs:
        x = np.hstack([x, block])
        h = x @ np.linalg.pinv(x)
        explained = np.trace(h @ g)
        ss.append(explained - previous)
        dfs.append(np.linalg.matrix_rank(x) - 1 - sum(dfs))
        previous = explained
    total = np.trace(g)
    resid = total - previous
    df_res = n - 1 - sum(dfs)
    f = [(s / k) / (resid / df_res) for s, k in zip(ss, dfs)]
    return np.array(f), np.array(ss) / total


def dummies(labels):
    levels = sorted(set(labels))
    return np.array([[lab == lev for lev in levels[1:]] for lab in labels], dtype=float)


def paired_design(k, effect, rng, p=6):
    """k subjects x (pre, post); post shifted by `effect` in the first coordinate."""
    base = rng.normal(size=(k, p)) * 2.0
    pre = base + rng.normal(scale=0.7, size=(k, p))
    post = base + rng.normal(scale=0.7, size=(k, p))
    post[:, 0] += effect
    x = np.vstack([pre, post])
    ids = [f"S{i:02d}_pre" for i in range(k)] + [f"S{i:02d}_post" for i in range(k)]
    meta = pd.DataFrame({"timepoint": ["pre"] * k + ["post"] * k,
                         "subject_id": [f"S{i:02d}" for i in range(k)] * 2}, index=ids)
    return x, ids, meta


# ---------------------------------------------------------------------------
# statistic


def test_one_factor_f_and_r2_equal_textbook():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(17, 5))
    labels = ["a"] * 5 + ["b"] * 7 + ["c"] * 5
    x[5:12] += 0.8
    ids = [f"s{i}" for i in range(17)]
    d = braycurtis_frame(np.abs(x) + 0.1, ids)
    res = pm.permanova(d, pd.DataFrame({"g": labels}, index=ids), ["g"], permutations=0)
    f, r2 = textbook_one_way(d.to_numpy(), labels)
    assert res.loc[0, "pseudo_f"] == pytest.approx(f, rel=1e-10, abs=1e-8)
    assert res.loc[0, "r2"] == pytest.approx(r2, rel=1e-10, abs=1e-8)
    assert res.loc[0, "df"] == 2 and res.loc[1, "df"] == 14 and res.loc[2, "df"] == 16


def test_sequential_terms_equal_hat_matrix_textbook():
    rng = np.random.default_rng(2)
    n = 24
    cohort = rng.choice(["lung", "eso", "other"], n)
    response = rng.choice(["responder", "non_responder"], n)
    age = rng.normal(60, 8, n)
    x = rng.gamma(1.0, size=(n, 8))
    ids = [f"s{i:02d}" for i in range(n)]
    d = braycurtis_frame(x, ids)
    meta = pd.DataFrame({"cohort": cohort, "response": response, "age": age}, index=ids)
    res = pm.permanova(d, meta, ["cohort", "response", "age"], permutations=0).set_index("term")
    f, r2 = textbook_sequential(d.to_numpy(), [dummies(cohort), dummies(response), age[:, None]])
    np.testing.assert_allclose(res.loc[["cohort", "response", "age"], "pseudo_f"], f, rtol=1e-10, atol=1e-8)
    np.testing.assert_allclose(res.loc[["cohort", "response", "age"], "r2"], r2, rtol=1e-10, atol=1e-8)
    assert res.loc["Total", "sum_of_squares"] == pytest.approx(
        res.loc[["cohort", "response", "age", "Residual"], "sum_of_squares"].sum())


def test_euclidean_permanova_equals_type_one_anova_of_coordinates():
    # For Euclidean distances a term's SS is the sum over coordinates of its OLS type-I SS.
    import statsmodels.formula.api as smf
    from statsmodels.stats.anova import anova_lm

    rng = np.random.default_rng(3)
    n = 20
    meta = pd.DataFrame({"a": rng.choice(["x", "y"], n), "b": rng.choice(["p", "q", "r"], n)},
                        index=[f"s{i}" for i in range(n)])
    coords = rng.normal(size=(n, 3))
    ss = np.zeros(2)
    for k in range(3):
        frame = meta.assign(y=coords[:, k])
        table = anova_lm(smf.ols("y ~ C(a) + C(b)", frame).fit(), typ=1)
        ss += table["sum_sq"].to_numpy()[:2]
    res = pm.permanova(euclidean_frame(coords, list(meta.index)), meta, ["a", "b"], permutations=0)
    np.testing.assert_allclose(res["sum_of_squares"].to_numpy()[:2], ss, rtol=1e-10)


def test_statistic_equals_scikit_bio_permanova():
    from skbio import DistanceMatrix
    from skbio.stats.distance import permanova as skbio_permanova

    rng = np.random.default_rng(4)
    x = rng.gamma(0.7, size=(40, 12))
    labels = np.repeat(["a", "b", "c", "d"], 10)
    x[labels == "b", :3] *= 2.5
    ids = [f"s{i:02d}" for i in range(40)]
    d = braycurtis_frame(x, ids)
    ours = pm.permanova(d, pd.DataFrame({"g": labels}, index=ids), ["g"], permutations=499, seed=7)
    theirs = skbio_permanova(DistanceMatrix(d.to_numpy(), ids), labels, permutations=499, seed=7)
    assert ours.loc[0, "pseudo_f"] == pytest.approx(theirs["test statistic"], rel=1e-10)
    # different random permutations: p agrees within Monte-Carlo error
    p = 0.5 * (theirs["p-value"] + ours.loc[0, "p_value"])
    assert abs(ours.loc[0, "p_value"] - theirs["p-value"]) <= 4.5 * np.sqrt(2 * max(p * (1 - p), 1e-3) / 499)


# ---------------------------------------------------------------------------
# permutations


def test_restricted_permutations_stay_in_strata_and_are_uniform():
    strata = np.array(["b", "a", "b", "c", "a", "b", "c", "c", "c"])
    blocks = list(pm.restricted_permutations(strata, 6000, seed=3, block_size=700))
    perms = np.vstack(blocks)
    assert perms.shape == (6000, 9)
    assert np.all(np.sort(perms, axis=1) == np.arange(9))
    assert np.all(strata[perms] == strata[None, :])
    # stratum 'a' (positions 1, 4) is swapped about half the time
    swapped = np.mean(perms[:, 1] == 4)
    assert abs(swapped - 0.5) < 0.03
    # stratum 'c' (4 members): each of its 24 orders about equally often
    orders = pd.Series([tuple(r) for r in perms[:, [3, 6, 7, 8]]]).value_counts()
    assert len(orders) == 24 and orders.min() > 6000 / 24 * 0.7


def test_permutation_stream_does_not_depend_on_block_size():
    strata = np.repeat(np.arange(30), 2)
    a = np.vstack(list(pm.restricted_permutations(strata, 250, seed=11, block_size=250)))
    b = np.vstack(list(pm.restricted_permutations(strata, 250, seed=11, block_size=17)))
    np.testing.assert_array_equal(a, b)


def test_all_restricted_permutations_enumerates_each_once():
    strata = ["x", "x", "y", "z", "y", "y"]
    perms = pm.all_restricted_permutations(strata)
    assert len(perms) == pm.count_restricted_permutations(strata) == 2 * 6
    assert len({tuple(p) for p in perms}) == len(perms)
    np.testing.assert_array_equal(perms[0], np.arange(6))
    labels = np.asarray(strata)
    assert np.all(labels[perms] == labels[None, :])


def test_within_subject_p_is_exact_over_all_swaps():
    rng = np.random.default_rng(5)
    k = 8
    x, ids, meta = paired_design(k, effect=1.2, rng=rng)
    d = euclidean_frame(x, ids)
    res = pm.permanova(d, meta, ["timepoint"], strata="subject_id", permutations=999, seed=1)
    # brute force: every assignment of (pre, post) within each subject
    f_obs, _ = textbook_one_way(d.to_numpy(), meta["timepoint"].to_numpy())
    count = 0
    for swaps in itertools.product([False, True], repeat=k):
        labels = meta["timepoint"].to_numpy().copy()
        for i, swap in enumerate(swaps):
            if swap:
                labels[i], labels[i + k] = labels[i + k], labels[i]
        f, _ = textbook_one_way(d.to_numpy(), labels)
        count += f >= f_obs - 1e-9
    assert res.loc[0, "permutations"] == 2**k - 1
    assert "complete enumeration" in res.loc[0, "permutation_scheme"]
    assert res.loc[0, "p_value"] == pytest.approx(count / 2**k, abs=1e-15)
    # swapping all subjects gives the same partition, so the observed F occurs twice at least
    assert count >= 2


def test_p_value_invariant_to_sample_order_and_subject_names():
    rng = np.random.default_rng(6)
    x, ids, meta = paired_design(40, effect=0.3, rng=rng)
    d = euclidean_frame(x, ids)
    first = pm.permanova(d, meta, ["timepoint"], strata="subject_id", permutations=499, seed=3)
    order = rng.permutation(len(ids))
    shuffled = d.iloc[order, order]
    renamed = meta.iloc[order].copy()
    renamed["subject_id"] = renamed["subject_id"].map(lambda s: "Z" + s[::-1])
    second = pm.permanova(shuffled, renamed, ["timepoint"], strata="subject_id", permutations=499, seed=3)
    assert first.loc[0, "pseudo_f"] == pytest.approx(second.loc[0, "pseudo_f"], rel=1e-12)
    assert first.loc[0, "p_value"] == second.loc[0, "p_value"]
    assert 0 < first.loc[0, "p_value"] < 1
    # and the result is reproducible byte for byte
    again = pm.permanova(d, meta, ["timepoint"], strata="subject_id", permutations=499, seed=3)
    pd.testing.assert_frame_equal(first, again)


def test_planted_time_effect_is_detected_and_null_is_not():
    rng = np.random.default_rng(8)
    x, ids, meta = paired_design(30, effect=2.0, rng=rng)
    strong = pm.permanova(euclidean_frame(x, ids), meta, ["timepoint"], strata="subject_id", seed=1)
    assert strong.loc[0, "p_value"] <= 0.002
    x, ids, meta = paired_design(30, effect=0.0, rng=rng)
    null = pm.permanova(euclidean_frame(x, ids), meta, ["timepoint"], strata="subject_id", seed=1)
    assert null.loc[0, "p_value"] > 0.01


def test_notes_for_untestable_terms_and_input_errors():
    rng = np.random.default_rng(9)
    x, ids, meta = paired_design(10, effect=0.5, rng=rng)
    meta["arm"] = meta["subject_id"].map(lambda s: "A" if int(s[1:]) % 2 else "B")
    meta["arm_copy"] = meta["arm"]
    d = euclidean_frame(x, ids)
    res = pm.permanova(d, meta, ["arm", "arm_copy"], strata="subject_id", permutations=99).set_index("term")
    assert "constant within every" in res.loc["arm", "note"]
    assert res.loc["arm_copy", "df"] == 0 and np.isnan(res.loc["arm_copy", "p_value"])
    assert "aliased" in res.loc["arm_copy", "note"]
    bad = meta.copy()
    bad.loc[ids[0], "timepoint"] = ""
    with pytest.raises(InputError, match="no value"):
        pm.permanova(d, bad, ["timepoint"])
    with pytest.raises(InputError, match="no metadata row"):
        pm.permanova(d, meta.iloc[1:], ["timepoint"])
    asym = d.copy()
    asym.iloc[0, 1] += 1.0
    with pytest.raises(InputError, match="not symmetric"):
        pm.permanova(asym, meta, ["timepoint"])


# ---------------------------------------------------------------------------
# PERMDISP


def test_permdisp_euclidean_distances_to_centroid_and_f():
    from scipy.stats import f_oneway

    rng = np.random.default_rng(10)
    x = rng.normal(size=(21, 4))
    labels = np.repeat(["a", "b", "c"], 7)
    x[labels == "c"] *= 2.0
    ids = [f"s{i:02d}" for i in range(21)]
    res = pm.permdisp(euclidean_frame(x, ids), pd.Series(labels, index=ids, name="g"), permutations=199)
    centroids = pd.DataFrame(x).groupby(labels).transform("mean").to_numpy()
    z = np.linalg.norm(x - centroids, axis=1)
    np.testing.assert_allclose(res.distances.to_numpy(), z, rtol=1e-9)
    assert res.table.loc[0, "f"] == pytest.approx(f_oneway(*[z[labels == g] for g in "abc"]).statistic, rel=1e-9)
    assert list(res.group_distances["group"]) == ["a", "b", "c"]


# ---------------------------------------------------------------------------
# standard test set


def test_standard_beta_tests_runs_every_test_and_explains_gaps():
    rng = np.random.default_rng(12)
    k = 12
    x, ids, meta = paired_design(k, effect=1.0, rng=rng)
    x = np.vstack([x, rng.normal(size=(1, x.shape[1]))])
    ids = ids + ["S99_pre"]
    samples = pd.DataFrame({"sample_id": ids,
                            "subject_id": list(meta["subject_id"]) + ["S99"],
                            "timepoint": ["baseline" if t == "pre" else "post" for t in meta["timepoint"]]
                            + ["baseline"]})
    subjects = pd.DataFrame({"subject_id": [f"S{i:02d}" for i in range(k)] + ["S99"],
                             "cohort": ["lung", "eso"] * (k // 2) + ["lung"],
                             "response": ["responder", "non_responder", ""] * (k // 3) + ["responder"]})
    out = pm.standard_beta_tests(euclidean_frame(x, ids), samples, subjects, "baseline", "post",
                                 permutations=99, seed=2)
    tests = set(out.permanova["test"])
    assert tests == {"time_within_subject", "response_at_baseline", "cohort_at_baseline",
                     "sequential_at_baseline"}
    time = out.permanova[(out.permanova["test"] == "time_within_subject") & (out.permanova["term"] == "timepoint")]
    assert time["strata"].item() == "subject_id" and time["n_samples"].item() == 2 * k
    seq = out.permanova[out.permanova["test"] == "sequential_at_baseline"]
    assert list(seq["term"]) == ["cohort", "response", "Residual", "Total"]
    assert len(out.permdisp) == 5  # timepoint, response, cohort, and both sequential terms
    assert "S99_pre" in set(out.notes["item"])  # unpaired
    assert (out.notes["reason"] == "no response for the subject").sum() == 2 * (k // 3)
    single = subjects.assign(cohort="lung")
    out = pm.standard_beta_tests(euclidean_frame(x, ids), samples, single, "baseline", "post", permutations=9)
    assert "cohort_at_baseline" not in set(out.permanova["test"])
    assert out.notes["reason"].str.contains("cohort has 1 level").any()


# ---------------------------------------------------------------------------
# vegan cross-checks


def _vegan_available():
    if shutil.which("Rscript") is None:
        return False
    probe = subprocess.run(["Rscript", "-e", "suppressMessages(library(vegan))"], capture_output=True)
    return probe.returncode == 0


needs_vegan = pytest.mark.skipif(not _vegan_available(), reason="Rscript with vegan not available")


def _run_r(script: str, tmp_path: Path) -> pd.DataFrame:
    path = tmp_path / "check.R"
    path.write_text(script)
    done = subprocess.run(["Rscript", str(path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return pd.read_csv(tmp_path / "out.tsv", sep="\t")


def _trial(rng, k=20):
    """k subjects x 2 timepoints, Bray–Curtis (non-Euclidean), cohort and response."""
    base = rng.gamma(0.6, size=(k, 15))
    pre = base * rng.gamma(4, 0.25, size=(k, 15))
    post = base * rng.gamma(4, 0.25, size=(k, 15))
    post[:, :3] *= 1.6
    x = np.vstack([pre, post])
    ids = [f"S{i:02d}_{t}" for t in ("a", "b") for i in range(k)]
    meta = pd.DataFrame({"timepoint": ["pre"] * k + ["post"] * k,
                         "subject_id": [f"S{i:02d}" for i in range(k)] * 2,
                         "cohort": (["lung", "eso", "other", "lung"] * k)[:k] * 2,
                         "response": (["R", "N", "N"] * k)[:k] * 2}, index=ids)
    return braycurtis_frame(x, ids), meta


@needs_vegan
@pytest.mark.rcheck
def test_adonis2_same_permutations_give_identical_f_r2_p(tmp_path):
    rng = np.random.default_rng(13)
    d, meta = _trial(rng)
    order = np.argsort(np.asarray(d.index, dtype=str))  # permanova's internal order
    d, meta = d.iloc[order, order], meta.iloc[order]
    n = len(d)
    ours_strata = pm.permanova(d, meta, ["timepoint"], strata="subject_id", permutations=499, seed=5)
    ours_seq = pm.permanova(d, meta, ["cohort", "response"], permutations=499, seed=6)
    # vegan permutes G's rows/columns with `take`; we permute the design rows: take = inverse
    perms_strata = np.vstack(list(pm.restricted_permutations(meta["subject_id"].to_numpy(), 499, 5)))
    perms_free = np.vstack(list(pm.restricted_permutations(None, 499, 6, n_samples=n)))
    for name, perms in (("pstrata", perms_strata), ("pfree", perms_free)):
        np.savetxt(tmp_path / f"{name}.txt", np.argsort(perms, axis=1) + 1, fmt="%d")
    d.to_csv(tmp_path / "d.tsv", sep="\t")
    meta.to_csv(tmp_path / "meta.tsv", sep="\t")
    script = f"""
suppressMessages(library(vegan))
d <- as.dist(as.matrix(read.delim("{tmp_path}/d.tsv", row.names = 1, check.names = FALSE)))
m <- read.delim("{tmp_path}/meta.tsv", row.names = 1)
ps <- as.matrix(read.table("{tmp_path}/pstrata.txt")); pf <- as.matrix(read.table("{tmp_path}/pfree.txt"))
a <- adonis2(d ~ timepoint, data = m, permutations = ps, by = "terms")
b <- adonis2(d ~ cohort + response, data = m, permutations = pf, by = "terms")
out <- data.frame(model = c("a", "b", "b"), term = c("timepoint", "cohort", "response"),
                  F = c(a$F[1], b$F[1:2]), R2 = c(a$R2[1], b$R2[1:2]), p = c(a[["Pr(>F)"]][1], b[["Pr(>F)"]][1:2]))
write.table(out, "{tmp_path}/out.tsv", sep = "\\t", row.names = FALSE, quote = FALSE)
"""
    r = _run_r(script, tmp_path)
    ours = pd.concat([ours_strata.iloc[:1], ours_seq.iloc[:2]], ignore_index=True)
    np.testing.assert_allclose(ours["pseudo_f"], r["F"], rtol=1e-8)
    np.testing.assert_allclose(ours["r2"], r["R2"], rtol=1e-8)
    np.testing.assert_allclose(ours["p_value"], r["p"], rtol=1e-12)


@needs_vegan
@pytest.mark.rcheck
def test_adonis2_own_permutations_agree_within_monte_carlo_error(tmp_path):
    rng = np.random.default_rng(14)
    d, meta = _trial(rng, k=24)
    # a weaker time effect so p is away from its floor
    ours_strata = pm.permanova(d, meta, ["timepoint"], strata="subject_id", permutations=1999, seed=1)
    ours_free = pm.permanova(d, meta, ["timepoint"], permutations=1999, seed=1)
    ours_seq = pm.permanova(d, meta, ["response", "cohort"], permutations=1999, seed=1)
    d.to_csv(tmp_path / "d.tsv", sep="\t")
    meta.to_csv(tmp_path / "meta.tsv", sep="\t")
    script = f"""
suppressMessages(library(vegan)); set.seed(1)
d <- as.dist(as.matrix(read.delim("{tmp_path}/d.tsv", row.names = 1, check.names = FALSE)))
m <- read.delim("{tmp_path}/meta.tsv", row.names = 1)
a <- adonis2(d ~ timepoint, data = m, permutations = 1999, strata = m$subject_id, by = "terms")
f <- adonis2(d ~ timepoint, data = m, permutations = 1999, by = "terms")
b <- adonis2(d ~ response + cohort, data = m, permutations = 1999, by = "terms")
out <- data.frame(F = c(a$F[1], f$F[1], b$F[1:2]), R2 = c(a$R2[1], f$R2[1], b$R2[1:2]),
                  p = c(a[["Pr(>F)"]][1], f[["Pr(>F)"]][1], b[["Pr(>F)"]][1:2]))
write.table(out, "{tmp_path}/out.tsv", sep = "\\t", row.names = FALSE, quote = FALSE)
"""
    r = _run_r(script, tmp_path)
    ours = pd.concat([ours_strata.iloc[:1], ours_free.iloc[:1], ours_seq.iloc[:2]], ignore_index=True)
    np.testing.assert_allclose(ours["pseudo_f"], r["F"], rtol=1e-8)
    np.testing.assert_allclose(ours["r2"], r["R2"], rtol=1e-8)
    for p_ours, p_r in zip(ours["p_value"], r["p"]):
        p = 0.5 * (p_ours + p_r)
        # two independent Monte-Carlo estimates: 4.5 standard errors of their difference
        assert abs(p_ours - p_r) <= 4.5 * np.sqrt(2 * max(p * (1 - p), 1e-3) / 1999) + 1e-3


@needs_vegan
@pytest.mark.rcheck
def test_betadisper_matches_vegan_including_negative_eigenvalues(tmp_path):
    rng = np.random.default_rng(15)
    d, meta = _trial(rng, k=15)
    order = np.argsort(np.asarray(d.index, dtype=str))
    d, meta = d.iloc[order, order], meta.iloc[order]
    n = len(d)
    ours = pm.permdisp(d, meta["cohort"], permutations=299, seed=4)
    perms = np.vstack(list(pm.restricted_permutations(None, 299, 4, n_samples=n)))
    np.savetxt(tmp_path / "perm.txt", perms + 1, fmt="%d")  # betadisper permutes residuals with `take`
    d.to_csv(tmp_path / "d.tsv", sep="\t")
    meta.to_csv(tmp_path / "meta.tsv", sep="\t")
    script = f"""
suppressMessages(library(vegan))
d <- as.dist(as.matrix(read.delim("{tmp_path}/d.tsv", row.names = 1, check.names = FALSE)))
m <- read.delim("{tmp_path}/meta.tsv", row.names = 1)
bd <- betadisper(d, m$cohort, type = "centroid")
stopifnot(any(bd$eig < 0))
pt <- permutest(bd, permutations = as.matrix(read.table("{tmp_path}/perm.txt")))
out <- data.frame(sample = names(bd$distances), z = bd$distances,
                  F = pt$tab[1, "F"], p = pt$tab[1, "Pr(>F)"])
write.table(out, "{tmp_path}/out.tsv", sep = "\\t", row.names = FALSE, quote = FALSE)
"""
    r = _run_r(script, tmp_path)
    np.testing.assert_allclose(ours.distances.loc[r["sample"]].to_numpy(), r["z"], rtol=1e-8, atol=1e-10)
    assert ours.table.loc[0, "f"] == pytest.approx(r["F"][0], rel=1e-8)
    assert ours.table.loc[0, "p_value"] == pytest.approx(r["p"][0], rel=1e-12)


# ---------------------------------------------------------------------------
# study types: baseline-only, no response, crossover period


def baseline_study(rng, n=48, effect=1.5, cohort_effect=4.0, p=5):
    """One baseline sample per subject, three cohorts far apart, responders shifted by `effect`."""
    cohorts = np.array(["a", "b", "c"])[np.arange(n) % 3]
    response = np.where(np.arange(n) % 2 == 0, "responder", "non_responder")
    x = rng.normal(size=(n, p))
    x[:, 1] += cohort_effect * (np.arange(n) % 3)
    x[:, 0] += effect * (response == "responder")
    ids = [f"S{i:02d}_bl" for i in range(n)]
    samples = pd.DataFrame({"sample_id": ids, "subject_id": [f"S{i:02d}" for i in range(n)],
                            "timepoint": "baseline"})
    subjects = pd.DataFrame({"subject_id": samples["subject_id"], "cohort": cohorts, "response": response})
    return euclidean_frame(x, ids), samples, subjects


def test_baseline_only_tests_find_a_planted_response_within_cohorts():
    rng = np.random.default_rng(31)
    d, samples, subjects = baseline_study(rng)
    out = pm.standard_beta_tests(d, samples, subjects, "baseline", None, permutations=199, seed=3,
                                 response_within_cohort=True)
    table = out.permanova.set_index(["test", "term"])
    assert set(out.permanova["test"]) == {"response_at_baseline", "cohort_at_baseline", "sequential_at_baseline",
                                          "response_within_cohort"}
    within = table.loc[("response_within_cohort", "response")]
    assert within["strata"] == "cohort" and within["permutation_scheme"].startswith("within cohort")
    assert within["p_value"] <= 0.01
    assert table.loc[("sequential_at_baseline", "response"), "p_value"] <= 0.01
    # the within-cohort test has the same statistic as the free one (same model), other permutations
    free = table.loc[("response_at_baseline", "response")]
    assert within["pseudo_f"] == pytest.approx(free["pseudo_f"])
    assert "time_within_subject" not in set(out.notes["test"])


def test_baseline_only_tests_do_not_call_shuffled_labels():
    rng = np.random.default_rng(32)
    d, samples, subjects = baseline_study(rng, n=36, effect=0.0)
    calls = 0
    for k in range(20):
        shuffled = subjects.assign(response=rng.permutation(subjects["response"].to_numpy()))
        out = pm.standard_beta_tests(d, samples, shuffled, "baseline", None, permutations=99, seed=k,
                                     response_within_cohort=True)
        rows = out.permanova[(out.permanova["term"] == "response")
                             & (out.permanova["test"] == "response_within_cohort")]
        calls += rows["p_value"].item() < 0.05
    assert calls <= 4  # about 1 expected; 5 or more has a binomial(20, 0.05) tail below 0.003


def test_study_without_response_has_no_response_tests_or_notes():
    rng = np.random.default_rng(33)
    x, ids, meta = paired_design(10, effect=2.0, rng=rng)
    samples = pd.DataFrame({"sample_id": ids, "subject_id": meta["subject_id"].to_numpy(),
                            "timepoint": meta["timepoint"].to_numpy()})
    subjects = pd.DataFrame({"subject_id": [f"S{i:02d}" for i in range(10)], "cohort": ["a", "b"] * 5})
    out = pm.standard_beta_tests(euclidean_frame(x, ids), samples, subjects, "pre", "post",
                                 response_column=None, permutations=99, seed=1)
    assert set(out.permanova["test"]) == {"time_within_subject", "cohort_at_baseline"}
    assert not out.notes["reason"].str.contains("response").any()
    assert not out.permanova["term"].eq("response").any()


def test_period_enters_the_time_test_as_a_covariate():
    rng = np.random.default_rng(34)
    x, ids, meta = paired_design(12, effect=2.0, rng=rng)
    period = np.where(np.arange(12) % 2 == 0, "1", "2")
    x[np.r_[period, period] == "2", 1] += 3.0  # a period effect on both samples of the subject
    samples = pd.DataFrame({"sample_id": ids, "subject_id": meta["subject_id"].to_numpy(),
                            "timepoint": meta["timepoint"].to_numpy(), "period": np.r_[period, period]})
    subjects = pd.DataFrame({"subject_id": [f"S{i:02d}" for i in range(12)], "cohort": "a"})
    d = euclidean_frame(x, ids)
    out = pm.standard_beta_tests(d, samples, subjects, "pre", "post", response_column=None, permutations=99,
                                 seed=1, covariates=["period"])
    time = out.permanova[out.permanova["test"] == "time_within_subject"]
    assert time["formula"].iloc[0] == "distance ~ period + timepoint"
    assert list(time["term"]) == ["period", "timepoint", "Residual", "Total"]
    assert time.set_index("term").loc["timepoint", "p_value"] <= 0.02
    # period is constant within subject: adjusted for, not tested; PERMDISP only for timepoint
    assert time.set_index("term").loc["period", "note"] == "covariate: adjusted for, not tested"
    assert np.isnan(time.set_index("term").loc["period", "p_value"])
    assert list(out.permdisp.loc[out.permdisp["test"] == "time_within_subject", "term"]) == ["timepoint"]
    # removing the period variance from the residual raises the time F
    plain = pm.standard_beta_tests(d, samples, subjects, "pre", "post", response_column=None, permutations=9)
    plain_f = plain.permanova.set_index(["test", "term"]).loc[("time_within_subject", "timepoint"), "pseudo_f"]
    assert time.set_index("term").loc["timepoint", "pseudo_f"] > plain_f
