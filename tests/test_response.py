"""Response rates (ORR/DCR) with Clopper-Pearson CIs, responder labels and abscopal incidence."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from gutaxis.io.errors import InputError
from gutaxis.clinical.response import (
    RATE_COLUMNS,
    abscopal_incidence,
    clopper_pearson,
    responder_labels,
    response_rates,
    response_table,
)


def beta_interval(x: int, n: int, alpha: float = 0.05) -> tuple[float, float]:
    """Clopper-Pearson from its definition with beta quantiles (independent of statsmodels)."""
    low = 0.0 if x == 0 else stats.beta.ppf(alpha / 2, x, n - x + 1)
    high = 1.0 if x == n else stats.beta.ppf(1 - alpha / 2, x + 1, n - x)
    return low, high


def subjects_table() -> pd.DataFrame:
    # lung: CR PR SD PD NE NE ; esophageal: PR SD SD PD ; other: NE
    return pd.DataFrame({
        "subject_id": [f"P{i:02d}" for i in range(1, 12)],
        "cohort": ["lung"] * 6 + ["esophageal"] * 4 + ["other"],
        "study": ["ILDR-01"] * 3 + ["ILDR-02"] * 8,
        "dose_gy": [1, 2, 3, 1, 1, 1, 1, 1, 1, np.nan, 1],
        "best_response": ["CR", "PR", "SD", "PD", "NE", "NE", "PR", "SD", "SD", "PD", "NE"],
        "best_response_irecist": ["iCR", "iPR", "iSD", "iUPD", "NE", "iPR", "iPR", "iSD", "iUPD", "iCPD", "NE"],
        "abscopal": ["yes", "no", "no", "no", "NE", "NE", "yes", "no", "no", "no", "NE"],
    })


@pytest.mark.parametrize("alpha", [0.05, 0.10])
def test_clopper_pearson_matches_beta_quantile_formula_including_edges(alpha):
    xs, ns = [], []
    for n in (1, 2, 7, 20, 48):
        for x in sorted({0, 1, n // 2, n - 1, n}):
            xs.append(x)
            ns.append(n)
    low, high = clopper_pearson(xs, ns, alpha)
    expected = np.array([beta_interval(x, n, alpha) for x, n in zip(xs, ns)])
    np.testing.assert_allclose(low, expected[:, 0], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(high, expected[:, 1], rtol=1e-10, atol=1e-12)
    # x = 0 and x = n: the one-sided bound is exactly 0 / 1 and the other is (alpha/2)^(1/n)
    x0 = np.array(xs) == 0
    assert np.all(low[x0] == 0.0)
    np.testing.assert_allclose(high[x0], 1 - (alpha / 2) ** (1 / np.array(ns)[x0]), rtol=1e-10)
    xn = np.array(xs) == np.array(ns)
    assert np.all(high[xn] == 1.0)


def test_clopper_pearson_empty_denominator_and_bad_counts():
    low, high = clopper_pearson([0, 3], [0, 5])
    assert np.isnan(low[0]) and np.isnan(high[0]) and np.isfinite(low[1])
    with pytest.raises(ValueError):
        clopper_pearson(4, 3)


def test_overall_rates_ne_included_vs_excluded():
    subjects = subjects_table()
    # RECIST over 11 subjects: CR 1, PR 2, SD 3, PD 2, NE 3
    for handling, denominator in (("include", 11), ("exclude", 8)):
        table = response_rates(subjects, None, criteria=["recist"], not_evaluable=handling)
        assert list(table.columns) == RATE_COLUMNS
        orr = table.set_index("endpoint").loc["ORR"]
        dcr = table.set_index("endpoint").loc["DCR"]
        assert (orr.n_responders, dcr.n_responders) == (3, 6)
        assert orr.n_total == 11 and orr.n_evaluable == 8 and orr.n_not_evaluable == 3
        assert orr.n_denominator == denominator
        assert orr.not_evaluable_handling == handling
        assert orr.rate == pytest.approx(3 / denominator)
        assert dcr.rate == pytest.approx(6 / denominator)
        assert (orr.ci_low, orr.ci_high) == pytest.approx(beta_interval(3, denominator), rel=1e-10)
        assert (dcr.ci_low, dcr.ci_high) == pytest.approx(beta_interval(6, denominator), rel=1e-10)
        assert table["group_var"].eq("overall").all() and table["group"].eq("all").all()


def test_irecist_disease_control_excludes_unconfirmed_progression():
    table = response_rates(subjects_table(), "cohort", criteria=["irecist"]).set_index(["group", "endpoint"])
    # lung iRECIST: iCR iPR iSD iUPD NE iPR -> ORR 3/6, DCR 4/6 (iUPD is not disease control)
    assert table.loc[("lung", "ORR"), "n_responders"] == 3
    assert table.loc[("lung", "DCR"), "n_responders"] == 4
    assert table.loc[("lung", "DCR"), "n_denominator"] == 6
    # esophageal: iPR iSD iUPD iCPD -> ORR 1/4, DCR 2/4
    assert table.loc[("esophageal", "ORR"), "rate"] == pytest.approx(0.25)
    assert table.loc[("esophageal", "DCR"), "rate"] == pytest.approx(0.5)


def test_per_cohort_counts_and_order():
    table = response_rates(subjects_table(), "cohort")
    assert table["group"].unique().tolist() == ["esophageal", "lung", "other"]
    assert table.groupby(["criterion", "endpoint"])["n_total"].sum().eq(11).all()
    other = table[table["group"] == "other"].set_index(["criterion", "endpoint"])
    # the single NE subject: 0/1 with NE included, empty denominator (NaN) when excluded
    assert other.loc[("recist", "ORR"), "rate"] == 0.0
    excluded = response_rates(subjects_table(), "cohort", not_evaluable="exclude")
    other = excluded[excluded["group"] == "other"]
    assert other["n_denominator"].eq(0).all() and other["rate"].isna().all() and other["ci_low"].isna().all()
    # ORR never exceeds DCR
    wide = table.pivot_table(index=["group", "criterion"], columns="endpoint", values="n_responders")
    assert (wide["ORR"] <= wide["DCR"]).all()


def test_dose_groups_keep_subjects_without_a_dose():
    table = response_rates(subjects_table(), ["study", "dose_gy"], criteria=["recist"])
    assert table["group_var"].unique().tolist() == ["study+dose_gy"]
    groups = table["group"].unique().tolist()
    assert groups == ["ILDR-01 / 1", "ILDR-01 / 2", "ILDR-01 / 3", "ILDR-02 / 1", "ILDR-02 / NA"]
    assert table[table.endpoint == "ORR"]["n_total"].sum() == 11


def test_response_table_stacks_default_groupings():
    table = response_table(subjects_table())
    assert table["group_var"].unique().tolist() == ["overall", "cohort", "study+dose_gy"]
    assert len(table) == (1 + 3 + 5) * 2 * 2
    only = response_table(subjects_table(), {"overall": None}, criteria=["recist"])
    assert len(only) == 2


def test_rates_do_not_depend_on_row_order():
    subjects = subjects_table()
    shuffled = subjects.sample(frac=1, random_state=np.random.default_rng(7).integers(1 << 31))
    pd.testing.assert_frame_equal(response_table(subjects), response_table(shuffled))


def test_unknown_response_code_is_a_clear_error():
    subjects = subjects_table()
    subjects.loc[3, "best_response"] = "progressive"
    with pytest.raises(InputError) as err:
        response_rates(subjects, "cohort", criteria=["recist"])
    text = str(err.value)
    assert "subjects.tsv" in text and "'best_response'" in text and "P04" in text
    assert "'progressive'" in text and "use one of CR, PR, SD, PD, NE" in text
    # only the columns the call needs are checked
    subjects = subjects_table()
    subjects.loc[0, "best_response_irecist"] = "bogus"
    assert len(response_rates(subjects, None, criteria=["recist"])) == 2
    with pytest.raises(InputError):
        response_rates(subjects, None, criteria=["irecist"])


def test_bad_arguments():
    with pytest.raises(ValueError):
        response_rates(subjects_table(), None, not_evaluable="ignore")
    with pytest.raises(InputError) as err:
        response_rates(subjects_table(), "arm")
    assert "'arm'" in str(err.value)


def test_responder_labels_per_definition():
    definitions = {
        "dcr_recist": {"endpoint": "DCR", "criterion": "recist"},
        "orr_recist": {"endpoint": "ORR", "criterion": "recist"},
        "dcr_irecist": {"endpoint": "dcr", "criterion": "iRECIST"},
    }
    subjects = subjects_table().iloc[::-1]  # labels come back sorted by subject
    labels = responder_labels(subjects, definitions)
    assert list(labels.columns) == ["subject_id", "cohort", "dcr_recist", "orr_recist", "dcr_irecist"]
    assert labels["subject_id"].tolist() == sorted(subjects["subject_id"])
    by_id = labels.set_index("subject_id")
    # P03: SD / iSD; P04: PD / iUPD; P05: NE / NE; P06: NE / iPR
    assert by_id.loc["P03"].tolist() == ["lung", "responder", "non_responder", "responder"]
    assert by_id.loc["P04"].tolist() == ["lung", "non_responder", "non_responder", "non_responder"]
    assert by_id.loc["P05"].tolist() == ["lung", "", "", ""]
    assert by_id.loc["P06"].tolist() == ["lung", "", "", "responder"]
    # labels agree with the rates table (NE excluded == labelled subjects only)
    rates = response_rates(subjects, None, criteria=["recist"], not_evaluable="exclude").set_index("endpoint")
    assert (labels["dcr_recist"] == "responder").sum() == rates.loc["DCR", "n_responders"]
    assert (labels["dcr_recist"] != "").sum() == rates.loc["DCR", "n_denominator"]


def test_responder_label_bad_definition():
    with pytest.raises(ValueError, match="endpoint must be DCR or ORR"):
        responder_labels(subjects_table(), {"x": {"endpoint": "PFS", "criterion": "recist"}})


def test_abscopal_incidence_with_ne_handling():
    subjects = subjects_table()
    # yes 2, no 6, NE 3
    included = abscopal_incidence(subjects).iloc[0]
    assert (included.n_yes, included.n_denominator, included.n_not_evaluable) == (2, 11, 3)
    assert (included.ci_low, included.ci_high) == pytest.approx(beta_interval(2, 11), rel=1e-10)
    excluded = abscopal_incidence(subjects, not_evaluable="exclude").iloc[0]
    assert excluded.n_denominator == 8 and excluded.rate == pytest.approx(0.25)
    by_cohort = abscopal_incidence(subjects, "cohort").set_index("group")
    assert by_cohort.loc["lung", "n_yes"] == 1 and by_cohort.loc["esophageal", "n_yes"] == 1
    subjects.loc[0, "abscopal"] = "unclear"
    with pytest.raises(InputError, match="abscopal"):
        abscopal_incidence(subjects)
