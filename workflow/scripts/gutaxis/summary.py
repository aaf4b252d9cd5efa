"""``results/summary.md``: the study's answers on one page, each line naming its table.

The workflow writes hundreds of tables; this page answers "what did the treatment do,
and who responded?" first: response rates and the PFS2 median with their intervals, the
number of features called after treatment per modality, and the best responder model,
then the samples kept and dropped, every contrast's top calls, diversity, the axis
triads and the models with their caveats. Pure functions of already-read tables
(:meth:`SummaryTables.read` reads them); a section whose tables the study does not have is left out.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from gutaxis.io.settings import with_overrides
from gutaxis.io.tables import decimal_text, read_tsv

TOP = 10


def _num(value, digits: int = 2) -> str:
    """A number at fixed precision, rounded as the figures round it; "NA" for missing."""
    text = decimal_text(value, digits)
    return "NA" if text is None else text


def _q(value) -> str:
    """q or p at two significant digits (scientific below 0.001)."""
    if decimal_text(value, 0) is None:
        return "NA"
    value = float(value)
    return f"{value:.1e}" if value < 0.001 else f"{value:.2g}"


def _pct(rate, low, high) -> str:
    return f"{100 * float(rate):.0f} % ({100 * float(low):.0f}–{100 * float(high):.0f} %)"


def response_lines(response: pd.DataFrame) -> list[str]:
    """ORR and DCR of the first criterion, overall, with the exact CI."""
    overall = response[(response["group_var"] == "overall")]
    if overall.empty:
        return []
    criterion = overall["criterion"].iloc[0]
    rows = overall[overall["criterion"] == criterion].set_index("endpoint")
    out = []
    for endpoint in ("ORR", "DCR"):
        if endpoint in rows.index:
            r = rows.loc[endpoint]
            out.append(f"{endpoint} ({str(criterion).upper()}) {_pct(r['rate'], r['ci_low'], r['ci_high'])}, "
                       f"{int(r['n_responders'])}/{int(r['n_denominator'])} "
                       f"[{r['ci_method']} CI; results/clinical/response.tsv]")
    return out


def survival_lines(survival: pd.DataFrame) -> list[str]:
    """Median of each endpoint, overall, with its CI."""
    rows = survival[(survival["group_var"] == "overall") & (survival["quantity"] == "median")]
    events = survival[(survival["group_var"] == "overall") & (survival["quantity"] == "n_events")]
    counts = survival[(survival["group_var"] == "overall") & (survival["quantity"] == "n")]
    out = []
    for _, r in rows.iterrows():
        n = counts.loc[counts["endpoint"] == r["endpoint"], "estimate"]
        e = events.loc[events["endpoint"] == r["endpoint"], "estimate"]
        out.append(f"{r['endpoint']} median {_num(r['estimate'], 1)} months "
                   f"(95 % CI {_num(r['ci_low'], 1)}–{_num(r['ci_high'], 1)}; "
                   f"{int(e.iloc[0]) if len(e) else '?'} events in {int(n.iloc[0]) if len(n) else '?'}) "
                   "[results/clinical/survival.tsv; figure results/figures/clinical/km.png]")
    return out


def called_counts(calls: dict) -> dict:
    """Modality -> number of features whose change is called, per contrast."""
    out = {}
    for (modality, contrast), table in calls.items():
        changed = table["change_direction"].fillna("") != "" if "change_direction" in table else []
        out[(modality, contrast)] = (int(np.sum(changed)), len(table))
    return out


def best_model_line(performance: pd.DataFrame) -> str | None:
    """The best feature set and estimator with its AUROC interval (performance.tsv ``best``)."""
    if performance is None or performance.empty:
        return None
    best = performance[performance["best"].astype(str).str.lower() == "true"]
    row = (best if len(best) else performance.sort_values("auroc_mean", ascending=False)).iloc[0]
    view = str(row.get("view", ""))
    validation = str(row.get("validation", "stratified"))
    if validation == "stratified" or validation == "nan":
        text = (f"AUROC {_num(row['auroc_mean'])} (repeats {_num(row['auroc_low'])}–"
                f"{_num(row['auroc_high'])}; DeLong {_num(row['auroc_delong_low'])}–"
                f"{_num(row['auroc_delong_high'])})")
    else:
        text = (f"held-out AUROC {_num(row['auroc_pooled'])} (DeLong {_num(row['auroc_delong_low'])}–"
                f"{_num(row['auroc_delong_high'])}; {validation})")
    p = row.get("perm_p_value", np.nan)
    perm = f", permutation p {_q(p)}" if pd.notna(p) else ""
    return (f"Best responder model: {row['feature_set']} / {row['model']} ({view}), {text}{perm}, "
            f"n = {int(row['n_subjects'])} [results/models/performance.tsv; figure "
            "results/figures/models/roc.png]")


def headline(study: pd.DataFrame, response, survival, calls: dict, performance,
             alpha: float = 0.1) -> list[str]:
    """The first screen: the answers."""
    items = study.set_index("item")["value"]
    lines = [f"**Study type:** {items.get('study_type', '')} — {items.get('description', '')} "
             "[results/study.tsv]", ""]
    if response is not None:
        lines += [f"- {line}" for line in response_lines(response)]
    if survival is not None:
        lines += [f"- {line}" for line in survival_lines(survival) if line.startswith("PFS2")]
    for (modality, contrast), (n_changed, n_rows) in called_counts(calls).items():
        lines.append(f"- {modality}, {contrast}: **{n_changed}** features changed (q < {alpha:g}); "
                     f"{n_rows} called by any question [results/differential/{modality}/{contrast}.calls.tsv]")
    best = best_model_line(performance)
    if best:
        lines.append(f"- {best}")
    return lines


def samples_section(samples: pd.DataFrame) -> list[str]:
    """Samples kept and dropped per modality, with the reasons."""
    lines = ["## Samples", ""]
    for modality, part in samples.groupby("modality", sort=True):
        kept = int((part["status"] == "kept").sum())
        dropped = part[part["status"] != "kept"]
        lines.append(f"- {modality}: {kept} samples analysed, {len(dropped)} not"
                     + (": " + "; ".join(f"{n} {reason}" for reason, n in
                                         dropped["reason"].value_counts().items()) if len(dropped) else "")
                     + " [results/qc/samples.tsv]")
    return lines + [""]


def calls_section(calls: dict) -> list[str]:
    """Per modality and contrast: the called features, top 10 by q."""
    lines = ["## Features called", ""]
    for (modality, contrast), table in calls.items():
        lines.append(f"### {modality} — {contrast} [results/differential/{modality}/{contrast}.calls.tsv]")
        lines.append("")
        if table.empty:
            lines += ["Nothing called.", ""]
            continue
        scale = str(table["effect_scale"].dropna().iloc[0]) if table["effect_scale"].notna().any() else ""
        if scale:
            lines += [f"Effects: {scale}.", ""]
        lines += ["| feature | called | effect (95 % CI) | q | methods agreeing | prevalence |",
                  "|---|---|---|---|---|---|"]
        for _, row in table.head(TOP).iterrows():
            question = str(row["called"]).split("; ")[0]
            prefix = {"change": "change", "by_response": "by_response",
                      "at_baseline": "at_baseline"}.get(question)
            if prefix is None:
                effect, q, agree = "", "", ""
            else:
                effect = (f"{_num(row[f'{prefix}_effect'])} ({_num(row[f'{prefix}_ci_low'])}, "
                          f"{_num(row[f'{prefix}_ci_high'])})")
                q = _q(row[f"{prefix}_q"])
                agree = str(row.get(f"{prefix}_methods_agreeing", "") or "lmm")
            name = row["annotation"] if isinstance(row["annotation"], str) and row["annotation"] else row["feature"]
            prevalence = str(row["prevalence_direction"]) if pd.notna(row["prevalence_direction"]) else ""
            lines.append(f"| {name} | {row['called']} | {effect} | {q} | {agree} | {prevalence} |")
        if len(table) > TOP:
            lines.append(f"| … {len(table) - TOP} more in the table | | | | | |")
        lines.append("")
    return lines


def diversity_section(alpha_tests: dict, permanova: dict) -> list[str]:
    """Alpha diversity changes and the PERMANOVA of the primary metric."""
    if not alpha_tests and not permanova:
        return []
    lines = ["## Diversity", ""]
    for modality, table in alpha_tests.items():
        overall = table[table["group_by"] == "overall"] if "group_by" in table else table
        for _, row in overall.iterrows():
            lines.append(f"- {modality} {row['metric']}: change {_num(row['hl_estimate'], 3)} "
                         f"({_num(row['ci_low'], 3)}, {_num(row['ci_high'], 3)}), p {_q(row['p_value'])} "
                         f"[results/diversity/{modality}/alpha_tests.tsv]")
    for (modality, metric), table in permanova.items():
        terms = table[table["term"].isin(["timepoint", "response"]) & table["r2"].notna()]
        for _, row in terms.iterrows():
            lines.append(f"- {modality} {metric} PERMANOVA, {row['test']}: R² {_num(row['r2'], 3)}, "
                         f"p {_q(row['p_value'])} [results/diversity/{modality}/permanova/{metric}.tsv]")
    return lines + [""]


def triads_section(triads: pd.DataFrame | None, alpha: float) -> list[str]:
    """Microbe -> metabolite -> immune triads with their mediated effect."""
    if triads is None:
        return []
    lines = ["## Microbe → metabolite → immune triads", ""]
    called = triads[triads["acme_q"] < alpha] if "acme_q" in triads else triads.iloc[:0]
    lines.append(f"{len(called)} of {len(triads)} triads with a mediated effect at q < {alpha:g} "
                 "[results/integration/triads.tsv; figure results/figures/integration/triads.png]")
    for _, row in called.head(TOP).iterrows():
        lines.append(f"- {row['microbe']} → {row['metabolite']} → {row['immune']}: mediated effect "
                     f"{_num(row['acme'])} ({_num(row['acme_ci_low'])}, {_num(row['acme_ci_high'])}), "
                     f"q {_q(row['acme_q'])}")
    return lines + [""]


def models_section(performance: pd.DataFrame | None) -> list[str]:
    """Every feature set's AUROC, on-treatment sets flagged, with the caveat."""
    if performance is None or performance.empty:
        return []
    lines = ["## Responder models", "",
             "Exploratory: with a few dozen patients the intervals are wide and the selected features "
             "are hypotheses [results/models/README.txt].", "",
             "| feature set | estimator | view | AUROC | interval | permutation p |", "|---|---|---|---|---|---|"]
    for _, row in performance.iterrows():
        validation = str(row.get("validation", "stratified"))
        auroc = row["auroc_mean"] if validation in ("stratified", "nan") else row["auroc_pooled"]
        lines.append(f"| {row['feature_set']} | {row['model']} | {row.get('view', '')} | {_num(auroc)} | "
                     f"{_num(row['auroc_delong_low'])}–{_num(row['auroc_delong_high'])} | "
                     f"{_q(row.get('perm_p_value', np.nan))} |")
    return lines + ["", "[results/models/performance.tsv]", ""]


@dataclass(frozen=True)
class SummaryTables:
    """The result tables the summary quotes; a table the study does not have is None (or empty).

    Attributes
    ----------
    response : DataFrame, optional
        ``results/clinical/response.tsv``.
    survival : DataFrame, optional
        ``results/clinical/survival.tsv``.
    calls : dict
        (modality, contrast) -> its differential calls table.
    alpha_tests : dict
        Modality -> ``results/diversity/<modality>/alpha_tests.tsv``.
    permanova : dict
        (modality, metric) -> its PERMANOVA table.
    triads : DataFrame, optional
        ``results/integration/triads.tsv``.
    performance : DataFrame, optional
        The responder models' performance table.
    alpha : float
        Significance level of the triads (``integration`` section).
    """

    response: pd.DataFrame | None = None
    survival: pd.DataFrame | None = None
    calls: dict = field(default_factory=dict)
    alpha_tests: dict = field(default_factory=dict)
    permanova: dict = field(default_factory=dict)
    triads: pd.DataFrame | None = None
    performance: pd.DataFrame | None = None
    alpha: float = 0.1

    @classmethod
    def read(cls, inputs, params) -> SummaryTables:
        """The tables of the summary rule.

        Parameters
        ----------
        inputs : mapping
            ``response, survival, triads, performance``: lists of zero or one path;
            ``calls, alpha_tests, permanova``: paths in the order of ``params``'
            ``calls``, ``alpha_modalities`` and ``permanova_keys``.
        params : mapping
            Those keys and ``alpha``.
        """
        def one(paths):
            return read_tsv(paths[0]) if paths else None

        return cls(response=one(inputs["response"]), survival=one(inputs["survival"]),
                   calls={tuple(key): read_tsv(path) for key, path in zip(params["calls"], inputs["calls"])},
                   alpha_tests={m: read_tsv(path) for m, path in zip(params["alpha_modalities"],
                                                                     inputs["alpha_tests"])},
                   permanova={tuple(key): read_tsv(path) for key, path in zip(params["permanova_keys"],
                                                                              inputs["permanova"])},
                   triads=one(inputs["triads"]), performance=one(inputs["performance"]), alpha=params["alpha"])


def summary_markdown(title: str, study: pd.DataFrame, samples: pd.DataFrame, tables: SummaryTables | None = None,
                     **overrides) -> str:
    """The whole page (markdown).

    Parameters
    ----------
    title : str
        The study's title.
    study : DataFrame
        ``results/study.tsv`` (``item, value``).
    samples : DataFrame
        ``results/qc/samples.tsv``.
    tables : SummaryTables, optional
        Default: none (the sections that need them are left out).
    **overrides
        Fields of :class:`SummaryTables` replaced for this call.

    Returns
    -------
    str
    """
    t = with_overrides(tables, SummaryTables, overrides)
    lines = [f"# {title}: summary", ""]
    lines += headline(study, t.response, t.survival, t.calls, t.performance, t.alpha)
    lines += ["", "---", ""]
    lines += samples_section(samples)
    if t.response is not None or t.survival is not None:
        lines += ["## Endpoints", ""]
        lines += [f"- {line}" for line in (response_lines(t.response) if t.response is not None else [])]
        lines += [f"- {line}" for line in (survival_lines(t.survival) if t.survival is not None else [])]
        lines.append("")
    lines += calls_section(t.calls)
    lines += diversity_section(t.alpha_tests, t.permanova)
    lines += triads_section(t.triads, t.alpha)
    lines += models_section(t.performance)
    skipped = study[study["item"] == "skipped"]["value"]
    if len(skipped):
        lines += ["## Not run for this study", ""] + [f"- {s}" for s in skipped] + [""]
    return "\n".join(lines).rstrip() + "\n"


#: the report's own layout puts the rule graph beside the text on the first screen and
#: centres the page vertically; this moves the graph below the text and starts the page at
#: its top (the report renders the landing page's raw HTML)
_REPORT_STYLE = (".. raw:: html\n\n   <style>div:has(> #rulegraph){flex-direction:column}"
                 " div:has(> div > #rulegraph){align-items:flex-start}"
                 " .prose{max-width:60rem}</style>\n")


def landing_rst(markdown: str, description: str) -> str:
    """The report's landing page: the summary's first screen (the answers, as reStructuredText),
    then the study description (``workflow/report/workflow.rst``, still a Jinja template the
    report fills in). The rule graph is moved below the text."""
    head = markdown.split("\n---\n")[0].splitlines()
    title = head[0].lstrip("# ").strip() if head and head[0].startswith("#") else "Summary"
    body = [line for line in head[1:]]
    lines = [_REPORT_STYLE, title, "=" * len(title), "", *body, "",
             "The whole summary, with every contrast's top features, is the **Summary** item of "
             "this report (results/summary.md).", "", description]
    return "\n".join(lines)
