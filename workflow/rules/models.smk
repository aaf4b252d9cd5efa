# Responder models and candidate biomarkers: can baseline or early on-treatment
# features predict who benefits? Each feature set of `models.feature_sets`
# (baseline taxa / metabolites / immune subsets, their within-subject changes,
# clinical covariates, all blocks together or stacked block-wise) is modelled
# with L1 and elastic-net logistic regression and a random forest in nested
# cross-validation (repeated stratified outer folds, inner folds for the
# hyperparameters, every filter, transform, selector and scaler fitted inside
# the training folds; folds grouped by subject when a subject has several
# rows), with a label-permutation test of the AUROC and feature stability
# across folds. The top features of the best omics set enter Cox models and
# median-split Kaplan-Meier curves for PFS2. Labels: results/clinical/
# responders.tsv; values: the analysis tables (see analysis_table in
# common.smk). features.tsv links each feature to the differential and
# integration results when those modules are part of the workflow. Outputs:
# results/models/; figures: results/figures/models/. Exploratory with a few
# dozen patients: README.txt states the sample sizes and says so.

# Study types: without responder labels (intervention, crossover) no model is
# fitted; without contrasts (baseline-only) the sets of view change or of an
# on-treatment timepoint are left out; the survival step runs only when the
# subjects table records models.survival's time and event columns. Each is a
# `skipped` line of results/study.tsv (gutaxis.io.design.plan_study).

from gutaxis.models.config import config_problems as _models_config_problems
from gutaxis.models.config import label_column, usable_sets

MODELS = config["models"]
MODELS_DIR = "results/models"
# the feature sets this study can have (none without a response)
MODEL_SETS = usable_sets(config, paired=bool(CONTRASTS)) if RESPONSE else {}


MODEL_LABEL = label_column(config)
MODEL_ESTIMATOR_ORDER = ["l1_logistic", "elastic_net", "random_forest"]
MODEL_SET_PATTERN = "|".join(MODEL_SETS) or "(?!)"
MODEL_MODALITIES = sorted(
    {block for spec in MODEL_SETS.values() for block in spec.get("blocks", [])}
)
MODEL_CONTRASTS = {c["name"]: c for c in config["design"]["contrasts"]}
# a study without contrasts links its features to the baseline responder comparison
# (results/differential/<modality>/baseline_response.tsv, contrast "baseline")
if not MODEL_CONTRASTS and RESPONSE:
    MODEL_CONTRASTS = {"baseline": {"name": "baseline", "pre": "", "post": ""}}
MODEL_FIRST_CONTRAST = next(iter(MODEL_CONTRASTS), "")
# the keys a fitting job uses: editing a plot or survival setting (or another
# feature set) does not refit the models
MODEL_FIT_KEYS = [
    "min_per_class",
    "outer_folds",
    "outer_repeats",
    "inner_folds",
    "permutations",
    "permutation_repeats",
    "permutation_estimators",
    "min_prevalence",
    "max_features_per_block",
    "logit_epsilon",
    "class_weight",
    "importance_repeats",
    "validation",
    "landmark_months",
    "survival",
    "l1_logistic",
    "elastic_net",
    "random_forest",
    "conf_level",
]

# without a response the section is not used, so its names are not checked
_models_problems = _models_config_problems(config) if MODEL_SETS else []
if _models_problems:
    # same behaviour as common.smk: one message naming the key and the fix
    print(InputError(_models_problems), file=sys.stderr)
    sys.exit(1)


# the Cox / Kaplan-Meier step needs the endpoint's columns in the subjects table
MODEL_SURVIVAL = bool(MODEL_SETS) and all(
    column in SHEETS["subjects"].columns
    and bool((SHEETS["subjects"][column].astype(str).str.strip() != "").any())
    for column in (MODELS["survival"]["time"], MODELS["survival"]["event"])
)


# Inputs of the link step: the differential tables of the modelled modalities at
# the contrasts the feature sets use, and the integration association tables
# that hold a modelled modality -- only when those modules are in this workflow.
MODEL_LINK_CONTRASTS = sorted(
    {
        spec.get("contrast") or MODEL_FIRST_CONTRAST
        for spec in MODEL_SETS.values()
        if spec.get("blocks")
    }
    - {""}
)
MODEL_DIFFERENTIAL = (
    [
        (
            m,
            c,
            f"results/differential/{m}/"
            f"{c if CONTRASTS else DIFFERENTIAL_BASELINE}.tsv",
        )
        for m in MODEL_MODALITIES
        for c in MODEL_LINK_CONTRASTS
    ]
    if "DIFFERENTIAL_CONTRASTS" in globals()
    else []
)
MODEL_INTEGRATION = [
    ((a, b, view), f"results/integration/associations/{block}_{view}.tsv")
    for block, (a, b) in sorted(globals().get("INTEGRATION_BLOCKS", {}).items())
    if a in MODEL_MODALITIES or b in MODEL_MODALITIES
    for view in globals().get("INTEGRATION_VIEWS", [])
]
# the per-feature-set tables the summary rules collect
MODEL_ALL_SETS = {
    table: expand(
        f"{MODELS_DIR}/sets/{{feature_set}}/{table}.tsv", feature_set=MODEL_SETS
    )
    for table in ("performance", "predictions", "features", "excluded", "groups")
}


# collecting the per-set tables and the plots run on the submitting host, not
# as cluster jobs
localrules:
    models_summary,
    models_feature_table,
    plot_models_roc,
    plot_models_stability,
    plot_models_calibration,
    plot_models_km,


rule models_fit:
    input:
        tables=model_tables,
        structures=model_structure_files,
        samples="results/inputs/samples.tsv",
        subjects="results/inputs/subjects.tsv",
        responders="results/clinical/responders.tsv",
    output:
        performance=f"{MODELS_DIR}/sets/{{feature_set}}/performance.tsv",
        predictions=f"{MODELS_DIR}/sets/{{feature_set}}/predictions.tsv",
        features=f"{MODELS_DIR}/sets/{{feature_set}}/features.tsv",
        repeats=f"{MODELS_DIR}/sets/{{feature_set}}/repeats.tsv",
        folds=f"{MODELS_DIR}/sets/{{feature_set}}/folds.tsv",
        permutations=f"{MODELS_DIR}/sets/{{feature_set}}/permutations.tsv",
        excluded=f"{MODELS_DIR}/sets/{{feature_set}}/excluded.tsv",
        groups=f"{MODELS_DIR}/sets/{{feature_set}}/groups.tsv",
    wildcard_constraints:
        feature_set=MODEL_SET_PATTERN,
    log:
        "logs/models/fit_{feature_set}.log",
    benchmark:
        "logs/benchmarks/models/models_fit_{feature_set}.tsv"
    conda:
        "../envs/stats.yaml"
    threads: MODELS["threads"]
    resources:
        # a few copies of the feature-set matrix per worker; the demo's largest
        # set (46 subjects x 931 features, 3 estimators, 99 permutations) takes
        # about a minute on 2 cores. Measured at 2,399 subjects x 5,682 features
        # (tables of ~290 MB): 876 MB with one worker.
        mem_mb=memory_mb(1500, 8),
        runtime=models_fit_runtime,
    params:
        feature_set=wildcard_value("feature_set"),
        spec=model_set,
        blocks=model_blocks,
        structures=model_structures,
        estimators=model_estimators,
        permutation_test=model_permutation_test,
        models={key: MODELS[key] for key in MODEL_FIT_KEYS},
        label=MODEL_LABEL,
        modalities=model_modality_configs,
        baseline=config["design"]["baseline"],
        contrasts=config["design"]["contrasts"],
        cohorts=config["design"]["cohorts"],
        clr_pseudocount_fraction=config["clr_pseudocount_fraction"],
        seed=config["seed"],
    script:
        "../scripts/models_fit.py"


rule models_summary:
    input:
        performance=MODEL_ALL_SETS["performance"],
        predictions=MODEL_ALL_SETS["predictions"],
        excluded=MODEL_ALL_SETS["excluded"],
        groups=MODEL_ALL_SETS["groups"],
    output:
        performance=report(
            f"{MODELS_DIR}/performance.tsv",
            caption="../report/models_performance.rst",
            category="Responder models",
            labels={"table": "Cross-validated performance"},
        ),
        predictions=f"{MODELS_DIR}/predictions.tsv",
        excluded=f"{MODELS_DIR}/excluded.tsv",
        groups=report(
            f"{MODELS_DIR}/group_performance.tsv",
            caption="../report/models_groups.rst",
            category="Responder models",
            labels={"table": "AUROC per held-out group"},
        ),
        roc=f"{MODELS_DIR}/roc_curves.tsv",
        calibration=f"{MODELS_DIR}/calibration.tsv",
        readme=f"{MODELS_DIR}/README.txt",
    log:
        "logs/models/summary.log",
    benchmark:
        "logs/benchmarks/models/summary.tsv"
    conda:
        "../envs/stats.yaml"
    params:
        set_order=list(MODEL_SETS),
        model_order=MODEL_ESTIMATOR_ORDER,
        label=MODEL_LABEL,
        models={
            key: MODELS[key]
            for key in ("outer_folds", "outer_repeats", "inner_folds", "permutations")
        },
        seed=config["seed"],
        roc_grid_points=MODELS["roc_grid_points"],
        calibration_bins=MODELS["calibration_bins"],
        conf_level=MODELS["conf_level"],
    script:
        "../scripts/models_summary.py"


rule models_feature_table:
    input:
        features=MODEL_ALL_SETS["features"],
        annotations=[analysis_features(m) for m in MODEL_MODALITIES],
        differential=[path for _, _, path in MODEL_DIFFERENTIAL],
        integration=[path for _, path in MODEL_INTEGRATION],
    output:
        features=report(
            f"{MODELS_DIR}/features.tsv",
            caption="../report/models_features.rst",
            category="Responder models",
            labels={"table": "Feature stability and links"},
        ),
    log:
        "logs/models/feature_table.log",
    benchmark:
        "logs/benchmarks/models/feature_table.tsv"
    conda:
        "../envs/stats.yaml"
    params:
        feature_sets=MODEL_SETS,
        annotation_modalities=MODEL_MODALITIES,
        differential_modalities=[m for m, _, _ in MODEL_DIFFERENTIAL],
        differential_contrasts=[c for _, c, _ in MODEL_DIFFERENTIAL],
        contrast_post={name: c["post"] for name, c in MODEL_CONTRASTS.items()},
        first_contrast=MODEL_FIRST_CONTRAST,
        baseline=config["design"]["baseline"],
        integration_keys=[list(key) for key, _ in MODEL_INTEGRATION],
        link_max_q=MODELS["link_max_q"],
    script:
        "../scripts/models_feature_table.py"


rule models_survival:
    input:
        performance=f"{MODELS_DIR}/performance.tsv",
        features=MODEL_ALL_SETS["features"],
        tables=[analysis_table(m) for m in MODEL_MODALITIES],
        annotations=[analysis_features(m) for m in MODEL_MODALITIES],
        samples="results/inputs/samples.tsv",
        subjects="results/inputs/subjects.tsv",
    output:
        survival=report(
            f"{MODELS_DIR}/survival.tsv",
            caption="../report/models_survival.rst",
            category="Responder models",
            labels={"table": "Candidate biomarkers and PFS2"},
        ),
        curves=f"{MODELS_DIR}/km_curves.tsv",
    log:
        "logs/models/survival.log",
    benchmark:
        "logs/benchmarks/models/survival.tsv"
    conda:
        "../envs/stats.yaml"
    resources:
        # reads the analysis tables of every modelled modality (a few copies in
        # memory), fits Cox models and Kaplan-Meier splits for a few features
        mem_mb=memory_mb(1000, 10),
        runtime=runtime_minutes(10, 10),
    params:
        survival=MODELS["survival"],
        landmark_months=MODELS["landmark_months"],
        feature_sets=MODEL_SETS,
        modalities_used=MODEL_MODALITIES,
        modalities={m: config["modalities"][m] for m in MODEL_MODALITIES},
        models={
            key: MODELS[key]
            for key in ("min_prevalence", "logit_epsilon", "conf_level")
        },
        clr_pseudocount_fraction=config["clr_pseudocount_fraction"],
        baseline=config["design"]["baseline"],
        contrasts=config["design"]["contrasts"],
        cohorts=config["design"]["cohorts"],
        km_conf_type=config["clinical"]["km_conf_type"],
    script:
        "../scripts/models_survival.py"


rule plot_models_roc:
    input:
        roc=f"{MODELS_DIR}/roc_curves.tsv",
        performance=f"{MODELS_DIR}/performance.tsv",
    output:
        figures=report(
            figure_paths("models/roc"),
            caption="../report/models_roc.rst",
            category="Responder models",
            labels={"figure": "ROC curves"},
        ),
        source="results/figures/models/roc.source.tsv",
        panel=report(
            "results/figures/main/panels/models/roc.png",
            caption="../report/main_panels.rst",
            category="Main figures",
            subcategory="Panels",
            labels={"panel": "ROC curves"},
        ),
        panel_source="results/figures/main/panels/models/roc.source.tsv",
    log:
        "logs/figures/models_roc.log",
    benchmark:
        "logs/benchmarks/figures/models_roc.tsv"
    conda:
        "../envs/plots.yaml"
    params:
        figure="roc",
        style=plot_style("models/roc"),
        set_order=list(MODEL_SETS),
        model_order=MODEL_ESTIMATOR_ORDER,
        conf_level=MODELS["conf_level"],
    script:
        "../scripts/plot_models_figure.py"


rule plot_models_stability:
    input:
        features=f"{MODELS_DIR}/features.tsv",
        performance=f"{MODELS_DIR}/performance.tsv",
    output:
        figures=report(
            figure_paths("models/stability"),
            caption="../report/models_stability.rst",
            category="Responder models",
            labels={"figure": "Feature stability"},
        ),
        source="results/figures/models/stability.source.tsv",
    log:
        "logs/figures/models_stability.log",
    benchmark:
        "logs/benchmarks/figures/models_stability.tsv"
    conda:
        "../envs/plots.yaml"
    params:
        figure="stability",
        style=plot_style("models/stability"),
        top_n=20,
    script:
        "../scripts/plot_models_figure.py"


rule plot_models_calibration:
    input:
        calibration=f"{MODELS_DIR}/calibration.tsv",
        performance=f"{MODELS_DIR}/performance.tsv",
    output:
        figures=report(
            figure_paths("models/calibration"),
            caption="../report/models_calibration.rst",
            category="Responder models",
            labels={"figure": "Calibration"},
        ),
        source="results/figures/models/calibration.source.tsv",
    log:
        "logs/figures/models_calibration.log",
    benchmark:
        "logs/benchmarks/figures/models_calibration.tsv"
    conda:
        "../envs/plots.yaml"
    params:
        figure="calibration",
        style=plot_style("models/calibration"),
        set_order=list(MODEL_SETS),
        model_order=MODEL_ESTIMATOR_ORDER,
        conf_level=MODELS["conf_level"],
    script:
        "../scripts/plot_models_figure.py"


rule plot_models_km:
    input:
        curves=f"{MODELS_DIR}/km_curves.tsv",
        survival=f"{MODELS_DIR}/survival.tsv",
    output:
        figures=report(
            figure_paths("models/km"),
            caption="../report/models_km.rst",
            category="Responder models",
            labels={"figure": "Kaplan-Meier by top biomarker"},
        ),
        source="results/figures/models/km.source.tsv",
    log:
        "logs/figures/models_km.log",
    benchmark:
        "logs/benchmarks/figures/models_km.tsv"
    conda:
        "../envs/plots.yaml"
    params:
        figure="km",
        style=plot_style("models/km"),
        conf_level=MODELS["conf_level"],
    script:
        "../scripts/plot_models_figure.py"


MODEL_FIGURES = ["roc", "stability", "calibration"] + (["km"] if MODEL_SURVIVAL else [])
if MODEL_SETS:
    FINAL_OUTPUTS.extend(
        [
            f"{MODELS_DIR}/{name}"
            for name in (
                "performance.tsv",
                "predictions.tsv",
                "features.tsv",
                "roc_curves.tsv",
                "calibration.tsv",
                "excluded.tsv",
                "group_performance.tsv",
                "README.txt",
            )
        ]
        + (
            [f"{MODELS_DIR}/survival.tsv", f"{MODELS_DIR}/km_curves.tsv"]
            if MODEL_SURVIVAL
            else []
        )
        + [f"results/figures/models/{name}.source.tsv" for name in MODEL_FIGURES]
        + [path for name in MODEL_FIGURES for path in figure_paths(f"models/{name}")]
    )
