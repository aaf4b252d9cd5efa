"""gutaxis.plots.main: panel placement at native size and the concatenated source data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from gutaxis.plots.main import compose_panels, panel_layout, panel_source_data


def test_panels_that_fit_keep_their_size_and_stack_in_a_cell():
    # cell 1: 3x2 over 3x1; cell 2: 3.5x4 -> fits in 7.2 in with 0.1 gaps
    rects, width, height = panel_layout([[[(3, 2), (3, 1)], [(3.5, 4)]]], width=7.2, gap=0.1)
    assert rects == [(0, 0, 3, 2), (0, 2.1, 3, 1), (3.1, 0, 3.5, 4)]
    assert width == pytest.approx(6.6)
    assert height == pytest.approx(4.0)


def test_a_row_too_wide_is_shrunk_as_a_whole_never_enlarged():
    rects, width, height = panel_layout([[[(4, 2)], [(4, 4)]], [[(1, 1)]]], width=6.0, gap=0.0)
    scale = 6.0 / 8.0
    assert rects[0] == pytest.approx((0, 0, 4 * scale, 2 * scale))
    assert rects[1] == pytest.approx((4 * scale, 0, 4 * scale, 4 * scale))
    # second row starts below the tallest cell of the first and keeps its 1 in size
    assert rects[2] == pytest.approx((0, 4 * scale, 1, 1))
    assert width == pytest.approx(6.0)
    assert height == pytest.approx(4 * scale + 1)


def test_source_data_tags_every_row_with_its_panel():
    a = pd.DataFrame({"subject_id": ["S1", "S2"], "change": ["-0.5", "1"]})
    b = pd.DataFrame({"feature_id": ["f1"], "q": ["0.01"]})
    out = panel_source_data([("A", "clinical/waterfall", a), ("B", "differential/x/volcano", b)])
    assert list(out.columns[:2]) == ["panel", "source_figure"]
    assert out["panel"].tolist() == ["A", "A", "B"]
    assert out.loc[out["panel"] == "A", "change"].tolist() == ["-0.5", "1"]
    assert out.loc[2, "q"] == "0.01" and pd.isna(out.loc[2, "change"])


def test_compose_panels_letters_every_panel_in_reading_order():
    style = {"width_double_mm": 183, "width_single_mm": 89, "dpi": 100, "title_size": 9}
    img = np.ones((100, 200, 3))
    fig = compose_panels([[[img, img], [img]], [[img]]], style)
    letters = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert letters == ["A", "B", "C", "D"]
    # images at 100 dpi are 2 x 1 in; two cells side by side -> 4.08 in wide (0.08 in gap)
    assert fig.get_size_inches()[0] == pytest.approx(4.08)


def test_source_data_keeps_a_panels_own_panel_column():
    facets = pd.DataFrame({"panel": ["1", "2"], "feature": ["f1", "f2"]})
    out = panel_source_data([("C", "main/panels/differential/x/paired", facets)])
    assert list(out.columns) == ["panel", "source_figure", "source_panel", "feature"]
    assert out["panel"].tolist() == ["C", "C"] and out["source_panel"].tolist() == ["1", "2"]


def test_figure2_pcoa_is_the_primary_beta_metric(tmp_path):
    """The demo lists braycurtis first but pre-specifies robust_aitchison: figure 2 shows the latter."""
    import re

    import yaml
    from conftest import REPO, make_demo_workdir, run_snakemake

    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    assert config["diversity"]["beta_metrics"][0] != config["diversity"]["primary_metric"]
    workdir = make_demo_workdir(tmp_path / "demo")
    result = run_snakemake(workdir, "-n", "--cores", "1", "results/figures/main/figure2.png", timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    job = re.search(r"rule plot_main_figure:\n(.*?)\n\n", result.stdout + result.stderr, re.S).group(1)
    inputs = re.search(r"input: (.*)", job).group(1)
    pcoa = re.findall(r"pcoa_(\w+)\.png", inputs)
    assert pcoa == [config["diversity"]["primary_metric"]]
