"""The diversity module's glue: responder labels, sample metadata, count detection, tidy α tables."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from gutaxis.diversity.alpha import alpha_diversity, paired_alpha_tests
from gutaxis.diversity.beta import compare_shift_by_response, shift_vs_between, within_subject_shift
from gutaxis.diversity.design import (
    ALPHA_TABLE_COLUMNS,
    alpha_design,
    call_by_metric_role,
    call_significant,
    count_input,
    full_design_timepoints,
    sample_metadata,
    subject_labels,
    tidy_alpha,
)
from gutaxis.diversity.shift import SHIFT_TEST_COLUMNS, shift_tests_table
from gutaxis.io.errors import InputError
from gutaxis.io.pairing import pair_samples


def responders():
    return pd.DataFrame({
        "subject_id": ["S2", "S1", "S3"],
        "cohort": ["lung", "lung", "other"],
        "dcr_recist": ["non_responder", "responder", ""],
        "orr_recist": ["non_responder", "non_responder", ""],
    })


def sheet():
    return pd.DataFrame({
        "sample_id": ["S1_a", "S1_b", "S2_a", "S2_b", "S3_a", "QC1"],
        "subject_id": ["S1", "S1", "S2", "S2", "S3", ""],
        "timepoint": ["baseline", "post", "baseline", "post", "baseline", ""],
        "sample_type": ["stool"] * 5 + ["qc"],
    })


def test_subject_labels_take_the_primary_definition():
    labels = subject_labels(responders(), "dcr_recist")
    assert list(labels["subject_id"]) == ["S1", "S2", "S3"]
    assert list(labels["response"]) == ["responder", "non_responder", ""]
    assert list(subject_labels(responders(), "orr_recist")["response"]) == ["non_responder", "non_responder", ""]


def test_subject_labels_report_a_missing_definition_and_bad_values():
    with pytest.raises(InputError) as err:
        subject_labels(responders(), "dcr_irecist", "responders.tsv")
    assert "dcr_irecist" in str(err.value) and "responders.tsv" in str(err.value)
    bad = responders().assign(dcr_recist=["NR", "responder", ""])
    with pytest.raises(InputError) as err:
        subject_labels(bad, "dcr_recist")
    assert "S2" in str(err.value) and "'NR'" in str(err.value)


def test_sample_metadata_follows_the_table_order_and_rejects_unknown_samples():
    labels = subject_labels(responders(), "dcr_recist")
    meta = sample_metadata(sheet(), labels, ["S2_b", "S1_a", "S3_a"])
    assert list(meta["sample_id"]) == ["S2_b", "S1_a", "S3_a"]
    assert list(meta["response"]) == ["non_responder", "responder", ""]
    assert list(meta["cohort"]) == ["lung", "lung", "other"]
    with pytest.raises(InputError) as err:
        sample_metadata(sheet(), labels, ["S1_a", "X9"])
    assert "X9" in str(err.value)


def notes(**values):
    return pd.DataFrame({"key": list(values), "value": [str(v) for v in values.values()]})


def test_count_input_uses_counts_only_when_the_importer_kept_whole_counts():
    counts = pd.DataFrame([[3.0, 0.0, 7.0], [1.0, 2.0, 0.0]])
    fractions = counts.div(counts.sum(axis=1), axis=0)
    assert count_input(notes(units="counts", output_units="counts"), counts) == (True, "")
    assert count_input(notes(units="counts"), counts) == (True, "")
    used, why = count_input(notes(units="percent", output_units="fraction"), fractions)
    assert not used and "percent" in why
    used, why = count_input(notes(units="counts", output_units="fraction"), fractions)
    assert not used and "fraction" in why
    used, why = count_input(notes(units="counts", output_units="counts"), counts + 0.5)
    assert not used and "non-integer" in why


def alpha_table():
    rng = np.random.default_rng(1)
    x = rng.gamma(0.6, size=(5, 12))
    x[1, :] = 0.0  # an empty sample: every metric missing, with the library's reason
    x[2, 1:] = 0.0  # one feature: Pielou evenness undefined
    table = pd.DataFrame(x, index=pd.Index(["S1_a", "S1_b", "S2_a", "S2_b", "S3_a"], name="sample_id"))
    return table


def test_tidy_alpha_explains_every_missing_value_and_round_trips():
    table = alpha_table()
    result = alpha_diversity(table)
    meta = sample_metadata(sheet(), subject_labels(responders(), "dcr_recist"), table.index)
    metrics = ["shannon", "pielou_evenness", "chao1"]
    tidy = tidy_alpha(result.values, result.not_computed, meta, metrics, {"chao1": "needs read counts"})
    assert list(tidy.columns) == ALPHA_TABLE_COLUMNS
    assert len(tidy) == 3 * len(table)
    assert list(dict.fromkeys(tidy["metric"])) == metrics
    missing = tidy[tidy["value"].isna()]
    assert (missing["reason"] != "").all()
    assert set(missing.loc[missing["metric"] == "chao1", "reason"]) == {"needs read counts"}
    assert "S1_b" in set(missing.loc[missing["metric"] == "shannon", "sample_id"])
    assert "S2_a" in set(missing.loc[missing["metric"] == "pielou_evenness", "sample_id"])
    assert (tidy.loc[tidy["value"].notna(), "reason"] == "").all()
    # Shannon by hand for one sample
    p = table.loc["S3_a"].to_numpy() / table.loc["S3_a"].sum()
    p = p[p > 0]
    row = tidy[(tidy["metric"] == "shannon") & (tidy["sample_id"] == "S3_a")]
    assert row["value"].iloc[0] == pytest.approx(-(p * np.log(p)).sum(), rel=1e-12)
    values, samples, subjects = alpha_design(tidy)
    assert list(values.columns) == ["shannon", "pielou_evenness"]  # chao1 has no value at all
    pd.testing.assert_series_equal(values["shannon"].sort_index(),
                                   result.values["shannon"].sort_index(), check_names=False)
    assert set(subjects["response"]) == {"responder", "non_responder", ""}


def test_alpha_design_feeds_the_paired_tests():
    tidy = pd.DataFrame({
        "sample_id": [f"S{i}_{t}" for i in range(6) for t in "ab"],
        "subject_id": [f"S{i}" for i in range(6) for _ in "ab"],
        "timepoint": ["baseline", "post"] * 6,
        "cohort": ["lung"] * 12,
        "response": ["responder"] * 6 + ["non_responder"] * 6,
        "metric": "shannon",
        "value": [1.0, 1.5, 2.0, 2.25, 1.2, 2.0, 0.5, 0.35, 0.9, 1.0, 1.1, 0.8],
        "reason": "",
    })
    values, samples, subjects = alpha_design(tidy)
    tests = paired_alpha_tests(values, samples, subjects, "baseline", "post")
    overall = tests[tests["group_by"] == "overall"].iloc[0]
    d = np.array([0.5, 0.25, 0.8, -0.1, 0.1, -0.3])
    assert overall["n_pairs"] == 6
    assert overall["p_value"] == pytest.approx(stats.wilcoxon(d, method="exact").pvalue)


def test_full_design_timepoints_put_baseline_first():
    order = ["screening", "baseline", "post", "progression"]
    assert full_design_timepoints(order, "baseline", ["post", "baseline", "progression"]) == [
        "baseline", "post", "progression"]
    assert full_design_timepoints(order, "baseline", ["post", "progression"]) == ["post", "progression"]


def test_shift_tests_table_carries_both_tests():
    ids = ["A_pre", "A_post", "B_pre", "B_post", "C_pre", "C_post", "D_pre", "D_post", "E_pre", "E_post"]
    rng = np.random.default_rng(3)
    points = rng.normal(size=(len(ids), 3))
    d = np.sqrt(((points[:, None, :] - points[None, :, :]) ** 2).sum(axis=2))
    distances = pd.DataFrame(d, index=ids, columns=ids)
    samples = pd.DataFrame({"sample_id": ids, "subject_id": [i.split("_")[0] for i in ids],
                            "timepoint": ["baseline" if i.endswith("pre") else "post" for i in ids]})
    pairs = pair_samples(samples, "baseline", "post")
    labels = pd.DataFrame({"subject_id": list("ABCDE"),
                           "response": ["responder", "responder", "non_responder", "non_responder", ""]})
    shift = within_subject_shift(distances, pairs)
    table = shift_tests_table(compare_shift_by_response(shift, labels), shift_vs_between(distances, pairs).test)
    assert list(table.columns) == SHIFT_TEST_COLUMNS
    assert list(table["test"]) == ["responder_vs_non_responder", "within_vs_between"]
    by_response = table.iloc[0]
    within = d[[0, 2, 4, 6, 8], [1, 3, 5, 7, 9]]
    expected = stats.mannwhitneyu(within[:2], within[2:4], method="exact")
    assert by_response["p_value"] == pytest.approx(expected.pvalue)
    assert (by_response["n_a"], by_response["n_b"]) == (2, 2)
    assert "1 subjects without a response label" in by_response["note"]
    assert table.iloc[1]["n_a"] == 5


def test_call_significant_is_empty_where_nothing_was_tested():
    p = pd.Series([0.01, 0.2, np.nan, 0.001])
    assert list(call_significant(p, 0.05)) == [True, False, "", True]
    assert list(call_significant(p, 0.05, pd.Series([True, True, True, False]))) == [True, False, "", ""]


def test_only_the_primary_metric_makes_calls():
    table = pd.DataFrame({"test": ["a", "b", "c"], "p_value": [0.01, 0.2, np.nan]})
    primary = call_by_metric_role(table, "robust_aitchison", "robust_aitchison", 0.05)
    assert primary["significant"].tolist() == [True, False, ""]
    assert primary["called"].tolist() == [True, False, ""]
    assert set(primary["role"]) == {"primary"}
    sensitivity = call_by_metric_role(table, "jaccard", "robust_aitchison", 0.05)
    assert sensitivity["significant"].tolist() == [True, False, ""]  # still reported
    assert sensitivity["called"].tolist() == ["", "", ""]  # but no call
    assert set(sensitivity["role"]) == {"sensitivity"}
    assert "called" not in table  # the input is left alone


# ---------------------------------------------------------------------------
# study types


def test_labels_without_response_and_the_crossover_period_column():
    from gutaxis.diversity.design import subjects_without_response, tidy_alpha

    subjects = pd.DataFrame({"subject_id": ["B", "A"], "cohort": ["x", "y"], "best_response": ["PR", "PD"]})
    labels = subjects_without_response(subjects)
    assert list(labels["subject_id"]) == ["A", "B"] and (labels["response"] == "").all()
    samples = pd.DataFrame({"sample_id": ["s1", "s2", "s3"], "subject_id": ["A", "A", "B"],
                            "timepoint": ["pre", "post", "pre"], "period": ["1", "1", "2"]})
    meta = sample_metadata(samples, labels, ["s3", "s1"], period="period")
    assert list(meta.columns) == ["sample_id", "subject_id", "timepoint", "cohort", "response", "period"]
    assert list(meta["period"]) == ["2", "1"] and list(meta["cohort"]) == ["x", "y"]
    # without a period the table keeps its columns (the demo's outputs do not change)
    assert list(sample_metadata(samples, labels, ["s1"]).columns) == ["sample_id", "subject_id", "timepoint",
                                                                     "cohort", "response"]
    with pytest.raises(InputError, match="period"):
        sample_metadata(samples.drop(columns="period"), labels, ["s1"], period="period")
    values = pd.DataFrame({"shannon": [1.0, 2.0]}, index=pd.Index(["s1", "s3"], name="sample_id"))
    tidy = tidy_alpha(values, pd.DataFrame(columns=["sample_id", "metric", "reason"]),
                      sample_metadata(samples, labels, ["s1", "s3"], period="period"), ["shannon"])
    assert list(tidy.columns) == ALPHA_TABLE_COLUMNS[:5] + ["period"] + ALPHA_TABLE_COLUMNS[5:]
    _, design_samples, _ = alpha_design(tidy)
    assert list(design_samples["period"]) == ["1", "2"]


def test_shift_tests_without_response_keep_only_within_vs_between():
    rng = np.random.default_rng(7)
    ids = [f"S{i}_{t}" for t in ("pre", "post") for i in range(8)]
    x = rng.normal(size=(16, 3))
    d = pd.DataFrame(np.linalg.norm(x[:, None] - x[None, :], axis=2), index=ids, columns=ids)
    pairs = pd.DataFrame({"subject_id": [f"S{i}" for i in range(8)], "pre_sample": ids[:8], "post_sample": ids[8:]})
    table = shift_tests_table(None, shift_vs_between(d, pairs).test)
    assert list(table["test"]) == ["within_vs_between"] and list(table.columns) == SHIFT_TEST_COLUMNS


def _figure_text(fig):
    from matplotlib.text import Text

    return "\n".join(t.get_text() for t in fig.findobj(Text))


def test_figures_of_a_study_without_response_show_no_response_groups(repo):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import yaml

    from gutaxis.io.configuration import validate_config
    from gutaxis.plots import diversity as plots
    from gutaxis.plots.style import resolve_style

    config = validate_config(yaml.safe_load((repo / "config" / "config.yaml").read_text()))
    style = resolve_style(config["style"], "diversity/taxa/c/alpha_paired")
    rng = np.random.default_rng(9)
    n = 10
    ids = [f"S{i}_{t}" for t in ("pre", "post") for i in range(n)]
    samples = pd.DataFrame({"sample_id": ids, "subject_id": [f"S{i}" for i in range(n)] * 2,
                            "timepoint": ["pre"] * n + ["post"] * n})
    labels = pd.DataFrame({"subject_id": [f"S{i}" for i in range(n)], "cohort": ["a", "b"] * (n // 2),
                           "response": ""})
    values = pd.DataFrame({"shannon": rng.normal(3, 0.3, 2 * n)}, index=pd.Index(ids, name="sample_id"))
    meta = sample_metadata(samples, labels, ids)
    tidy = meta.merge(values.rename(columns={"shannon": "value"}).reset_index(), on="sample_id")
    tidy = tidy.assign(metric="shannon", reason="")
    tests = paired_alpha_tests(values, samples, labels, "pre", "post")
    data = plots.paired_alpha_data(tidy, ["shannon"], "pre", "post", response=False)
    assert set(data["response"]) == {"all"}
    for response, expect_ne in ((False, False), (True, True)):
        fig = plots.plot_paired_alpha(plots.paired_alpha_data(tidy, ["shannon"], "pre", "post", response=response),
                                      tests, ["shannon"], ["a", "b"], style, pre="pre", post="post",
                                      response=response)
        text = _figure_text(fig)
        plt.close(fig)
        # the old behaviour (response=True on unlabelled subjects) is what the issue saw
        assert ("Not evaluable" in text) is expect_ne and ("R: no pairs" in text) is expect_ne
    d = pd.DataFrame(np.abs(rng.normal(size=(2 * n, 2 * n))), index=ids, columns=ids)
    d = (d + d.T) / 2
    np.fill_diagonal(d.values, 0.0)
    pairs = pd.DataFrame({"subject_id": labels["subject_id"], "pre_sample": ids[:n], "post_sample": ids[n:]})
    between = shift_vs_between(d, pairs)
    shift = within_subject_shift(d, pairs).merge(between.per_subject.drop(columns="within_distance"))
    shift = shift.assign(metric="braycurtis", cohort="a", response="")
    table = shift_tests_table(None, between.test).assign(metric="braycurtis")
    fig = plots.plot_shift(plots.shift_plot_data([shift], response=False), table, ["braycurtis"], style,
                           response=False)
    text = _figure_text(fig)
    plt.close(fig)
    assert "Not evaluable" not in text and "NE" not in text and "Mann" not in text
    assert "within vs between subjects" in text


def test_run_summary_names_the_metric_left_out_and_the_primary_used(tmp_path):
    from gutaxis.diversity.beta import check_metric_availability
    from gutaxis.diversity.design import beta_metric_summary

    x = np.array([[1.0, 0, 0], [0, 1.0, 0], [0.5, 0.5, 0], [0.2, 0.3, 0.5]])
    table = pd.DataFrame(x, index=pd.Index([f"s{i}" for i in range(4)], name="sample_id"))
    check, _ = check_metric_availability(table, ["robust_aitchison", "braycurtis"], "robust_aitchison")
    check.to_csv(tmp_path / "beta_metrics.tsv", sep="\t", index=False)
    lines = beta_metric_summary({"taxa": tmp_path / "beta_metrics.tsv", "other": tmp_path / "absent.tsv"})
    assert len(lines) == 2
    assert "robust_aitchison is undefined for 1 of 6 sample pairs" in lines[0]
    assert lines[1].startswith("diversity taxa: braycurtis is the primary β metric")
