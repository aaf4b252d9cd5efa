"""What a study's design allows: its type, response, contrasts and endpoints, and what is skipped.

The workflow is planned from a :class:`StudyPlan` built when the workflow is parsed
(``snakemake -n``), from the validated config and the checked sheets. Each analysis
that the study cannot have (no tumour response in a dietary intervention, no pairs in a
baseline-only cohort, no survival columns) is left out of the DAG, and the plan says
which and why, one line each; the log, ``results/study.tsv`` and the report show them.

Study types (``design.study_type``):

* ``oncology`` -- paired or longitudinal samples and a tumour response (RECIST 1.1 /
  iRECIST best response, or a responder-label column);
* ``intervention`` -- paired or longitudinal samples, no tumour response;
* ``baseline_only`` -- one sample per subject before treatment, no contrasts;
  responders are compared at baseline and the responder models run;
* ``crossover`` -- every subject receives each intervention in its own period; one
  contrast per intervention, the sample sheet's ``period`` column is a covariate;
* ``cohort`` -- one or many samples per subject and no treatment contrast (an
  observational or longitudinal cohort such as HMP2): the differential module fits the
  models of ``differential.models`` (a formula over sheet columns, random intercepts per
  subject, site ...); the paired, diversity, integration and responder analyses, which
  assume pairs or one sample per subject, are skipped.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from gutaxis.clinical.checks import check_subjects
from gutaxis.io.errors import Problem

STUDY_TYPES: dict[str, str] = {
    "oncology": "oncology trial with paired samples and tumour response",
    "intervention": "intervention or longitudinal study without tumour response",
    "baseline_only": "baseline-only cohort (one sample per subject, no paired contrasts)",
    "crossover": "crossover study (one contrast per intervention, period as a covariate)",
    "cohort": "cohort without a treatment contrast (the configured formula models only)",
}
#: study types whose samples are paired within subject (they need contrasts)
PAIRED_TYPES = ("oncology", "intervention", "crossover")
#: study types that have a response (responders vs non-responders)
RESPONSE_TYPES = ("oncology", "baseline_only")
#: best-response column of each criterion
RESPONSE_COLUMNS = {"recist": "best_response", "irecist": "best_response_irecist"}
#: the sample-sheet column of a crossover study's periods
PERIOD_COLUMN = "period"


@dataclass(frozen=True)
class StudyPlan:
    """The analyses a study can have.

    :func:`plan_study` builds it once when the workflow is parsed; the rule files
    read it to decide which rules and outputs exist.

    Attributes
    ----------
    study_type : str
        One of :data:`STUDY_TYPES`.
    response : str or None
        The responder definition the omics modules use (``response.primary``, or the
        first definition), None when the study has no response analyses.
    definitions : dict
        The responder definitions that are computed (empty without response).
    contrasts : list of dict
        The paired contrasts (empty for baseline-only studies).
    survival_endpoints : dict
        Time-to-event endpoints whose columns the subjects table records.
    period : str or None
        The sample-sheet column of the crossover periods, None otherwise.
    patient_plots : frozenset of str
        The patient-level clinical figures the subjects table supports:
        ``waterfall`` (best target-lesion change and a best-response column),
        ``swimmer`` (time on treatment).
    adverse_events : bool
        Whether an adverse-event table is configured.
    skipped : list of (str, str)
        ``(analysis, reason)`` of every analysis left out, in a fixed order.
    """

    study_type: str
    response: str | None
    definitions: dict
    contrasts: list
    survival_endpoints: dict
    period: str | None = None
    patient_plots: frozenset = frozenset()
    adverse_events: bool = False
    skipped: list = field(default_factory=list)

    @property
    def has_response(self) -> bool:
        return self.response is not None

    @property
    def paired(self) -> bool:
        return bool(self.contrasts)

    @property
    def recist_definitions(self) -> dict:
        """The definitions read from best overall response (ORR/DCR tables need these)."""
        return {n: d for n, d in self.definitions.items() if "criterion" in d}

    def summary(self) -> str:
        """One line naming the study type and what is skipped."""
        head = f"study type {self.study_type} ({STUDY_TYPES[self.study_type]})"
        if not self.skipped:
            return head + ": every analysis runs"
        return head + "; skipped: " + "; ".join(f"{a} ({r})" for a, r in self.skipped)

    def table(self) -> pd.DataFrame:
        """``item, value`` rows of results/study.tsv: the type, the response, the
        contrasts, the endpoints, and one ``skipped`` row per analysis left out."""
        rows = [("study_type", self.study_type), ("description", STUDY_TYPES[self.study_type]),
                ("response", self.response or ""),
                ("contrasts", ", ".join(c["name"] for c in self.contrasts)),
                ("survival_endpoints", ", ".join(self.survival_endpoints)),
                ("period_column", self.period or "")]
        rows += [("skipped", f"{analysis}: {reason}") for analysis, reason in self.skipped]
        return pd.DataFrame(rows, columns=["item", "value"])


def _recorded(subjects: pd.DataFrame, column: str) -> bool:
    """Present in the subjects table and not blank everywhere."""
    return column in subjects.columns and bool((subjects[column].astype(str).str.strip() != "").any())


def definition_column(definition: dict) -> str:
    """The subjects-table column a responder definition reads."""
    if "column" in definition:
        return definition["column"]
    return RESPONSE_COLUMNS[str(definition["criterion"]).lower()]


def _response_plan(config: dict, subjects: pd.DataFrame, study_type: str, label: str,
                   skipped: list, problems: list) -> tuple[str | None, dict]:
    response = config["response"]
    definitions = dict(response["definitions"])
    if study_type not in RESPONSE_TYPES:
        skipped.append(("response analyses", f"a study of type {study_type} has no tumour response"))
        return None, {}
    if not definitions:
        skipped.append(("response analyses", "response.definitions is empty"))
        return None, {}
    primary = response["primary"] or next(iter(definitions))
    if primary not in definitions:
        problems.append(Problem("config", "key 'response.primary'",
                                f"'{primary}' is not one of response.definitions",
                                f"use one of {', '.join(definitions)}"))
        return None, {}
    usable = {}
    for name, definition in definitions.items():
        column = definition_column(definition)
        if _recorded(subjects, column):
            usable[name] = definition
            continue
        if name == primary:
            problems.append(Problem(
                label, f"column '{column}'",
                f"the primary responder definition '{name}' reads this column, which is absent or empty",
                f"add the column to the subjects table, define response from a column you have "
                f"(response.definitions.{name}: {{column: <column>, responder: [..], non_responder: [..]}}), "
                "or set design.study_type to intervention (no response analyses)"))
        else:
            skipped.append((f"responder definition {name}", f"column '{column}' is not in {label}"))
    return primary, usable


def plan_study(config: dict, subjects: pd.DataFrame, samples: pd.DataFrame) -> tuple[StudyPlan, list[Problem]]:
    """Decide what the study can have from its config and sheets.

    Parameters
    ----------
    config : dict
        The validated config, defaults filled.
    subjects, samples : DataFrame
        The checked sheets (every cell text).

    Returns
    -------
    plan : StudyPlan
    problems : list of Problem
        What contradicts the study type (contrasts in a baseline-only study, none in a
        paired one, a crossover without periods ...) and every bad value of the clinical
        columns (see :func:`clinical_problems`); empty when the plan is sound.
    """
    design = config["design"]
    study_type = design["study_type"]
    label = config["subjects"]
    samples_label = config["samples"]
    skipped: list = []
    problems: list[Problem] = []
    contrasts = list(design["contrasts"])

    if study_type == "baseline_only" and contrasts:
        problems.append(Problem("config", "key 'design.contrasts'",
                                "a baseline-only study has no paired contrasts",
                                "remove design.contrasts, or set design.study_type to oncology, "
                                "intervention or crossover"))
    if study_type in PAIRED_TYPES and not contrasts:
        problems.append(Problem("config", "key 'design.contrasts'",
                                f"a study of type {study_type} needs at least one paired contrast",
                                "add a contrast {name: ..., pre: <timepoint>, post: <timepoint>}, or set "
                                "design.study_type to baseline_only"))
    if study_type == "baseline_only":
        skipped.append(("paired analyses (within-subject changes, shifts, change views)",
                        "a baseline-only study has no contrasts"))
    if study_type == "cohort":
        problems += cohort_problems(config, contrasts)
        skipped.append(("paired, diversity, integration and responder analyses",
                        "a cohort study runs the formula models of differential.models only"))
    elif config["design"]["duplicates"] == "keep":
        problems.append(Problem("config", "key 'design.duplicates'",
                                f"'keep' leaves several samples per subject and timepoint, which the "
                                f"paired analyses of a {study_type} study cannot pair",
                                "use last, first or error, or set design.study_type to cohort"))

    problems += formula_model_problems(config["differential"]["models"])
    problems += random_effect_problems(config["differential"])
    response, definitions = _response_plan(config, subjects, study_type, label, skipped, problems)

    endpoints = {}
    if not config["clinical"]["survival_endpoints"]:
        skipped.append(("survival analyses", "clinical.survival_endpoints is empty"))
    for name, columns in config["clinical"]["survival_endpoints"].items():
        absent = [c for c in (columns["time"], columns["event"]) if not _recorded(subjects, c)]
        if absent:
            skipped.append((f"survival endpoint {name}",
                            f"column{'s' if len(absent) > 1 else ''} {', '.join(absent)} "
                            f"not in {label}"))
        else:
            endpoints[name] = columns
    adverse_events = bool(config.get("adverse_events"))
    if not adverse_events:
        skipped.append(("adverse events", "no adverse-event table (key adverse_events is empty)"))
    recist = [d for d in definitions.values() if "criterion" in d]
    if response is not None and not recist:
        skipped.append(("ORR and DCR", "no responder definition reads best overall response (RECIST/iRECIST)"))
    plots = set()
    for plot, column in (("waterfall", "target_lesion_change_pct"), ("swimmer", "treatment_months")):
        if recist and _recorded(subjects, column):
            plots.add(plot)
        elif study_type == "oncology":
            why = f"column {column} not in {label}" if recist else "no best-response column"
            skipped.append((f"{plot} plot", why))

    skipped += _module_skips(config, subjects, study_type, response, contrasts, label)
    if response is not None:
        skipped += _landmark_skips(config, samples, subjects, contrasts)

    period = None
    if study_type == "crossover":
        period = PERIOD_COLUMN
        problems += crossover_problems(samples, contrasts, samples_label)
        if not problems:
            problems += aliased_period_problems(config, subjects, samples, contrasts)
    plan = StudyPlan(study_type, response, definitions, contrasts, endpoints, period, frozenset(plots),
                     adverse_events, skipped)
    return plan, problems + clinical_problems(plan, subjects, label)


def _landmark_skips(config: dict, samples: pd.DataFrame, subjects: pd.DataFrame,
                    contrasts: list) -> list:
    """On-treatment model feature sets that cannot have a landmark (no sample times)."""
    from gutaxis.models.landmark import has_sample_times
    from gutaxis.models.config import is_on_treatment, usable_sets

    if has_sample_times(samples, subjects):
        return []
    baseline = config["design"]["baseline"]
    return [(f"landmark of model feature set {name}",
             "no sample times (a days_from_start column in the sample sheet, or collection_date "
             "and the subjects table's treatment_start): its on-treatment features predict from "
             "treatment start, open to guarantee-time bias, and its outputs say so")
            for name, spec in usable_sets(config, bool(contrasts)).items()
            if is_on_treatment(spec, baseline)]


def random_effect_problems(differential: dict) -> list[Problem]:
    """The contrasts' random intercepts: subject first; between-within df only with one."""
    groups = list(differential["random_effects"])
    if groups[0] != "subject_id":
        return [Problem("config", "key 'differential.random_effects'",
                        f"the first grouping column is '{groups[0]}', not subject_id",
                        "list subject_id first, then site, batch ...")]
    if len(groups) > 1 and differential["mixed_df"] == "between_within":
        return [Problem("config", "key 'differential.mixed_df'",
                        "between-within degrees of freedom have no definition with several "
                        "random intercepts", "use satterthwaite (as lmerTest) or z")]
    return []


def formula_model_problems(models: list) -> list[Problem]:
    """The formula models' config, checked when the workflow is planned (none: no import)."""
    if not models:
        return []
    # the statistics stack is imported only when a study has formula models
    from gutaxis.differential.models import config_problems

    return config_problems(models)


def cohort_problems(config: dict, contrasts: list) -> list[Problem]:
    """A cohort study has no contrasts and at least one formula model."""
    problems = []
    if contrasts:
        problems.append(Problem("config", "key 'design.contrasts'",
                                "a cohort study has no paired contrasts",
                                "remove design.contrasts, or set design.study_type to intervention"))
    if not config["differential"]["models"]:
        problems.append(Problem("config", "key 'differential.models'",
                                "a cohort study needs at least one formula model",
                                "add a model {name: ..., fixed: <formula>, random: [subject_id]}"))
    return problems


def _module_skips(config: dict, subjects: pd.DataFrame, study_type: str, response: str | None,
                  contrasts: list, label: str) -> list:
    """What the integration and models modules leave out for this study, (analysis, reason)."""
    from gutaxis.models.config import unavailable_sets

    skips = []
    if study_type == "baseline_only":
        skips.append(("integration MOFA+ factors and axis triads",
                      "they need pre and post samples; a baseline-only study has the baseline view only"))
    if response is None:
        if study_type == "baseline_only":
            skips.append(("differential testing", "a baseline-only study without responder labels "
                                                  "has neither contrasts nor a responder comparison"))
        skips.append(("responder models", "the study has no responder labels"))
        return skips
    for name, reason in unavailable_sets(config, bool(contrasts)).items():
        skips.append((f"model feature set {name}", reason))
    survival = config["models"]["survival"]
    absent = [c for c in (survival["time"], survival["event"]) if not _recorded(subjects, c)]
    if absent:
        skips.append(("biomarker survival models (models.survival)",
                      f"column{'s' if len(absent) > 1 else ''} {', '.join(absent)} not in {label}"))
    return skips


def clinical_problems(plan: StudyPlan, subjects: pd.DataFrame, label: str) -> list[Problem]:
    """The subjects table's clinical columns, checked when the workflow is planned so a
    bad value is reported by the dry run: the best-response and survival columns the
    study uses, and every other clinical column it records."""
    criteria = sorted({str(d["criterion"]).lower() for d in plan.recist_definitions.values()})
    endpoints = {name: (e["time"], e["event"]) for name, e in plan.survival_endpoints.items()}
    return check_subjects(subjects, label, criteria=criteria, endpoints=endpoints, check_recorded=True).problems


def crossover_problems(samples: pd.DataFrame, contrasts: list, label: str) -> list[Problem]:
    """A crossover needs a period on every biological sample, and each contrast's pre
    and post sample of a subject in the same period."""
    biological = samples[samples["subject_id"].astype(str) != ""]
    if PERIOD_COLUMN not in samples.columns:
        return [Problem(label, f"column '{PERIOD_COLUMN}'",
                        "a crossover study needs the period of every sample",
                        f"add a column '{PERIOD_COLUMN}' (1, 2, ...) to the sample sheet")]
    empty = biological[biological[PERIOD_COLUMN].astype(str) == ""]
    if len(empty):
        ids = ", ".join(empty["sample_id"].head(8))
        return [Problem(label, f"column '{PERIOD_COLUMN}', samples {ids}" + (
            f" and {len(empty) - 8} more" if len(empty) > 8 else ""),
            "the period is empty", "give the period (1, 2, ...) of every biological sample")]
    problems = []
    # one timepoint label per intervention: a label shared by both periods would let the
    # duplicate rule pair a pre sample of one period with a post sample of the other
    periods = biological.groupby(["subject_id", "timepoint", "sample_type"])[PERIOD_COLUMN].nunique()
    shared = periods[periods > 1]
    if len(shared):
        shown = ", ".join(f"{s} at {t}" for s, t, _ in shared.index[:5])
        labels = sorted({t for _, t, _ in shared.index})
        problems.append(Problem(
            label, f"columns 'timepoint' and '{PERIOD_COLUMN}', subjects {shown}"
            + (f" and {len(shared) - 5} more" if len(shared) > 5 else ""),
            f"timepoint(s) {', '.join(labels)} hold samples of more than one period",
            "label the timepoints by intervention (e.g. yogurt_pre, yogurt_post, oats_pre, oats_post) so "
            "each contrast compares the pre and post sample of one period"))
        return problems
    for contrast in contrasts:
        sides = []
        for side in ("pre", "post"):
            rows = biological[biological["timepoint"] == contrast[side]]
            sides.append(rows.groupby("subject_id")[PERIOD_COLUMN].agg(lambda s: ",".join(sorted(set(s)))))
        both = pd.concat(sides, axis=1, keys=["pre", "post"], join="inner")
        differ = both[both["pre"] != both["post"]]
        if len(differ):
            ids = ", ".join(differ.index[:8])
            problems.append(Problem(
                label, f"column '{PERIOD_COLUMN}', subjects {ids}",
                f"the {contrast['pre']} and {contrast['post']} samples of contrast '{contrast['name']}' "
                "are in different periods",
                "a contrast compares the pre and post sample of one intervention period; check the "
                "timepoint and period of these samples"))
    return problems


def aliased_period_problems(config: dict, subjects: pd.DataFrame, samples: pd.DataFrame,
                            contrasts: list) -> list[Problem]:
    """A covariate of the differential mixed models that the period determines.

    Within one contrast of a crossover, each subject contributes one period; when the
    covariate is the randomised sequence (every subject of a cohort takes the
    intervention in the same period), period and covariate are the same column and no
    mixed model can be fitted. Said before any job runs, with the two ways out.
    """
    section = config.get("differential", {})
    if not section.get("period_covariate", True):
        return []
    covariates = [c for c in section.get("covariates", []) if c in subjects.columns]
    biological = samples[samples["subject_id"].astype(str) != ""]
    problems = []
    for contrast in contrasts:
        rows = biological[biological["timepoint"].isin([contrast["pre"], contrast["post"]])]
        if rows.empty:
            continue
        frame = rows[["subject_id", PERIOD_COLUMN]].merge(subjects, on="subject_id", how="left")
        for covariate in covariates:
            if frame[PERIOD_COLUMN].nunique() < 2:
                break
            per_level = frame.groupby(covariate)[PERIOD_COLUMN].nunique()
            if len(per_level) > 1 and (per_level == 1).all():
                problems.append(Problem(
                    "config", "key 'differential.covariates'",
                    f"within contrast '{contrast['name']}' the period is determined by '{covariate}' "
                    "(each of its values takes this intervention in one period), so the mixed models "
                    "cannot have both",
                    f"remove '{covariate}' from differential.covariates (the period then stands for "
                    "the sequence), or set differential.period_covariate: false"))
    return problems
