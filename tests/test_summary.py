"""results/summary.md: the answers first, each line naming its table."""

from __future__ import annotations

import pandas as pd
import pytest

from gutaxis.summary import _num, best_model_line, response_lines, summary_markdown, survival_lines


def tables():
    study = pd.DataFrame({"item": ["study_type", "description", "skipped"],
                          "value": ["oncology", "oncology trial", "adverse events: no table"]})
    samples = pd.DataFrame({"modality": ["taxa"] * 3, "status": ["kept", "kept", "not_analysed"],
                            "reason": [None, None, "no classified reads"]})
    response = pd.DataFrame({"group_var": "overall", "group": "all", "criterion": "recist",
                             "endpoint": ["ORR", "DCR"], "n_responders": [5, 12], "n_denominator": 24,
                             "rate": [5 / 24, 0.5], "ci_low": [0.07, 0.29], "ci_high": [0.42, 0.71],
                             "ci_method": "Clopper-Pearson exact"})
    survival = pd.DataFrame({"endpoint": "PFS2", "group_var": "overall", "group": "all",
                             "quantity": ["n", "n_events", "median"], "estimate": [24, 20, 3.35],
                             "ci_low": [None, None, 2.6], "ci_high": [None, None, 6.3]})
    calls = pd.DataFrame({"feature": ["s__A", "s__B"], "annotation": ["A", "B"], "called": ["change", "at_baseline"],
                          "change_effect": [1.2, None], "change_ci_low": [0.5, None], "change_ci_high": [1.9, None],
                          "change_q": [0.001, None], "change_direction": ["up", ""],
                          "change_methods_agreeing": ["paired_t, wilcoxon", ""],
                          "at_baseline_effect": [None, -0.4], "at_baseline_ci_low": [None, -0.7],
                          "at_baseline_ci_high": [None, -0.1], "at_baseline_q": [None, 0.04],
                          "at_baseline_methods_agreeing": ["", "ols"], "prevalence_direction": ["none", "none"],
                          "effect_scale": "clr"})
    performance = pd.DataFrame({"feature_set": ["base", "change"], "model": "l1_logistic",
                                "view": ["baseline", "change (on-treatment; landmark 1.38 months)"],
                                "n_subjects": [46, 44], "auroc_mean": [0.81, 0.9], "auroc_low": [0.75, 0.85],
                                "auroc_high": [0.86, 0.95], "auroc_delong_low": [0.68, 0.8],
                                "auroc_delong_high": [0.93, 0.99], "auroc_pooled": [0.8, 0.9],
                                "perm_p_value": [0.01, None], "best": [True, False],
                                "validation": "stratified"})
    return study, samples, response, survival, {("taxa", "post_vs_baseline"): calls}, performance


def test_the_first_screen_answers_with_numbers_from_the_tables():
    study, samples, response, survival, calls, performance = tables()
    text = summary_markdown("Trial", study, samples, response=response, survival=survival, calls=calls,
                            performance=performance)
    first = "\n".join(text.splitlines()[:12])
    assert "ORR (RECIST) 21 % (7–42 %), 5/24" in first and "DCR (RECIST) 50 % (29–71 %), 12/24" in first
    # one precision, rounded as the Kaplan-Meier figure rounds (3.35 -> 3.4, 3.15 -> 3.2)
    assert "PFS2 median 3.4 months (95 % CI 2.6–6.3; 20 events in 24)" in first
    assert "taxa, post_vs_baseline: **1** features changed (q < 0.1); 2 called" in first
    assert "Best responder model: base / l1_logistic (baseline), AUROC 0.81" in first
    # every answer names its source table
    for line in first.splitlines():
        if line.startswith("- "):
            assert "results/" in line and line.rstrip().endswith("]")
    assert "| A | change | 1.20 (0.50, 1.90) | 0.001 | paired_t, wilcoxon | none |" in text
    assert "| B | at_baseline | -0.40 (-0.70, -0.10) | 0.04 | ols | none |" in text
    assert "change (on-treatment; landmark 1.38 months)" in text
    assert "- taxa: 2 samples analysed, 1 not: 1 no classified reads" in text
    assert "## Not run for this study" in text and "adverse events: no table" in text


def test_numbers_round_half_up_like_the_figures():
    from gutaxis.summary import _num

    assert _num(3.15, 1) == "3.2" and _num(2.25) == "2.25" and _num(-0.125, 2) == "-0.13"
    assert _num(float("nan")) == "NA" and _num(None) == "NA"


def test_sections_without_tables_are_left_out():
    study, samples, *_ = tables()
    text = summary_markdown("Cohort", study, samples)
    assert "## Endpoints" not in text and "## Responder models" not in text and "Best" not in text
    assert response_lines(pd.DataFrame(columns=["group_var"])) == []
    assert best_model_line(None) is None
    assert survival_lines(pd.DataFrame(columns=["group_var", "quantity", "endpoint"])) == []


@pytest.mark.workflow
def test_demo_summary_first_screen_matches_the_tables(demo_run):
    """Issue 20: from a demo run, the first screen of results/summary.md answers ORR/DCR, the PFS2
    median, the taxa / metabolites / immune subsets called after treatment and the best model,
    with the numbers of the tables it names."""
    results = demo_run / "results"
    first = (results / "summary.md").read_text().split("\n---\n")[0]
    assert len(first.splitlines()) <= 25
    response = pd.read_csv(results / "clinical/response.tsv", sep="\t")
    dcr = response[(response["group_var"] == "overall") & (response["criterion"] == "recist")
                   & (response["endpoint"] == "DCR")].iloc[0]
    assert f"DCR (RECIST) {100 * dcr['rate']:.0f} %" in first and f"{dcr['n_responders']}/{dcr['n_denominator']}" in first
    assert "ORR (RECIST)" in first and "PFS2 median" in first
    for modality in ("taxa", "metabolites", "immune"):
        calls = pd.read_csv(results / f"differential/{modality}/post_vs_baseline.calls.tsv", sep="\t")
        changed = int((calls["change_direction"].fillna("") != "").sum())
        assert f"{modality}, post_vs_baseline: **{changed}** features changed" in first
    performance = pd.read_csv(results / "models/performance.tsv", sep="\t")
    best = performance[performance["best"]].iloc[0]
    assert f"Best responder model: {best['feature_set']} / {best['model']}" in first
    assert f"AUROC {_num(best['auroc_mean'])}" in first
