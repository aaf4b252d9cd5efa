"""Integration figures (one per rule, chosen by params.figure): immune dynamics, heatmap, network, MOFA+, triads."""

import sys

sys.path.insert(0, snakemake.scriptdir)

import pandas as pd

from gutaxis.plots import integration as plots
from gutaxis.runner import run
from gutaxis.plots.style import apply_style, save_figure
from gutaxis.io.tables import read_feature_table, read_sheet, read_tsv


def _labels(path) -> pd.Series:
    return read_tsv(path, dtype=str, keep_default_na=False).set_index("feature_id")["label"]


def _responders(smk):
    """The responder labels, None when the study has no response (no input then)."""
    return read_sheet(smk.input.responders) if smk.params.response else None


def _by_response(smk) -> str:
    return f" by response ({smk.params.response})" if smk.params.response else ""


def _scale(path) -> str:
    notes = read_sheet(path).set_index("key")["value"]
    return plots.scale_name(notes.get("kind", ""), notes.get("transform", ""))


def dynamics(smk):
    p = smk.params
    data = plots.dynamics_data(read_feature_table(smk.input.table), read_sheet(smk.input.samples),
                               _responders(smk), p.response, p.pre, p.post)
    scale = _scale(smk.input.notes)
    fig = plots.plot_dynamics(data, p.style, p.pre, p.post, scale, title=f"{p.title}: {p.pre} \u2192 {p.post}"
                              + _by_response(smk))
    return fig, data


def heatmap(smk):
    p = smk.params
    data = read_tsv(smk.input.heatmap, dtype={"feature_a": str, "feature_b": str, "label_a": str, "label_b": str})
    summary = read_tsv(smk.input.summary, keep_default_na=False).iloc[0]
    view = smk.wildcards.view
    if summary.get("method", "") == "partial_spearman":
        rho_label = f"partial Spearman \u03c1 | {summary['covariate_terms'].split('[')[0]}"
    else:
        rho_label = "Spearman \u03c1"
    n = summary.get("n", "")
    title = f"{p.modality_a} vs {p.modality_b}, {view} view (n = {n} subjects): strongest associations"
    fig = plots.plot_heatmap(data, p.style, title, p.mark_q, p.modality_a, p.modality_b, rho_label)
    return fig, data


def network(smk):
    p = smk.params
    labels = [_labels(path) for path in smk.input.features]
    dtypes = {"feature_a": str, "feature_b": str}
    edges, nodes = plots.network_data(read_tsv(smk.input.links_xm, dtype=dtypes),
                                      read_tsv(smk.input.links_my, dtype=dtypes), labels,
                                      p.network["max_q"], p.network["max_edges"])
    names = [f"{layer}\n({m})" for layer, m in zip(plots.LAYER_NAMES, p.modalities)]
    fig = plots.plot_network(edges, nodes, p.style, names, p.network["max_q"],
                             title=f"Within-subject change links with q < {p.network['max_q']:g}")
    source = edges.merge(nodes.rename(columns={"layer": "layer_from", "feature_id": "source", "y": "y_source"})
                         [["layer_from", "source", "y_source"]], on=["layer_from", "source"], how="left")
    return fig, source


def mofa_variance(smk):
    p = smk.params
    data = read_tsv(smk.input.variance_explained)
    fig = plots.plot_mofa_variance(data, read_tsv(smk.input.status, keep_default_na=False), p.style,
                                   title="MOFA+ variance explained")
    return fig, data


def mofa_scores(smk):
    p = smk.params
    data = plots.mofa_scores_data(read_tsv(smk.input.factors, dtype={"subject_id": str}),
                                  _responders(smk), p.response)
    title = ("MOFA+ factor scores by timepoint and response " + f"({p.response})" if p.response
             else "MOFA+ factor scores by timepoint")
    fig = plots.plot_mofa_scores(data, read_tsv(smk.input.factor_tests),
                                 read_tsv(smk.input.status, keep_default_na=False), p.style, p.pre, p.post,
                                 title=title)
    return fig, data


def triads(smk, top: int | None = None):
    """All top triads, or the first ``top`` of them (the main-figure panel)."""
    p = smk.params
    labels = [_labels(path) for path in smk.input.features]
    scales = [_scale(path) for path in smk.input.notes]
    data = plots.triads_plot_data(read_tsv(smk.input.data, dtype={"subject_id": str}),
                                  _responders(smk), p.response)
    if top is not None:
        data = data[data["rank"].isin(list(pd.unique(data["rank"]))[:top])].reset_index(drop=True)
    summary = read_tsv(smk.input.summary).iloc[0]
    fig = plots.plot_triads(read_tsv(smk.input.triads), data, labels, scales, p.style, p.fdr_level,
                            n_rep=int(summary["n_rep"]),
                            title="Top microbe \u2192 metabolite \u2192 immune triads (within-subject changes, "
                                  f"{p.post} \u2212 {p.pre})")
    return fig, data


FIGURES = {"dynamics": dynamics, "heatmap": heatmap, "network": network, "mofa_variance": mofa_variance,
           "mofa_scores": mofa_scores, "triads": triads}


def main(smk):
    apply_style(smk.params.style)
    fig, data = FIGURES[smk.params.figure](smk)
    save_figure(fig, smk.output.figures, smk.params.style, source_data=data)
    if smk.params.figure == "triads" and "panel" in smk.output.keys():
        # the main-figure panel: the two top triads
        fig, data = triads(smk, top=2)
        save_figure(fig, [smk.output.panel], smk.params.style, source_data=data)


run(snakemake, main)
