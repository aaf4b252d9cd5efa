"""Clinical figures: the rows each figure draws, and that every figure renders."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from gutaxis.clinical.checks import blank_to_missing  # noqa: E402
from gutaxis.clinical.tables import km_plot_table, stack_groupings  # noqa: E402
from gutaxis.plots.clinical import (  # noqa: E402
    ae_heatmap_data,
    forest_data,
    km_data,
    plot_ae_heatmap,
    plot_forest,
    plot_km,
    plot_swimmer,
    plot_waterfall,
    response_colours,
    swimmer_data,
    waterfall_data,
)
from gutaxis.clinical.response import response_table  # noqa: E402
from gutaxis.clinical.safety import ae_worst_grade  # noqa: E402
from gutaxis.plots.style import apply_style  # noqa: E402
from gutaxis.clinical.survival import survival_table  # noqa: E402

STYLE = {
    "font_family": "DejaVu Sans", "font_size": 8, "title_size": 9, "width_single_mm": 89,
    "width_double_mm": 183, "formats": ["png"], "dpi": 100,
    "palette": {"cohort": {"a": "#0072B2", "b": "#E69F00"}, "response": {"PD": "#000000"}},
}
ENDPOINTS = {"PFS2": ("pfs2_months", "pfs2_event"), "OS": ("os_months", "os_event")}
GROUPINGS = {"cohort": ["cohort"], "dose_group": ["study", "dose_gy"]}


def subjects_sheet() -> pd.DataFrame:
    return pd.DataFrame({
        "subject_id": ["A1", "A2", "A3", "B1", "B2", "B3", "B4"],
        "cohort": ["a", "a", "a", "b", "b", "b", "b"],
        "study": ["S1", "S1", "S2", "S2", "S2", "S2", "S2"],
        "dose_gy": ["1", "2", "2", "2", "2", "2", "2"],
        "best_response": ["PR", "SD", "PD", "CR", "PD", "NE", "SD"],
        "best_response_irecist": ["iPR", "iSD", "iUPD", "iCR", "iCPD", "NE", "iSD"],
        "target_lesion_change_pct": ["-45.0", "5.0", "30.0", "-100.0", "5.0", "", "-10.0"],
        "pfs2_months": ["5.0", "3.0", "1.0", "12.0", "2.0", "0.5", "7.0"],
        "pfs2_event": ["1", "1", "1", "0", "1", "1", "0"],
        "os_months": ["9.0", "8.0", "4.0", "12.0", "6.0", "0.5", "7.0"],
        "os_event": ["0", "1", "1", "0", "1", "1", "0"],
        "treatment_months": ["4.5", "3.0", "1.0", "12.0", "1.5", "0.5", "7.0"],
        "treatment_ongoing": ["0", "0", "0", "1", "0", "0", "1"],
    })


def events_sheet() -> pd.DataFrame:
    return pd.DataFrame({
        "subject_id": ["A1", "A1", "A2", "B1", "B2", "B2"],
        "term": ["Fatigue", "Diarrhea", "Fatigue", "Rash", "Fatigue", "Fatigue"],
        "grade": ["1", "3", "2", "1", "1", "4"],
        "attribution": ["possible", "probable", "unrelated", "definite", "possible", "unlikely"],
    })


def test_waterfall_data_sorts_by_change_and_sets_aside_missing_measurements():
    plotted, missing = waterfall_data(subjects_sheet())
    assert plotted["subject_id"].tolist() == ["A3", "A2", "B2", "B4", "A1", "B1"]  # ties by id
    assert plotted["position"].tolist() == [1, 2, 3, 4, 5, 6]
    assert missing["subject_id"].tolist() == ["B3"] and missing["response"].tolist() == ["NE"]
    irecist, _ = waterfall_data(subjects_sheet(), "irecist")
    assert irecist.set_index("subject_id").loc["A3", "response"] == "iUPD"


def test_swimmer_data_blocks_cohorts_in_config_order_longest_first():
    data = swimmer_data(subjects_sheet(), cohorts=["b", "a"])
    assert data["subject_id"].tolist() == ["B1", "B4", "B2", "B3", "A1", "A2", "A3"]
    # one free heading row before each cohort block
    assert data["position"].tolist() == [2, 3, 4, 5, 7, 8, 9]
    progression = data.set_index("subject_id")["progression_months"]
    assert progression["A1"] == 5.0 and np.isnan(progression["B1"])  # B1 censored
    assert data.set_index("subject_id").loc["B1", "treatment_ongoing"] == 1


def test_response_colours_take_the_config_first():
    colours = response_colours(STYLE, ["CR", "PD", "iUPD"])
    assert colours["PD"] == "#000000"
    assert len({colours["CR"], colours["PD"], colours["iUPD"]}) == 3


def tables():
    subjects = blank_to_missing(subjects_sheet())
    events = blank_to_missing(events_sheet())
    response = response_table(subjects, {"overall": None, **GROUPINGS})
    survival = stack_groupings(survival_table, GROUPINGS, order_by="endpoint", subjects=subjects,
                               endpoints=ENDPOINTS)
    curves = km_plot_table(subjects, ENDPOINTS, GROUPINGS)
    worst = stack_groupings(ae_worst_grade, GROUPINGS, adverse_events=events, subjects=subjects)
    return response, survival, curves, worst


def test_forest_data_rows_overall_then_each_grouping_in_order():
    response, *_ = tables()
    data = forest_data(response, GROUPINGS, cohorts=["b", "a"])
    rows = data.drop_duplicates("row")
    assert rows["group"].tolist() == ["all", "b", "a", "S1 / 1", "S1 / 2", "S2 / 2"]
    assert rows["section_label"].tolist()[:2] == ["Overall", "Cohort"]
    assert rows["section_label"].iloc[-1] == "Dose group (study / dose_gy)"
    # every row keeps its four estimates (2 criteria x ORR, DCR)
    assert (data.groupby("row").size() == 4).all()


def test_km_data_puts_the_overall_curve_first_and_steps_before_ticks():
    _, _, curves, _ = tables()
    data = km_data(curves, "cohort", ["b", "a"])
    assert set(data["group_var"]) == {"overall", "cohort"}
    first = data[data["endpoint"] == "PFS2"].drop_duplicates("curve")
    assert first["group"].tolist() == ["all", "b", "a"]
    for _, rows in data.groupby(["endpoint", "curve"]):
        records = rows["record"].tolist()
        assert records == sorted(records, key=["step", "at_risk"].index)
        assert rows.loc[rows["record"] == "step", "time"].is_monotonic_increasing


def test_ae_heatmap_data_orders_terms_by_overall_incidence_with_any_ae_first():
    *_, worst = tables()
    cells, hidden = ae_heatmap_data(worst, "cohort", ["b", "a"])
    terms = cells.drop_duplicates("term_rank")["term"].tolist()
    assert terms == ["Any AE", "Fatigue", "Diarrhea", "Rash"]  # 3, 1, 1 patients; ties by name
    assert hidden == 0
    fatigue_b = cells[(cells["term"] == "Fatigue") & (cells["group"] == "b")].set_index("worst_grade")
    assert fatigue_b.loc[4, "n_patients"] == 1  # B2's worst fatigue grade is 4
    assert fatigue_b.loc[1, "n_patients"] == 0
    cells, hidden = ae_heatmap_data(worst, "cohort", max_terms=1)
    assert cells["term"].unique().tolist() == ["Any AE", "Fatigue"] and hidden == 2


@pytest.mark.parametrize("criterion", ["recist", "irecist"])
def test_every_clinical_figure_renders(criterion):
    apply_style(STYLE)
    response, survival, curves, worst = tables()
    subjects = subjects_sheet()
    plotted, missing = waterfall_data(subjects, criterion)
    figures = [
        plot_waterfall(plotted, len(missing), {"partial_response": -30, "progressive_disease": 20}, STYLE,
                       criterion),
        plot_swimmer(swimmer_data(subjects, criterion), STYLE, criterion),
        plot_forest(forest_data(response, GROUPINGS), STYLE),
        plot_km(km_data(curves, "cohort"), survival, "cohort", STYLE),
        plot_ae_heatmap(*ae_heatmap_data(worst, "cohort"), STYLE),
    ]
    for fig in figures:
        assert isinstance(fig, Figure)
        fig.canvas.draw()
        matplotlib.pyplot.close(fig)


def test_swimmer_of_a_large_study_keeps_each_cohorts_longest_treated_in_proportion():
    rng = np.random.default_rng(3)
    sizes = {"a": 150, "b": 100, "c": 50}
    cohort = np.repeat(list(sizes), list(sizes.values()))
    subjects = pd.DataFrame({
        "subject_id": [f"P{i:03d}" for i in range(len(cohort))],
        "cohort": cohort,
        "best_response_recist": "SD",
        "treatment_months": rng.uniform(0.5, 20, len(cohort)).round(3),
        "treatment_ongoing": 0,
    })
    full = swimmer_data(subjects, cohorts=["a", "b", "c"])
    capped = swimmer_data(subjects, cohorts=["a", "b", "c"], max_patients=31)
    assert len(full) == 300 and len(capped) == 31
    assert capped.groupby("cohort")["subject_id"].size().to_dict() == {"a": 16, "b": 10, "c": 5}
    for name, rows in capped.groupby("cohort"):
        longest = full[full["cohort"] == name].head(len(rows))  # full is longest first per cohort
        assert rows["subject_id"].tolist() == longest["subject_id"].tolist()
        assert (rows["cohort_patients"] == sizes[name]).all()
    assert capped["position"].tolist() == list(range(2, 18)) + list(range(19, 29)) + list(range(30, 35))
    fig = plot_swimmer(capped, STYLE)
    assert fig.axes[0].get_title() == "Treatment duration and response (31 of 300 longest on treatment)"
    headings = {t.get_text() for t in fig.axes[0].texts}
    assert "a (16 of 150 shown)" in headings and "c (5 of 50 shown)" in headings
    # below the limit every patient is drawn and the headings say n
    assert swimmer_data(subjects, cohorts=["a", "b", "c"], max_patients=300).equals(full)


def test_swimmer_quota_keeps_a_patient_of_every_cohort():
    subjects = pd.DataFrame({"subject_id": [f"P{i}" for i in range(100)],
                             "cohort": ["big"] * 98 + ["x", "y"],
                             "treatment_months": np.arange(100, dtype=float) + 1,
                             "treatment_ongoing": 0})
    capped = swimmer_data(subjects, max_patients=10)
    assert capped.groupby("cohort").size().to_dict() == {"big": 9, "x": 1, "y": 1}
