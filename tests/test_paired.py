"""Tests for gutaxis.stats.paired: pairing and vectorised paired t / Wilcoxon / Hodges-Lehmann."""

from __future__ import annotations

import itertools
import shutil
import subprocess
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from gutaxis.io.errors import InputError
from gutaxis.io.pairing import paired_design
from gutaxis.stats.paired import (_signed_rank_ci_ranks, hodges_lehmann, paired_differences,
                                  paired_t_test, signed_rank_counts, wilcoxon_signed_rank)


def _sheet():
    return pd.DataFrame({
        "sample_id": ["a1", "a2", "b1", "c2", "d1", "d2", "q1"],
        "subject_id": ["A", "A", "B", "C", "D", "D", None],
        "timepoint": ["baseline", "post", "baseline", "post", "baseline", "post", None],
        "sample_type": ["stool"] * 6 + ["qc"],
    })


def test_pair_samples_pairs_and_reports_the_leftovers():
    design = paired_design(_sheet(), "baseline", "post")
    assert design.pairs.to_dict("list") == {"subject_id": ["A", "D"],
                                            "pre_sample": ["a1", "d1"],
                                            "post_sample": ["a2", "d2"]}
    left = design.unpaired.set_index("sample_id")["reason"].to_dict()
    assert left == {"b1": "no 'post' sample for this subject",
                    "c2": "no 'baseline' sample for this subject"}


def test_pair_samples_restricted_to_table_samples():
    design = paired_design(_sheet(), "baseline", "post", sample_ids=["a1", "a2", "d1"])
    assert list(design.pairs["subject_id"]) == ["A"]
    assert list(design.unpaired["sample_id"]) == ["d1"]


def test_pair_samples_duplicate_timepoint_is_reported_with_subject():
    sheet = pd.concat([_sheet(), pd.DataFrame({"sample_id": ["a1b"], "subject_id": ["A"],
                                               "timepoint": ["baseline"]})])
    with pytest.raises(InputError) as err:
        paired_design(sheet, "baseline", "post", source="samples.tsv")
    text = str(err.value)
    assert "samples.tsv" in text and "subject A" in text and "a1b" in text


def test_paired_differences_are_post_minus_pre():
    design = paired_design(_sheet(), "baseline", "post")
    values = pd.DataFrame({"f": [1.0, 4.0, 0.0, 0.0, 2.0, 1.0, 0.0]},
                          index=_sheet()["sample_id"])
    diff = paired_differences(values, design.pairs)
    assert diff["f"].to_dict() == {"A": 3.0, "D": -1.0}


def _random_differences(rng, n, n_features=15):
    d = rng.normal(0.3, 1.0, (n, n_features))
    d[:, 5:10] = np.round(d[:, 5:10], 1)  # ties and zeros
    d[:, 10:13] = np.round(d[:, 10:13] * 2)  # many ties, many zeros
    d[rng.random(d.shape) < 0.08] = np.nan
    return d


@pytest.mark.parametrize("n", [6, 12, 30, 75])
def test_paired_t_equals_scipy_per_feature(n):
    rng = np.random.default_rng(n)
    post = rng.normal(size=(n, 30))
    pre = post - rng.normal(0.2, 1, (n, 30))
    pre[rng.random(pre.shape) < 0.1] = np.nan
    res = paired_t_test(post - pre)
    for j in range(30):
        ref = stats.ttest_rel(post[:, j], pre[:, j], nan_policy="omit")
        ci = ref.confidence_interval()
        np.testing.assert_allclose([res["t"][j], res["p"][j], res["ci_low"][j], res["ci_high"][j]],
                                   [ref.statistic, ref.pvalue, ci.low, ci.high],
                                   rtol=1e-10, atol=1e-14)
        assert res["df"][j] == ref.df


@pytest.mark.parametrize("zero_method", ["wilcox", "pratt", "zsplit"])
@pytest.mark.parametrize("correction", [False, True])
def test_wilcoxon_equals_scipy_per_feature_in_every_regime(zero_method, correction):
    """Exact, permutation and normal-approximation regimes, chosen per feature."""
    rng = np.random.default_rng(7)
    seen = set()
    for n in (5, 7, 20, 60):
        d = _random_differences(rng, n)
        res = wilcoxon_signed_rank(d, zero_method=zero_method, correction=correction)
        permutation_checked = 0
        for j in range(d.shape[1]):
            x = d[:, j][~np.isnan(d[:, j])]
            if not np.any(x != 0):
                continue
            regime = res["p_method"][j]
            if regime == "permutation":
                # scipy's sign-flip permutation is slow; check one per sample size
                permutation_checked += 1
                if permutation_checked > 1:
                    continue
            seen.add(regime)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ref = stats.wilcoxon(x, zero_method=zero_method, correction=correction)
            assert res["p"][j] == pytest.approx(ref.pvalue, rel=1e-10, abs=0), (n, j, regime)
            assert res["statistic"][j] == pytest.approx(ref.statistic, rel=1e-12)
    assert seen == {"exact", "permutation", "asymptotic"}


def test_wilcoxon_vectorised_decision_differs_from_scipy_vectorised_call():
    """scipy decides exact vs approximate once per array; we decide per feature."""
    rng = np.random.default_rng(3)
    d = rng.normal(0.5, 1, (20, 2))
    d[:, 1] = np.round(d[:, 1])  # ties only in feature 1
    ours = wilcoxon_signed_rank(d)
    assert list(ours["p_method"]) == ["exact", "asymptotic"]
    alone = stats.wilcoxon(d[:, 0]).pvalue
    assert ours["p"][0] == pytest.approx(alone, rel=1e-12)
    assert stats.wilcoxon(d, axis=0).pvalue[0] != pytest.approx(alone, rel=1e-6)


def test_signed_rank_counts_match_brute_force_enumeration():
    n = 8
    sums = [sum(r for r, s in zip(range(1, n + 1), signs) if s)
            for signs in itertools.product([0, 1], repeat=n)]
    brute = np.bincount(sums, minlength=n * (n + 1) // 2 + 1)
    np.testing.assert_array_equal(signed_rank_counts(n), brute)


def test_hodges_lehmann_is_median_of_walsh_averages():
    rng = np.random.default_rng(11)
    d = rng.standard_t(3, size=(23, 12))
    d[rng.random(d.shape) < 0.15] = np.nan
    res = hodges_lehmann(d, max_elements=500)  # force chunking
    for j in range(d.shape[1]):
        x = d[:, j][~np.isnan(d[:, j])]
        walsh = np.array([(x[a] + x[b]) / 2 for a in range(x.size) for b in range(a, x.size)])
        walsh.sort()
        assert res["estimate"][j] == pytest.approx(np.median(walsh), abs=1e-12)
        qu, qhi = _signed_rank_ci_ranks(x.size, 0.95)
        assert res["ci_low"][j] == walsh[qu - 1] and res["ci_high"][j] == walsh[qhi - 1]


def test_hodges_lehmann_ci_coverage_matches_its_exact_level():
    """Coverage of the exact CI is 1 - 2 P(W <= qu - 1) (Hollander & Wolfe)."""
    n, reps = 15, 4000
    rng = np.random.default_rng(5)
    res = hodges_lehmann(rng.normal(0.0, 1.0, (n, reps)))
    covered = ((res["ci_low"] <= 0) & (res["ci_high"] >= 0)).mean()
    qu, _ = _signed_rank_ci_ranks(n, 0.95)
    level = 1 - 2 * signed_rank_counts(n)[:qu].sum() / 2 ** n
    se = np.sqrt(level * (1 - level) / reps)
    assert level >= 0.95
    assert abs(covered - level) < 4 * se


def test_results_do_not_depend_on_the_order_of_pairs():
    rng = np.random.default_rng(2)
    d = _random_differences(rng, 25)
    perm = rng.permutation(d.shape[0])
    for fn in (paired_t_test, wilcoxon_signed_rank, hodges_lehmann):
        a, b = fn(d), fn(d[perm])
        pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-12)


@pytest.mark.rcheck
def test_hodges_lehmann_equals_r_wilcox_test_conf_int():
    if shutil.which("Rscript") is None:
        pytest.skip("Rscript not available")
    rng = np.random.default_rng(9)
    d = rng.normal(0.4, 1, (18, 3))
    ours = hodges_lehmann(d)
    for j in range(3):
        vals = ",".join(repr(float(v)) for v in d[:, j])
        code = (f"r <- wilcox.test(c({vals}), conf.int=TRUE, exact=TRUE); "
                "cat(sprintf('%.15g %.15g %.15g', r$estimate, r$conf.int[1], r$conf.int[2]))")
        out = subprocess.run(["Rscript", "-e", code], capture_output=True, text=True, check=True)
        ref = [float(v) for v in out.stdout.split()]
        np.testing.assert_allclose([ours["estimate"][j], ours["ci_low"][j], ours["ci_high"][j]],
                                   ref, rtol=1e-12)
