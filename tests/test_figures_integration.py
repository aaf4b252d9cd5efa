"""Integration figures from planted tables: network key widths and label placement, microbe names in
italics, triad note on proportions mediated outside [0, 1], immune dynamics in percent."""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from gutaxis.plots import integration as P  # noqa: E402
from gutaxis.plots.style import apply_style  # noqa: E402

STYLE = {"font_family": "DejaVu Sans", "font_size": 8, "title_size": 9, "width_single_mm": 89,
         "width_double_mm": 183, "formats": ["png"], "dpi": 100}


def _network():
    xm = pd.DataFrame({"feature_a": ["s__Clostridium_scindens", "s__Bacteroides_caccae"],
                       "feature_b": ["M1", "M2"], "rho": [0.42, -0.85], "q": [0.01, 0.02]})
    my = pd.DataFrame({"feature_a": ["M1", "M3"], "feature_b": ["I1", "I2"], "rho": [0.6, 0.5], "q": [0.01, 0.03]})
    labels = [pd.Series({"s__Clostridium_scindens": "Clostridium scindens",
                         "s__Bacteroides_caccae": "Bacteroides caccae"}),
              pd.Series({"M1": "Lithocholic acid", "M2": "Deoxycholic acid", "M3": "Inosine"}),
              pd.Series({"I1": "Th17", "I2": "Tregs"})]
    return P.network_data(xm, my, labels, 0.1, 10)


def test_network_edge_widths_and_key_are_told_apart():
    apply_style(STYLE)
    edges, nodes = _network()
    np.testing.assert_allclose(edges["line_width"], 0.3 + 4 * edges["rho"] ** 2)
    assert P.width_key(edges["rho"]) == [0.4, 0.6, 0.8]  # round values, weakest to strongest
    fig = P.plot_network(edges, nodes, STYLE, P.LAYER_NAMES, 0.1)
    legend = fig.axes[0].get_legend()
    keys = {t.get_text(): h.get_linewidth() for t, h in zip(legend.get_texts(), legend.legend_handles)
            if t.get_text().startswith("|")}
    assert list(keys) == ["|\u03c1| = 0.4", "|\u03c1| = 0.6", "|\u03c1| = 0.8"]
    widths = list(keys.values())
    assert widths[-1] / widths[0] > 2.5  # visibly different, not 1.5 vs 2.6 as before
    plt.close(fig)


def test_network_labels_microbes_in_italics_and_metabolites_clear_of_edges():
    apply_style(STYLE)
    edges, nodes = _network()
    assert nodes.set_index("feature_id")["taxon"].to_dict() == {
        "s__Bacteroides_caccae": True, "s__Clostridium_scindens": True, "M1": False, "M2": False, "M3": False,
        "I1": False, "I2": False}
    fig = P.plot_network(edges, nodes, STYLE, P.LAYER_NAMES, 0.1)
    fig.canvas.draw()
    ax = fig.axes[0]
    microbes = fig.findobj(lambda a: a.get_gid() == "network-label-0")
    assert microbes and all(t.get_fontstyle() == "italic" for t in microbes)
    # a metabolite label's box is crossed by no edge (sampled along each straight edge)
    segments = []
    y_of = {(r.layer, r.feature_id): r.y for r in nodes.itertuples(index=False)}
    for e in edges.itertuples(index=False):
        a = ax.transData.transform((e.layer_from, y_of[(e.layer_from, e.source)]))
        b = ax.transData.transform((e.layer_from + 1, y_of[(e.layer_from + 1, e.target)]))
        segments.append(np.linspace(a, b, 400))
    for text in fig.findobj(lambda a: a.get_gid() == "network-label-1"):
        box = text.get_window_extent()
        for seg in segments:
            inside = ((seg[:, 0] > box.x0 + 1) & (seg[:, 0] < box.x1 - 1) & (seg[:, 1] > box.y0 + 1)
                      & (seg[:, 1] < box.y1 - 1))
            assert not inside.any(), text.get_text()
    plt.close(fig)


def _triads(prop):
    triads = pd.DataFrame({
        "rank": [1], "microbe": ["s__Clostridium_scindens"], "metabolite": ["m0"], "immune": ["y0"],
        "rho_microbe_metabolite": [0.5], "rho_metabolite_immune": [0.6], "rho_microbe_immune": [0.4],
        "acme": [0.3], "acme_ci_low": [0.1], "acme_ci_high": [0.5], "prop_mediated": [prop],
        "acme_p": [0.01], "acme_q": [0.02]})
    rng = np.random.default_rng(0)
    data = pd.DataFrame({"rank": 1, "subject_id": [f"P{i}" for i in range(10)], "response": "responder",
                         **{f"{k}_change": rng.normal(size=10) for k in ("microbe", "metabolite", "immune")}})
    labels = [pd.Series({"s__Clostridium_scindens": "Clostridium scindens"}),
              pd.Series({"m0": "Deoxycholic acid"}), pd.Series({"y0": "Tregs (CD4+CD25+CD127lo)"})]
    return triads, data, labels


@pytest.mark.parametrize("prop, explained", [(1.9, True), (-0.4, True), (0.6, False)])
def test_triads_explain_a_proportion_mediated_outside_0_1(prop, explained):
    apply_style(STYLE)
    fig = P.plot_triads(*_triads(prop), ["CLR", "log2 intensity", "logit of proportion"], STYLE, 0.1)
    text = " ".join(t.get_text() for t in fig.texts).replace("\n", " ")
    assert ("opposite signs (inconsistent mediation)" in text) == explained
    assert (f"proportion mediated {P.number(prop)}*" in text) == explained
    heading = fig.findobj(lambda a: a.get_gid() == "triad-heading")
    styles = {t.get_text(): t.get_fontstyle() for t in heading}
    assert styles["Clostridium scindens"] == "italic"
    # axis labels: the name wrapped at word boundaries, the scale whole on its own line
    ylabels = [ax.get_ylabel() for ax in fig.axes]
    assert "\u0394 Tregs (CD4+CD25+CD127lo)\n(logit of proportion)" in ylabels
    plt.close(fig)


def test_immune_dynamics_axis_reads_percent():
    apply_style(STYLE)
    logit = lambda p: math.log(p / (1 - p))  # noqa: E731
    rng = np.random.default_rng(1)
    rows = []
    for i in range(12):
        for t in ("pre", "post"):
            rows.append({"subject_id": f"S{i}", "response": "responder" if i % 2 else "non_responder",
                         "feature_id": "Th17", "timepoint": t, "value": logit(rng.uniform(0.005, 0.1))})
    fig = P.plot_dynamics(pd.DataFrame(rows), STYLE, "pre", "post", "logit of proportion", title="t")
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert len(labels) >= 2 and all(label.endswith("%") for label in labels)
    for tick, label in zip(ax.get_yticks(), labels):
        assert tick == pytest.approx(logit(float(label[:-1]) / 100))
    assert ax.get_ylabel() == "% of parent (logit-spaced)"
    plt.close(fig)
