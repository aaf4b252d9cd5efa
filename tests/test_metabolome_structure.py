"""Structural missingness: platforms not measured at a visit are never imputed, tested or normalised from."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from gutaxis.metabolome.process import process_metabolome
from gutaxis.metabolome.normalise import pqn_normalise
from gutaxis.metabolome.structure import (
    NOT_MEASURED, contrast_missingness, feature_platforms, not_measured_mask, not_measured_reasons,
    platform_summary, sample_platform_gaps, structure_table,
)

NA = np.nan


def test_platform_prefix_needs_two_features_to_name_a_platform():
    ids = pd.Index(["NMR_a", "NMR_b", "BA_x", "FT0001", "FT0002", "solo_1"])
    got = feature_platforms(ids)
    assert list(got) == ["NMR", "NMR", "all", "all", "all", "all"]
    ann = pd.DataFrame({"assay": ["p1", "p1", "", "p2", None, "p2"]}, index=ids)
    assert list(feature_platforms(ids, ann, "assay")) == ["p1", "p1", "unassigned", "p2", "unassigned", "p2"]
    assert set(feature_platforms(ids, source="none")) == {"all"}
    with pytest.raises(ValueError, match="annotation column"):
        feature_platforms(ids, ann, "platform")


def small_structure():
    """6 samples in groups a/a/a/b/b/b; P_1, P_2 (platform P) absent in b; Q_1 absent in b alone."""
    missing = pd.DataFrame({
        "P_1": [False, False, True, True, True, True],
        "P_2": [False, False, False, True, True, True],
        "Q_1": [False, False, False, True, True, True],
        "Q_2": [False, True, False, False, False, False],
    }, index=[f"s{i}" for i in range(6)])
    groups = {"timepoint": pd.Series(list("aaabbb"), index=missing.index)}
    return missing, groups, feature_platforms(missing.columns)


def test_structure_table_hand_worked():
    missing, groups, platforms = small_structure()
    table = structure_table(missing, groups, platforms, min_missing=0.95).set_index(["feature_id", "group"])
    assert table.loc[("P_1", "a"), "fraction_missing"] == pytest.approx(1 / 3)
    assert table.loc[("P_1", "b"), "n_missing"] == 3
    # platform P: both features absent in b -> not measured; Q_1 absent in b but Q_2 measured there:
    # a metabolite below detection after treatment, not a platform gap
    assert table.loc[("P_1", "b"), "status"] == NOT_MEASURED
    assert table.loc[("P_2", "b"), "status"] == NOT_MEASURED
    assert table.loc[("Q_1", "b"), "platform_fraction_missing"] == pytest.approx(0.5)
    assert table.loc[("Q_1", "b"), "status"] == "measured"
    assert (table.xs("a", level="group")["status"] == "measured").all()


def test_not_measured_mask_equals_brute_force():
    missing, groups, platforms = small_structure()
    table = structure_table(missing, groups, platforms)
    mask = not_measured_mask(table, groups, missing.index, missing.columns)
    gap = {(r.feature_id, r.group) for r in table.itertuples() if r.status == NOT_MEASURED}
    for sample in missing.index:
        for feature in missing.columns:
            assert mask.loc[sample, feature] == ((feature, groups["timepoint"][sample]) in gap)


def test_sample_platform_gaps():
    ids = ["A_1", "A_2", "A_3", "B_1", "B_2"]
    missing = pd.DataFrame(False, index=["s1", "s2", "s3"], columns=ids)
    missing.loc["s1", ["A_1", "A_2", "A_3"]] = True  # s1 not run on platform A
    missing.loc["s2", ["B_1", "B_2"]] = True  # platform B has only two features: not judged
    missing.loc["s3", ["A_1", "A_2"]] = True  # two of three non-detects: below detection
    gaps, mask = sample_platform_gaps(missing, feature_platforms(pd.Index(ids)))
    assert gaps.to_dict("records") == [{"sample_id": "s1", "platform": "A", "n_features": 3}]
    assert mask.to_numpy().sum() == 3 and mask.loc["s1", ["A_1", "A_2", "A_3"]].all()
    summary = platform_summary(pd.DataFrame(columns=["feature_id"]), gaps)
    assert summary.loc[0, "column"] == "sample" and summary.loc[0, "group"] == "s1"


def test_contrast_missingness_statuses():
    missing, groups, platforms = small_structure()
    table = structure_table(missing, groups, platforms)
    mask = not_measured_mask(table, groups, missing.index, missing.columns)
    out = contrast_missingness(missing, groups["timepoint"], [{"name": "b_vs_a", "pre": "a", "post": "b"}],
                               platforms, mask, max_difference=0.3).set_index("feature_id")
    assert out.loc["P_1", "status"] == "not measured at b"
    assert out.loc["Q_1", "status"] == "differs"  # 0 -> 100 % missing, platform measured
    assert out.loc["Q_1", "difference"] == pytest.approx(1.0)
    assert out.loc["Q_2", "status"] == "differs"  # 1/3 -> 0
    reasons = not_measured_reasons(table, ["a", "b"])
    assert set(reasons.index) == {"P_1", "P_2"}
    assert reasons["P_1"] == "not measured at b (100% missing; platform P)"
    assert not_measured_reasons(table, ["a"]).empty


def test_pqn_uses_measured_values_only():
    x = pd.DataFrame({"f1": [2.0, 4.0], "f2": [4.0, 8.0], "f3": [1.0, 0.05]}, index=["s1", "s2"])
    measured = x.notna() & pd.DataFrame({"f1": True, "f2": True, "f3": [True, False]}, index=x.index)
    ref = pd.Series({"f1": 2.0, "f2": 4.0, "f3": 1.0})
    _, factors = pqn_normalise(x, ref, measured=measured)
    # s2: quotients of its measured values 2, 2 (the imputed 0.05 would give 0.05 -> median 2 of 3 values
    # only by luck); the factor is their median
    assert factors["s2"] == pytest.approx(2.0)
    assert factors["s1"] == pytest.approx(1.0)
    x.loc["s2", "f2"] = 0.1  # imputed too: only f1 is measured in s2
    measured.loc["s2", "f2"] = False
    _, factors = pqn_normalise(x, ref, measured=measured)
    assert factors["s2"] == pytest.approx(2.0)
    _, plain = pqn_normalise(x, ref)
    assert plain["s2"] == pytest.approx(0.05)  # the imputed values decide it without the mask


# --- processing: a platform not run at the post visit ------------------------------------------


def gap_study(seed: int = 0, n_subjects: int = 30, gap: bool = True):
    """Paired null study: platforms A (10 features) and B (6 features); B not run at post."""
    rng = np.random.default_rng(seed)
    a = [f"A_{j}" for j in range(10)]
    b = [f"B_{j}" for j in range(6)]
    subject_level = rng.lognormal(6, 1, (n_subjects, len(a) + len(b)))
    pre = subject_level * rng.lognormal(0, 0.3, subject_level.shape)
    post = subject_level * rng.lognormal(0, 0.3, subject_level.shape)
    dilution = rng.uniform(0.6, 1.6, 2 * n_subjects)
    values = np.vstack([pre, post]) * dilution[:, None]
    ids = [f"P{i:02d}_pre" for i in range(n_subjects)] + [f"P{i:02d}_post" for i in range(n_subjects)]
    x = pd.DataFrame(values, index=ids, columns=a + b)
    if gap:
        x.loc[ids[n_subjects:], b] = NA
    sheet = pd.DataFrame({"sample_id": ids, "subject_id": [f"P{i:02d}" for i in range(n_subjects)] * 2,
                          "timepoint": ["pre"] * n_subjects + ["post"] * n_subjects, "sample_type": "stool"})
    return x, sheet, a, b


CONTRAST = [{"name": "post_vs_pre", "pre": "pre", "post": "post"}]


def paired_calls(table: pd.DataFrame, n_subjects: int, alpha: float = 0.1) -> list[str]:
    d = table.iloc[n_subjects:].to_numpy() - table.iloc[:n_subjects].to_numpy()
    tested = (~np.isnan(d)).sum(axis=0) >= 3
    p = stats.ttest_1samp(d[:, tested], 0.0).pvalue
    q = stats.false_discovery_control(p)
    return list(table.columns[tested][q < alpha])


@pytest.mark.parametrize("method", ["half_minimum", "knn"])
def test_platform_gap_is_not_imputed_and_invents_no_change(method):
    x, sheet, a, b = gap_study()
    params = {"impute": {"method": method}, "normalise": {"method": "pqn", "reference": "median"}}
    result = process_metabolome(x, sheet, None, params, contrasts=CONTRAST)
    post = result.table.index.str.endswith("_post")
    assert result.table.loc[post, b].isna().all().all()  # never imputed
    assert result.table.loc[~post, b].notna().all().all()
    # the gap changes nothing for platform A: same values and calls as processing A alone
    alone = process_metabolome(x[a], sheet, None, params, contrasts=CONTRAST)
    np.testing.assert_allclose(result.table[a].to_numpy(), alone.table.to_numpy(), rtol=1e-12)
    assert paired_calls(result.table, 30) == paired_calls(alone.table, 30)
    contrast = result.qc_tables["contrast_missingness"].set_index("feature_id")
    assert (contrast.loc[b, "status"] == "not measured at post").all()
    assert (contrast.loc[a, "status"] == "similar").all()
    log = result.log.set_index("step")
    assert "platform B (6 features) not measured at timepoint post" in log.loc["structural_missingness", "note"]
    assert "not measured at post" in log.loc["warning", "note"]
    # the old behaviour, for contrast: imputing the gap turns B features into "changes" (every one of
    # them with half the minimum; k-NN borrows other subjects' values)
    legacy = dict(params, structural_missingness={"enabled": False})
    called = set(paired_calls(process_metabolome(x, sheet, None, legacy, contrasts=CONTRAST).table, 30))
    assert set(b) <= called if method == "half_minimum" else called & set(b)


def test_null_with_a_platform_gap_holds_its_level():
    """20 null studies, platform B not run at post: seeds with any call stay near alpha."""
    with_call, legacy_calls = 0, 0
    for seed in range(20):
        x, sheet, a, b = gap_study(seed=seed)
        params = {"normalise": {"method": "pqn", "reference": "median"}}
        with_call += bool(paired_calls(process_metabolome(x, sheet, None, params).table, 30))
        if seed < 3:
            legacy = dict(params, structural_missingness={"enabled": False})
            legacy_calls += len(paired_calls(process_metabolome(x, sheet, None, legacy).table, 30))
    assert with_call <= 5  # BH at 0.1 on a complete null: about 2 of 20 expected
    assert legacy_calls >= 3 * len(b)  # imputing the gap calls every B feature


def test_factors_ignore_a_platform_missing_at_one_visit():
    """Measured-only PQN: the factors equal those of the table without the gappy platform."""
    x, sheet, a, b = gap_study(seed=3)
    params = {"normalise": {"method": "pqn", "reference": "median"}}
    with_gap = process_metabolome(x, sheet, None, params).qc_tables["normalisation_factors"]
    without = process_metabolome(x[a], sheet, None, params).qc_tables["normalisation_factors"]
    np.testing.assert_allclose(with_gap["factor"], without["factor"], rtol=1e-12)
    assert (with_gap["n_features"] == len(a)).all()


def test_overall_missingness_rule_counts_measured_cells_only():
    x, sheet, a, b = gap_study(seed=1)
    result = process_metabolome(x, sheet, None, {"missingness": {"rule": "overall", "max_missing": 0.2}})
    # B is 50 % missing over all samples, but 0 % over the samples that measured it
    assert set(b) <= set(result.table.columns)


def test_below_detection_after_treatment_is_not_a_gap():
    """One metabolite vanishing at post while its platform was measured stays in (imputed as low)."""
    x, sheet, a, b = gap_study(seed=2, gap=False)
    x.loc[x.index.str.endswith("_post"), "A_0"] = NA
    result = process_metabolome(x, sheet, None, {}, contrasts=CONTRAST)
    assert result.table["A_0"].notna().all()
    assert result.qc_tables["contrast_missingness"].set_index("feature_id").loc["A_0", "status"] == "differs"
    assert "A_0" in paired_calls(result.table, 30)
    assert result.qc_tables["missingness_structure"]["status"].eq("measured").all()


def test_structural_step_can_be_disabled_and_reports_absent_columns():
    x, sheet, a, b = gap_study()
    off = process_metabolome(x, sheet, None, {"structural_missingness": {"enabled": False}})
    assert off.log.set_index("step").loc["structural_missingness", "note"] == "skipped: disabled"
    assert off.table.notna().all().all()
    on = process_metabolome(x, sheet, None, {})
    assert "batch not in the sample sheet" in on.log.set_index("step").loc["structural_missingness", "note"]


def test_run_summary_names_the_left_out_features(tmp_path):
    from gutaxis.metabolome.structure import missingness_run_summary

    x, sheet, a, b = gap_study()
    x.loc[x.index.str.endswith("_post"), "A_0"] = NA  # below detection after treatment
    table = process_metabolome(x, sheet, None, {}, contrasts=CONTRAST).qc_tables["contrast_missingness"]
    path = tmp_path / "contrast_missingness.tsv"
    table.to_csv(path, sep="\t", index=False)
    lines = missingness_run_summary({"metabolites": str(path), "absent": str(tmp_path / "none.tsv")})
    assert lines[0].startswith("metabolome metabolites: 6 feature(s) not measured at post (platform B)")
    assert "1 feature(s) detected much more often" in lines[1] and len(lines) == 2


def test_not_measured_in_reads_the_structure_table_in_feature_order(tmp_path):
    from gutaxis.metabolome.structure import not_measured_in

    missing, groups, platforms = small_structure()
    path = tmp_path / "missingness_structure.tsv"
    structure_table(missing, groups, platforms).to_csv(path, sep="\t", index=False)
    got = not_measured_in(path, ["a", "b"], ["Q_1", "P_2", "P_1"])
    assert list(got.index) == ["P_2", "P_1"]
    assert got["P_1"] == "not measured at b (100% missing; platform P)"
    assert not_measured_in(path, ["a"], ["P_1"]).empty
