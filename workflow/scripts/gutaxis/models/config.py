"""The ``models`` config section as the rule file reads it when the workflow is parsed:
the feature sets, the label, the estimators of a set and the problems the schema cannot
see. Kept apart from :mod:`gutaxis.models.fit` so that parsing the workflow (``snakemake -n``
on a login node) does not import scikit-learn; :mod:`gutaxis.models.fit` re-exports these.
"""

from __future__ import annotations

from gutaxis.io.errors import Problem

MODEL_KINDS = ("taxonomy", "function", "metabolome", "immune")
DEFAULT_SET = "baseline_multiomics"


def feature_sets_from_config(config: dict) -> dict:
    """The configured feature sets (name -> spec), or one baseline set over every omics modality."""
    sets = dict(config["models"].get("feature_sets") or {})
    if sets:
        return sets
    blocks = sorted(m for m, spec in config["modalities"].items() if spec.get("kind") in MODEL_KINDS)
    return {DEFAULT_SET: {"blocks": blocks, "view": "baseline", "contrast": "", "timepoints": [],
                          "clinical": [], "combine": "concatenate", "estimators": [],
                          "permutation_test": True}}


def unavailable_sets(config: dict, paired: bool) -> dict:
    """Feature sets a study without paired samples cannot have, name -> reason.

    A baseline-only study (``paired`` False: no ``design.contrasts``) has one sample per
    subject before treatment, so a set of view ``change``, of an on-treatment timepoint,
    or of view ``samples`` at on-treatment timepoints is skipped (the reason goes to
    ``results/study.tsv``). Empty for paired studies.
    """
    if paired:
        return {}
    baseline = config["design"]["baseline"]
    out = {}
    for name, spec in feature_sets_from_config(config).items():
        view = spec.get("view", "baseline")
        later = [t for t in spec.get("timepoints", []) if t != baseline]
        if view == "change":
            out[name] = "view change needs paired samples; the study has no design.contrasts"
        elif view not in ("baseline", "samples", baseline):
            out[name] = f"view {view} is an on-treatment timepoint; the study has baseline samples only"
        elif view == "samples" and later:
            out[name] = (f"timepoints {', '.join(later)} are on treatment; the study has baseline "
                         "samples only")
    return out


def is_on_treatment(spec: dict, baseline: str) -> bool:
    """A feature set reads samples taken after treatment start (view change, an on-treatment
    timepoint, or a samples view with a timepoint after baseline)."""
    view = spec.get("view", "baseline")
    if view == "samples":
        return any(t != baseline for t in spec.get("timepoints", []))
    return view not in ("baseline", baseline)


def usable_sets(config: dict, paired: bool) -> dict:
    """The configured feature sets minus :func:`unavailable_sets`."""
    skip = unavailable_sets(config, paired)
    return {name: spec for name, spec in feature_sets_from_config(config).items() if name not in skip}


def set_estimators(config: dict, spec: dict) -> list[str]:
    """Estimators of one feature set: its own list, else ``models.estimators``."""
    return list(spec.get("estimators") or config["models"]["estimators"])


def label_column(config: dict) -> str:
    """The responder definition the models predict: ``models.label``, else
    ``response.primary``, else the first definition ("" when there is none)."""
    response = config["response"]
    return config["models"].get("label") or response["primary"] or next(iter(response["definitions"]), "")


def config_problems(config: dict) -> list:
    """Problems of the ``models`` section that the schema cannot see (names that must exist)."""
    problems = []
    models = config["models"]
    definitions = config["response"]["definitions"]
    label = label_column(config)
    if label not in definitions:
        problems.append(Problem("config", "key 'models.label'", f"'{label}' is not a response definition",
                                f"use one of {', '.join(definitions)} or leave it empty"))
    timepoints = config["design"]["timepoints"]
    contrasts = [c["name"] for c in config["design"]["contrasts"]]
    for name, spec in feature_sets_from_config(config).items():
        where = f"key 'models.feature_sets.{name}'"
        if not name.replace("_", "").replace("-", "").isalnum():
            problems.append(Problem("config", where, "feature-set names may hold letters, digits, _ and - only",
                                    "rename the feature set"))
        for block in spec.get("blocks", []):
            if block not in config["modalities"]:
                problems.append(Problem("config", where + ".blocks", f"'{block}' is not a modality",
                                        f"use one of {', '.join(sorted(config['modalities']))}"))
        if not spec.get("blocks") and not spec.get("clinical"):
            problems.append(Problem("config", where, "neither blocks nor clinical covariates",
                                    "list modalities under blocks and/or subjects-table columns under clinical"))
        view = spec.get("view", "baseline")
        if view not in ("baseline", "change", "samples", *timepoints):
            problems.append(Problem("config", where + ".view", f"unknown view '{view}'",
                                    f"use baseline, change, samples or one of {', '.join(timepoints)}"))
        if view == "change" and spec.get("contrast") and spec["contrast"] not in contrasts:
            problems.append(Problem("config", where + ".contrast", f"'{spec['contrast']}' is not a contrast",
                                    f"use one of {', '.join(contrasts)}"))
        for tp in spec.get("timepoints", []):
            if tp not in timepoints:
                problems.append(Problem("config", where + ".timepoints", f"unknown timepoint '{tp}'",
                                        f"use timepoints of design.timepoints ({', '.join(timepoints)})"))
        if spec.get("combine") == "stack" and len(spec.get("blocks", [])) + bool(spec.get("clinical")) < 2:
            problems.append(Problem("config", where + ".combine", "stacking needs two or more blocks",
                                    "use combine: concatenate"))
    validation = dict(models.get("validation") or {})
    design = validation.get("design", "stratified")
    if design != "stratified" and not validation.get("group"):
        problems.append(Problem("config", "key 'models.validation.group'",
                                f"validation design {design} needs the subjects-table column of its groups",
                                "set group: cohort (or study, site ...)"))
    if design == "external" and not validation.get("train"):
        problems.append(Problem("config", "key 'models.validation.train'",
                                "external validation needs the group values to train on",
                                "list them, e.g. train: [ILDR-01], test: [ILDR-02]"))
    folds = models["outer_folds"]
    if design == "stratified" and folds != "loo" and int(folds) > int(models["min_per_class"]):
        problems.append(Problem("config", "key 'models.outer_folds'",
                                f"{folds} outer folds need at least {folds} subjects per class, more than "
                                f"models.min_per_class ({models['min_per_class']})",
                                "lower outer_folds or raise min_per_class"))
    return problems
