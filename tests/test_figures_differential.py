"""Differential figures drawn from planted result tables: volcano labels (one per called point,
leader lines, no overlaps), italics of taxon names, the heatmap's stated colour cap and strip
heading, percent ticks of immune proportions."""

from __future__ import annotations

import math
import re

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from gutaxis.plots import differential as D  # noqa: E402
from gutaxis.plots.style import apply_style  # noqa: E402

STYLE = {"font_family": "DejaVu Sans", "font_size": 8, "title_size": 9, "width_single_mm": 89,
         "width_double_mm": 183, "formats": ["png"], "dpi": 100}
GENERA = ["Bacteroides", "Clostridium", "Dorea", "Roseburia", "Blautia", "Alistipes", "Eubacterium",
          "Prevotella", "Ruminococcus", "Coprococcus", "Faecalibacterium", "Veillonella"]
EPITHETS = ["alba", "brevis", "copri", "dentis", "elongata", "fragilis", "gallica", "hominis", "intestinalis",
            "jejuni", "kroppenstedtii", "longum"]


def _results(n_called=12, n_grey=300, seed=1):
    """A crowded panel: the called points in two tight clusters, as in real volcanoes."""
    rng = np.random.default_rng(seed)
    side = np.where(np.arange(n_called) % 2 == 0, -1.0, 1.0)
    effect = np.concatenate([side * (1.5 + 0.05 * rng.normal(size=n_called)), rng.normal(0, 0.5, n_grey)])
    p = np.concatenate([10 ** -(8 + 0.3 * rng.normal(size=n_called)), rng.uniform(0.05, 1, n_grey)])
    features = [f"s__{GENERA[i % 12]}_{EPITHETS[i % 12]}" for i in range(n_called)] + [f"s__Grey_g{i}" for i in range(n_grey)]
    q = np.where(np.arange(n_called + n_grey) < n_called, 1e-5, 0.5)
    return pd.DataFrame({"feature": features, "annotation": "", "method": "paired_t",
                         "term": "timepoint[post]", "effect": effect, "p": p, "q": q,
                         "effect_scale": "clr, bias-corrected"})


def _label_boxes(fig):
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    texts = fig.findobj(lambda a: a.get_gid() == D.LABEL_GID)
    return {t.get_text(): t.get_window_extent(renderer) for t in texts}


@pytest.mark.parametrize("n_called, n_labels", [(12, 8), (4, 8), (12, 12)])
def test_volcano_labels_every_called_point_up_to_the_limit_without_overlaps(n_called, n_labels):
    apply_style(STYLE)
    data = D.volcano_data(_results(n_called), alpha=0.1, n_labels=n_labels)
    fig = D.plot_volcano(data, STYLE, 0.1)
    boxes = _label_boxes(fig)
    labelled = data[data["labelled"]]
    # every called point up to the limit, most significant first, one label each
    assert len(labelled) == min(n_called, n_labels)
    assert set(boxes) == set(labelled["label"])
    assert list(labelled.sort_values("p")["p"]) == sorted(data.loc[data["direction"] != "none", "p"])[:len(labelled)]
    leaders = fig.findobj(lambda a: a.get_gid() == D.LEADER_GID)
    assert len(leaders) == len(labelled)
    ax = fig.axes[0]
    frame = ax.get_window_extent()
    names = list(boxes)
    for i, a in enumerate(names):
        assert frame.x0 <= boxes[a].x0 and boxes[a].x1 <= frame.x1 and frame.y0 <= boxes[a].y0 and boxes[a].y1 <= frame.y1
        for b in names[i + 1:]:
            assert not boxes[a].overlaps(boxes[b]), (a, b)
    # no label covers another point's marker
    xy = ax.transData.transform(data[["effect", "neg_log10_p"]].to_numpy(float))
    r = np.array([math.sqrt(D.MARKER_SIZES[d]) / 2 * fig.dpi / 72 for d in data["direction"]])
    for label, box in boxes.items():
        own = data.index[data["label"] == label][0]
        hit = ((xy[:, 0] + r > box.x0) & (xy[:, 0] - r < box.x1) & (xy[:, 1] + r > box.y0) & (xy[:, 1] - r < box.y1))
        hit[own] = False
        assert not hit.any(), label
    # each leader ends at its own point
    for line in leaders:
        point = np.asarray(line.xy, dtype=float)
        assert ((np.abs(data["effect"] - point[0]) < 1e-12) & (np.abs(data["neg_log10_p"] - point[1]) < 1e-12)).sum() >= 1
    plt.close(fig)


def test_volcano_species_labels_are_italic_in_the_svg(tmp_path):
    apply_style({**STYLE, "font_size": 8})
    data = D.volcano_data(_results(4), alpha=0.1, n_labels=4)
    assert data["taxon"].all()
    fig = D.plot_volcano(data, STYLE, 0.1)
    fig.savefig(tmp_path / "v.svg")
    svg = (tmp_path / "v.svg").read_text()
    italic = re.findall(r'<text style="font-style: italic[^"]*"[^>]*>([^<]*)</text>', svg)
    assert set(italic) == set(data.loc[data["labelled"], "label"])
    plt.close(fig)


def test_metabolite_labels_stay_roman():
    data = D.volcano_data(_results(4).assign(feature=lambda d: [f"FT{i:04d}" for i in range(len(d))],
                                             annotation="Butyric acid", effect_scale="log2"), 0.1, 4)
    assert not data["taxon"].any()


def _heatmap_tables(spread=1.0):
    rng = np.random.default_rng(3)
    feats = ["s__Escherichia_coli", "s__Bifidobacterium_longum", "FT0001"]
    results = pd.DataFrame({"feature": feats, "annotation": ["", "", "Butyric acid"], "method": "paired_t",
                            "term": "timepoint[post]", "q": [0.01, 0.02, 0.03], "effect": [1.0, -1.0, 0.5],
                            "effect_scale": ["clr", "clr", "log2"]})
    subjects = [f"S{i}" for i in range(50)]
    changes = pd.DataFrame({"subject_id": subjects, **{f: rng.normal(0, spread, 50) for f in feats}})
    changes.loc[0, "s__Escherichia_coli"] = 40.0  # one extreme cell beyond the cap
    pairs = pd.DataFrame({"subject_id": subjects, "cohort": "c", "response": "responder"})
    return results, changes, pairs


def test_heatmap_states_its_colour_cap_and_names_the_strip():
    apply_style(STYLE)
    data = D.heatmap_data(*_heatmap_tables(), alpha=0.1, method="paired_t", post="post", max_features=10)
    cap = float(data["colour_cap"].iloc[0])
    expected = float(f"{np.quantile(np.abs(data['change']), 0.98):.2g}")
    assert cap == expected
    np.testing.assert_allclose(data["change_shown"], data["change"].clip(-cap, cap))
    assert data.loc[data["change"] == 40.0, "change_shown"].item() == cap
    fig = D.plot_heatmap(data, STYLE, 0.1, "paired_t", scale_label="CLR")
    labels = " ".join(a.get_ylabel() for a in fig.axes)
    assert f"values beyond \u00b1{cap:g} shown at \u00b1{cap:g}" in labels
    assert any(a.get_xlabel().replace("\n", " ") == "Called by" for a in fig.axes)
    rows = fig.findobj(lambda a: a.get_gid() == "heatmap-row-label")
    styles = {t.get_text(): t.get_fontstyle() for t in rows}
    assert styles == {"E. coli": "italic", "B. longum": "italic", "Butyric acid": "normal"}
    plt.close(fig)


def test_paired_immune_axis_reads_percent():
    apply_style(STYLE)
    logit = lambda p: math.log(p / (1 - p))  # noqa: E731
    subjects = [f"S{i}" for i in range(20)]
    rng = np.random.default_rng(0)
    data = pd.DataFrame({"panel": 0, "feature": "Tregs", "label": "Tregs", "taxon": False, "effect": 0.1,
                         "ci_low": 0.0, "ci_high": 0.2, "q": 0.01, "subject_id": subjects, "cohort": "c",
                         "response": "responder",
                         "pre_value": [logit(p) for p in rng.uniform(0.02, 0.3, 20)],
                         "post_value": [logit(p) for p in rng.uniform(0.02, 0.3, 20)]})
    fig = D.plot_paired(data, STYLE, "paired_t", 0.1, scale_label="logit")
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels and all(label.endswith("%") for label in labels)
    for tick, label in zip(ax.get_yticks(), labels):
        assert tick == pytest.approx(logit(float(label[:-1]) / 100))
    assert "% of parent" in ax.get_ylabel()
    plt.close(fig)
