"""Figures of the responder models: ROC curves, feature stability, calibration, Kaplan-Meier."""

import sys

sys.path.insert(0, snakemake.scriptdir)

from gutaxis.plots.models import (calibration_data, km_data, plot_calibration, plot_km, plot_roc,
                                  plot_stability, roc_data, stability_data)
from gutaxis.runner import run
from gutaxis.plots.style import apply_style, save_figure
from gutaxis.io.tables import read_tsv

TEXT = {"feature_set": str, "model": str, "feature": str, "block": str, "annotation": str,
        "direction": str, "group": str, "best": str}


def main(smk):
    p = smk.params
    apply_style(p.style)
    if p.figure == "roc":
        data = roc_data(read_tsv(smk.input.roc, dtype=TEXT), p.set_order, p.model_order)
        performance = read_tsv(smk.input.performance, dtype=TEXT)
        fig = plot_roc(data, performance, p.style, p.conf_level)
        if "panel" in smk.output.keys():
            # the main-figure panel: the three feature sets with the best AUROC, in config order
            best = set(performance.groupby("feature_set")["auroc_mean"].max().nlargest(3).index)
            part = data[data["feature_set"].isin(best)].reset_index(drop=True)
            save_figure(plot_roc(part, performance, p.style, p.conf_level), [smk.output.panel], p.style,
                        source_data=part)
    elif p.figure == "stability":
        data = stability_data(read_tsv(smk.input.features, dtype=TEXT),
                              read_tsv(smk.input.performance, dtype=TEXT), p.top_n)
        fig = plot_stability(data, p.style)
    elif p.figure == "calibration":
        data = calibration_data(read_tsv(smk.input.calibration, dtype=TEXT), p.set_order, p.model_order)
        fig = plot_calibration(data, p.style, p.conf_level)
    elif p.figure == "km":
        data, top = km_data(read_tsv(smk.input.curves, dtype=TEXT), read_tsv(smk.input.survival, dtype=TEXT))
        fig = plot_km(data, top, p.style, p.conf_level)
    else:
        raise ValueError(f"unknown figure {p.figure!r}")
    save_figure(fig, smk.output.figures, p.style, source_data=data)


run(snakemake, main)
