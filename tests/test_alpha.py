"""α diversity, Wilcoxon / Hodges–Lehmann and the mixed model: formulas, hand examples, R."""

from __future__ import annotations

import itertools
import math
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from gutaxis.diversity import alpha
from gutaxis.io.errors import InputError


def _r_available(package: str) -> bool:
    if shutil.which("Rscript") is None:
        return False
    probe = subprocess.run(["Rscript", "-e", f"suppressMessages(library({package}))"], capture_output=True)
    return probe.returncode == 0


needs_vegan = pytest.mark.skipif(not _r_available("vegan"), reason="Rscript with vegan not available")
needs_lme4 = pytest.mark.skipif(not _r_available("lme4"), reason="Rscript with lme4 not available")


def _run_r(script: str, tmp_path: Path) -> pd.DataFrame:
    path = tmp_path / "check.R"
    path.write_text(script)
    done = subprocess.run(["Rscript", str(path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return pd.read_csv(tmp_path / "out.tsv", sep="\t")


# ---------------------------------------------------------------------------
# metrics


def test_metrics_equal_their_formulas_on_compositions():
    rng = np.random.default_rng(0)
    x = rng.dirichlet(np.full(25, 0.3), size=15)
    x[x < 0.01] = 0.0  # real zeros
    x = x / x.sum(axis=1, keepdims=True)
    table = pd.DataFrame(x, index=[f"s{i}" for i in range(15)])
    values = alpha.alpha_diversity(table).values
    with np.errstate(divide="ignore", invalid="ignore"):
        h = -np.nansum(np.where(x > 0, x * np.log(x), 0.0), axis=1)
    s = (x > 0).sum(axis=1)
    simpson = (x**2).sum(axis=1)
    np.testing.assert_allclose(values["shannon"], h, rtol=1e-12)
    np.testing.assert_allclose(values["gini_simpson"], 1 - simpson, rtol=1e-12)
    np.testing.assert_allclose(values["inverse_simpson"], 1 / simpson, rtol=1e-12)
    np.testing.assert_array_equal(values["observed_richness"], s)
    np.testing.assert_allclose(values["pielou_evenness"], h / np.log(s), rtol=1e-12)
    assert list(values.columns) == list(alpha.ALPHA_METRICS)  # no count metrics without counts


def test_count_metrics_hand_worked():
    # f1: singletons 2, doubletons 1 -> chao1 = S + F1 (F1 - 1) / (2 (F2 + 1)) = 4 + 2 / 4 = 4.5
    counts = pd.DataFrame([[1, 1, 2, 6], [2, 1, 0, 0]], index=["a", "b"], columns=list("wxyz"))
    result = alpha.alpha_diversity(counts, counts=True, rarefaction_depth=2)
    assert result.values.loc["a", "chao1"] == pytest.approx(4.5)
    # sample b = (2, 1): E[S_2] = [1 - C(1,2)/C(3,2)] + [1 - C(2,2)/C(3,2)] = 1 + 2/3
    assert result.values.loc["b", "rarefied_richness"] == pytest.approx(5 / 3)
    # sample a at depth 2 of 10 reads: sum_i 1 - C(10 - n_i, 2) / C(10, 2)
    expected = sum(1 - math.comb(10 - c, 2) / math.comb(10, 2) for c in [1, 1, 2, 6])
    assert result.values.loc["a", "rarefied_richness"] == pytest.approx(expected)
    assert result.parameters["rarefaction_depth"] == 2


def test_rarefied_richness_equals_mean_of_random_subsamples():
    from skbio.stats import subsample_counts

    rng = np.random.default_rng(1)
    counts = rng.poisson(rng.gamma(0.4, 20, size=40)).astype(int)
    counts[0] = max(counts[0], 1)
    depth = int(counts.sum() // 3)
    draws = [np.count_nonzero(subsample_counts(counts, depth, seed=int(s))) for s in range(3000)]
    expected = alpha.rarefied_richness(counts[None, :], depth)[0]
    assert abs(np.mean(draws) - expected) < 4 * np.std(draws) / np.sqrt(len(draws))


def test_what_cannot_be_computed_is_listed():
    counts = pd.DataFrame([[5, 0, 0], [0, 0, 0], [3, 4, 1]], index=["one", "empty", "ok"], columns=list("abc"))
    result = alpha.alpha_diversity(counts, counts=True, rarefaction_depth=6)
    nc = result.not_computed
    assert set(nc.loc[nc["sample_id"] == "empty", "metric"]) == set(result.values.columns)
    assert nc[(nc["sample_id"] == "one") & (nc["metric"] == "rarefied_richness")]["reason"].item().startswith(
        "fewer reads")
    assert ((nc["sample_id"] == "one") & (nc["metric"] == "pielou_evenness")).any()
    assert result.values.loc["empty"].isna().all()
    assert np.isnan(result.values.loc["one", "rarefied_richness"])
    with pytest.raises(InputError, match="non-integer"):
        alpha.alpha_diversity(counts / 2.0, counts=True)
    with pytest.raises(InputError, match="negative"):
        alpha.alpha_diversity(counts - 1)


@needs_vegan
@pytest.mark.rcheck
def test_metrics_match_vegan_on_real_counts(shared_data, tmp_path):
    raw = pd.read_csv(shared_data / "mmcd_mars_ibs" / "genera.counts.tsv.gz", sep="\t", index_col=0)
    raw = raw.iloc[:25]
    raw = raw.loc[:, raw.sum() > 0]
    result = alpha.alpha_diversity(raw, counts=True)
    raw.to_csv(tmp_path / "counts.tsv", sep="\t")
    script = f"""
suppressMessages(library(vegan))
x <- as.matrix(read.delim("{tmp_path}/counts.tsv", row.names = 1, check.names = FALSE))
h <- diversity(x, "shannon")
out <- data.frame(sample = rownames(x), shannon = h, gini = diversity(x, "simpson"),
                  inv = diversity(x, "invsimpson"), s = specnumber(x), pielou = h / log(specnumber(x)),
                  chao1 = estimateR(x)["S.chao1", ], rare = as.numeric(rarefy(x, min(rowSums(x)))))
write.table(out, "{tmp_path}/out.tsv", sep = "\\t", row.names = FALSE, quote = FALSE)
"""
    r = _run_r(script, tmp_path).set_index("sample")
    v = result.values.loc[r.index.astype(str)]
    for ours, theirs in (("shannon", "shannon"), ("gini_simpson", "gini"), ("inverse_simpson", "inv"),
                         ("observed_richness", "s"), ("pielou_evenness", "pielou"), ("chao1", "chao1"),
                         ("rarefied_richness", "rare")):
        np.testing.assert_allclose(v[ours].to_numpy(), r[theirs].to_numpy(), rtol=1e-8, err_msg=ours)


# ---------------------------------------------------------------------------
# signed-rank distribution, Hodges–Lehmann, Wilcoxon


def test_signrank_distribution_equals_enumeration():
    n = 7
    sums = [sum(r for r, keep in zip(range(1, n + 1), signs) if keep)
            for signs in itertools.product([0, 1], repeat=n)]
    sums = np.array(sums)
    for q in range(0, 29):
        assert alpha.psignrank(q, n) == pytest.approx(np.mean(sums <= q))
    for p in (0.01, 0.025, 0.1, 0.5):
        q = alpha.qsignrank(p, n)
        assert np.mean(sums <= q) >= p > np.mean(sums <= q - 1)


def test_hodges_lehmann_hand_worked():
    # Walsh averages of (1, 2, 4): 1, 1.5, 2, 2.5, 3, 4 -> median 2.25. n = 3: P(V = 0) = 1/8, so the
    # exact interval is [w(1), w(6)] = [1, 4] with achieved level 1 - 2/8 = 0.75 (R warns the same).
    hl = alpha.hodges_lehmann([1.0, 2.0, 4.0])
    assert hl["estimate"] == 2.25
    assert (hl["ci_low"], hl["ci_high"], hl["conf_level"]) == (1.0, 4.0, 0.75)
    assert hl["ci_method"] == "exact"
    # a zero difference switches to the normal approximation, as in R
    assert alpha.hodges_lehmann([0.0, 1.0, 2.0, 4.0, 5.0, 7.0])["ci_method"].startswith("normal")


@needs_vegan
@pytest.mark.rcheck
def test_wilcoxon_and_hodges_lehmann_match_r(tmp_path):
    rng = np.random.default_rng(2)
    cases = {
        "exact": rng.normal(0.4, 1, 12),
        "ties": np.round(rng.normal(0.5, 1, 20), 1),
        "zeros": np.concatenate([[0.0, 0.0], rng.normal(-0.3, 1, 15)]),
        "large": rng.normal(0.2, 1, 70),
    }
    rows = [(name, i, v) for name, values in cases.items() for i, v in enumerate(values)]
    pd.DataFrame(rows, columns=["case", "i", "d"]).to_csv(tmp_path / "d.tsv", sep="\t", index=False)
    script = f"""
x <- read.delim("{tmp_path}/d.tsv")
out <- do.call(rbind, lapply(split(x$d, x$case), function(d) {{
  r <- suppressWarnings(wilcox.test(d, conf.int = TRUE, tol.root = 1e-12))
  data.frame(v = r$statistic, p = r$p.value, lo = r$conf.int[1], hi = r$conf.int[2],
             level = attr(r$conf.int, "conf.level"), est = r$estimate)
}}))
out$case <- rownames(out)
write.table(out, "{tmp_path}/out.tsv", sep = "\\t", row.names = FALSE, quote = FALSE)
"""
    r = _run_r(script, tmp_path).set_index("case")
    for name, d in cases.items():
        ours = alpha.wilcoxon_signed_rank(d)
        assert ours["v_statistic"] == r.loc[name, "v"], name
        assert ours["p_value"] == pytest.approx(r.loc[name, "p"], rel=1e-8), name
        assert ours["ci_low"] == pytest.approx(r.loc[name, "lo"], abs=1e-8), name
        assert ours["ci_high"] == pytest.approx(r.loc[name, "hi"], abs=1e-8), name
        assert ours["conf_level"] == pytest.approx(r.loc[name, "level"]), name
        if name == "exact":  # R's estimate is the Walsh median only in the exact case
            assert ours["hl_estimate"] == pytest.approx(r.loc[name, "est"], abs=1e-12)
        assert ours["n_nonzero"] == np.count_nonzero(d)


# ---------------------------------------------------------------------------
# paired tests and mixed model


def trial(rng, n_subjects=30, shift=0.5, responder_extra=0.6, cohorts=("lung", "eso", "other")):
    subjects = pd.DataFrame({
        "subject_id": [f"P{i:02d}" for i in range(n_subjects)],
        "cohort": [cohorts[i % len(cohorts)] for i in range(n_subjects)],
        "response": [["responder", "non_responder", "non_responder", ""][i % 4] for i in range(n_subjects)],
    })
    rows, values = [], []
    for i, row in subjects.iterrows():
        level = rng.normal(3.0, 0.5)
        for t in ("baseline", "post"):
            effect = 0.0
            if t == "post":
                effect = shift + (responder_extra if row["response"] == "responder" else 0.0)
            rows.append([f"{row['subject_id']}_{t}", row["subject_id"], t])
            values.append(level + effect + rng.normal(0, 0.3))
    samples = pd.DataFrame(rows, columns=["sample_id", "subject_id", "timepoint"])
    table = pd.DataFrame({"shannon": values}, index=pd.Index(samples["sample_id"], name="sample_id"))
    return table, samples, subjects


def test_paired_tests_cover_every_group_and_equal_direct_tests():
    rng = np.random.default_rng(3)
    table, samples, subjects = trial(rng)
    out = alpha.paired_alpha_tests(table, samples, subjects, "baseline", "post")
    assert list(zip(out["group_by"], out["group"])) == [
        ("overall", "all"), ("cohort", "eso"), ("cohort", "lung"), ("cohort", "other"),
        ("response", "non_responder"), ("response", "responder")]
    wide = table["shannon"].groupby([samples.set_index("sample_id").loc[table.index, "subject_id"],
                                     samples.set_index("sample_id").loc[table.index, "timepoint"]]).first().unstack()
    diff = wide["post"] - wide["baseline"]
    overall = out.iloc[0]
    assert overall["n_pairs"] == 30
    assert overall["p_value"] == pytest.approx(stats.wilcoxon(diff.to_numpy(), method="exact").pvalue)
    assert overall["median_change"] == pytest.approx(diff.median())
    responders = subjects.loc[subjects["response"] == "responder", "subject_id"]
    row = out[(out["group"] == "responder")].iloc[0]
    assert row["n_pairs"] == len(responders)
    assert row["hl_estimate"] == pytest.approx(np.median(alpha.walsh_averages(diff.loc[responders].to_numpy())))
    assert row["ci_low"] <= row["hl_estimate"] <= row["ci_high"]
    assert overall["p_value"] < 0.001  # planted shift


def test_mixed_model_recovers_planted_interaction_and_reports_formula():
    rng = np.random.default_rng(4)
    table, samples, subjects = trial(rng, n_subjects=60, shift=0.2, responder_extra=1.0)
    out = alpha.alpha_mixed_models(table, samples, subjects, ["baseline", "post"]).set_index("term")
    assert out["formula_fitted"].iloc[0] == "shannon ~ timepoint * response + cohort + (1|subject)"
    assert out["dropped_terms"].iloc[0] == ""
    inter = out.loc["timepoint[post]:response[responder]"]
    assert inter["p_value"] < 1e-4 and inter["ci_low"] < 1.0 < inter["ci_high"]
    assert out.loc["timepoint[post]", "ci_low"] < 0.2 < out.loc["timepoint[post]", "ci_high"]
    assert "left out" in out["note"].iloc[0]  # subjects without a response label
    assert out.loc["subject_variance", "estimate"] > 0


def test_mixed_model_drops_unsupported_terms_and_says_so():
    rng = np.random.default_rng(5)
    table, samples, subjects = trial(rng, n_subjects=24, cohorts=("lung",))
    no_responders = subjects.assign(response=subjects["response"].replace("responder", "non_responder"))
    out = alpha.alpha_mixed_models(table, samples, no_responders, ["baseline", "post"])
    assert out["formula_fitted"].iloc[0] == "shannon ~ timepoint + (1|subject)"
    dropped = out["dropped_terms"].iloc[0]
    assert "response, timepoint:response (response levels: non_responder)" in dropped
    assert "cohort (single cohort: lung)" in dropped
    assert set(out["term"]) == {"Intercept", "timepoint[post]", "subject_variance", "residual_variance"}
    # one sample per subject: no random intercept can be estimated -> OLS, said so
    first = samples.groupby("subject_id").head(1)
    alt = samples[~samples["sample_id"].isin(first["sample_id"])]
    half = pd.concat([first.iloc[::2], alt.iloc[1::2]])
    out = alpha.alpha_mixed_models(table.loc[half["sample_id"]], half, no_responders, ["baseline", "post"])
    assert out["formula_fitted"].iloc[0] == "shannon ~ timepoint"
    assert "OLS" in out["method"].iloc[0]


@needs_lme4
@pytest.mark.rcheck
def test_mixed_model_matches_lme4(tmp_path):
    rng = np.random.default_rng(6)
    table, samples, subjects = trial(rng, n_subjects=40, shift=0.3, responder_extra=0.5)
    out = alpha.alpha_mixed_models(table, samples, subjects, ["baseline", "post"]).set_index("term")
    frame = samples.merge(subjects, on="subject_id").assign(
        y=table.loc[samples["sample_id"], "shannon"].to_numpy())
    frame.to_csv(tmp_path / "d.tsv", sep="\t", index=False)
    script = f"""
suppressMessages(library(lme4))
d <- read.delim("{tmp_path}/d.tsv", na.strings = "")
d <- d[!is.na(d$response), ]
d$response <- factor(d$response, levels = c("non_responder", "responder"))
m <- lmer(y ~ timepoint * response + cohort + (1 | subject_id), data = d, REML = TRUE)
s <- coef(summary(m))
out <- data.frame(term = rownames(s), est = s[, 1], se = s[, 2], vc = as.data.frame(VarCorr(m))$vcov[1])
write.table(out, "{tmp_path}/out.tsv", sep = "\\t", row.names = FALSE, quote = FALSE)
"""
    r = _run_r(script, tmp_path)
    names = {"(Intercept)": "Intercept", "timepointpost": "timepoint[post]",
             "responseresponder": "response[responder]", "cohortlung": "cohort[lung]",
             "cohortother": "cohort[other]", "timepointpost:responseresponder": "timepoint[post]:response[responder]"}
    r["ours"] = r["term"].map(names)
    np.testing.assert_allclose(out.loc[r["ours"], "estimate"], r["est"], atol=1e-5)
    np.testing.assert_allclose(out.loc[r["ours"], "std_error"], r["se"], rtol=1e-3)
    assert out.loc["subject_variance", "estimate"] == pytest.approx(r["vc"][0], rel=1e-3)


# ---------------------------------------------------------------------------
# study types: no response, a crossover period, baseline-only comparisons


def test_mixed_model_without_response_never_mentions_it():
    rng = np.random.default_rng(11)
    table, samples, subjects = trial(rng, n_subjects=30)
    no_response = subjects.assign(response="")
    out = alpha.alpha_mixed_models(table, samples, no_response, ["baseline", "post"], response=False)
    assert out["formula_requested"].iloc[0] == "shannon ~ timepoint + cohort + (1|subject)"
    assert out["formula_fitted"].iloc[0] == "shannon ~ timepoint + cohort + (1|subject)"
    assert out["dropped_terms"].iloc[0] == ""
    assert not out["term"].str.contains("response").any()
    # with response=True the same data would report a dropped response term
    default = alpha.alpha_mixed_models(table, samples, no_response, ["baseline", "post"])
    assert "response" in default["dropped_terms"].iloc[0]


def test_mixed_model_period_covariate_recovers_a_planted_period_effect():
    rng = np.random.default_rng(12)
    table, samples, subjects = trial(rng, n_subjects=40, shift=0.3, responder_extra=0.0)
    # half the subjects had this intervention in period 2, where every value is 0.8 higher
    period = samples["subject_id"].str[1:].astype(int) % 2 + 1
    samples = samples.assign(period=period.astype(str))
    table.loc[samples.loc[period.to_numpy() == 2, "sample_id"], "shannon"] += 0.8
    out = alpha.alpha_mixed_models(table, samples, subjects.assign(response=""), ["baseline", "post"],
                                   response=False, covariates=["period"]).set_index("term")
    assert out["formula_fitted"].iloc[0] == "shannon ~ timepoint + cohort + period + (1|subject)"
    assert out.loc["period[2]", "p_value"] < 1e-3
    assert out.loc["period[2]", "ci_low"] < 0.8 < out.loc["period[2]", "ci_high"]
    assert out.loc["timepoint[post]", "ci_low"] < 0.3 < out.loc["timepoint[post]", "ci_high"]
    # one period only: dropped, and said so
    single = alpha.alpha_mixed_models(table, samples.assign(period="1"), subjects, ["baseline", "post"],
                                      covariates=["period"])
    assert "period (single level: 1)" in single["dropped_terms"].iloc[0]


def baseline_cohort(rng, n=60, effect=0.6, cohorts=("a", "b", "c")):
    subjects = pd.DataFrame({"subject_id": [f"S{i:03d}" for i in range(n)],
                             "cohort": [cohorts[i % len(cohorts)] for i in range(n)],
                             "response": ["responder" if i % 2 else "non_responder" for i in range(n)]})
    subjects.loc[::10, "response"] = ""  # not evaluable
    samples = pd.DataFrame({"sample_id": subjects["subject_id"] + "_bl", "subject_id": subjects["subject_id"],
                            "timepoint": "baseline"})
    cohort_shift = subjects["cohort"].map({c: 0.5 * k for k, c in enumerate(cohorts)}).to_numpy()
    value = 3.0 + cohort_shift + effect * (subjects["response"] == "responder").to_numpy() + rng.normal(0, 0.3, n)
    table = pd.DataFrame({"shannon": value}, index=pd.Index(samples["sample_id"], name="sample_id"))
    return table, samples, subjects


def test_baseline_tests_find_a_planted_difference_and_equal_scipy():
    rng = np.random.default_rng(13)
    table, samples, subjects = baseline_cohort(rng)
    out = alpha.baseline_alpha_tests(table, samples, subjects, "baseline")
    assert list(zip(out["group_by"], out["group"])) == [("overall", "all"), ("cohort", "a"), ("cohort", "b"),
                                                        ("cohort", "c")]
    overall = out.iloc[0]
    labels = subjects.set_index("subject_id")["response"]
    by = labels.loc[samples["subject_id"]].to_numpy()
    r = table["shannon"].to_numpy()[by == "responder"]
    nr = table["shannon"].to_numpy()[by == "non_responder"]
    assert (overall["n_responder"], overall["n_non_responder"]) == (len(r), len(nr))
    # R's wilcox.test rule: exact below 50 per group without ties
    assert len(r) < 50 and len(nr) < 50 and overall["method"].endswith("exact")
    expected = stats.mannwhitneyu(r, nr, method="exact")
    assert overall["p_value"] == pytest.approx(expected.pvalue, rel=1e-12)
    assert overall["u_statistic"] == expected.statistic
    assert overall["hl_shift"] == pytest.approx(np.median(r[:, None] - nr[None, :]))
    assert overall["p_value"] < 1e-3 and overall["hl_shift"] > 0
    models = alpha.baseline_alpha_models(table, samples, subjects, "baseline").set_index("term")
    assert models["formula_fitted"].iloc[0] == "shannon ~ response + cohort"
    row = models.loc["response[responder]"]
    assert row["p_value"] < 1e-6 and row["ci_low"] < 0.6 < row["ci_high"]
    # the same coefficients by least squares on a hand-built design
    keep = by != ""
    x = np.column_stack([np.ones(keep.sum()), (by[keep] == "responder"),
                         subjects.set_index("subject_id").loc[samples["subject_id"], "cohort"].to_numpy()[keep] == "b",
                         subjects.set_index("subject_id").loc[samples["subject_id"], "cohort"].to_numpy()[keep] == "c"])
    beta_hat = np.linalg.lstsq(x.astype(float), table["shannon"].to_numpy()[keep], rcond=None)[0]
    np.testing.assert_allclose(models.loc[["Intercept", "response[responder]", "cohort[b]", "cohort[c]"],
                                          "estimate"], beta_hat, rtol=1e-10)
    assert "left out" in models["note"].iloc[0]


def test_baseline_tests_do_not_call_shuffled_labels():
    rng = np.random.default_rng(14)
    table, samples, subjects = baseline_cohort(rng, effect=0.0)
    calls = 0
    for k in range(100):
        shuffled = subjects.assign(response=rng.permutation(subjects["response"].to_numpy()))
        p = alpha.baseline_alpha_tests(table, samples, shuffled, "baseline")["p_value"].iloc[0]
        calls += p < 0.05
    assert calls <= 12  # about 5 expected; 12 has a binomial(100, 0.05) tail below 0.001


def test_baseline_model_drops_single_level_terms():
    rng = np.random.default_rng(15)
    table, samples, subjects = baseline_cohort(rng, cohorts=("only",))
    out = alpha.baseline_alpha_models(table, samples, subjects.assign(response=""), "baseline")
    assert out["formula_fitted"].iloc[0] == "shannon ~ 1"
    assert "response (0 level(s): none)" in out["dropped_terms"].iloc[0]
    assert "cohort (1 level(s): only)" in out["dropped_terms"].iloc[0]
