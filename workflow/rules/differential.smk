# Differential testing: one engine for every modality (taxa, pathways,
# metabolites, immune subsets) and every contrast of `design.contrasts`. The
# analysis table of the modality (the processed log2 table for metabolome
# kinds, the import otherwise; see analysis_table in common.smk) is
# filtered by prevalence (compositions only), transformed as the modality
# declares (clr / rclr / log2 / logit / none) and tested feature by feature, all
# features at once: paired t and Wilcoxon signed-rank on the within-subject
# changes, random-intercept mixed models (time; time x response, the
# "changes differently in responders" term), the baseline responder comparison
# adjusted for the covariates; for compositions every abundance effect is
# corrected for the compositional bias (reference shift) and presence/absence
# tests sit beside it; rank tests confirm the parametric calls
# (sensitivity_agrees). BH q values within each family (modality x contrast x
# method x term). Outputs: results/differential/<modality>/;
# figures: results/figures/differential/<modality>/<contrast>/. Parameters come
# only from the config's `differential` section (plus the design, the
# modality's transform, the CLR pseudocount and the primary response
# definition). Plot rules read the result tables and compute nothing.
# Study types: without a response (intervention, crossover) the response terms
# are left out and responders.tsv is not read; without contrasts (baseline-only)
# each modality gets the baseline responder comparison alone,
# results/differential/<modality>/baseline_response.tsv; in a crossover the
# sample sheet's period is a covariate of the mixed models (period_covariate).

DIFFERENTIAL = config["differential"]
DIFFERENTIAL_CONTRASTS = {c["name"]: c for c in config["design"]["contrasts"]}
DIFFERENTIAL_DIR = "results/differential/{modality}"
DIFFERENTIAL_FIGURES = "differential/{modality}/{contrast}"
# the responder labels, read only when the study has a response
DIFFERENTIAL_RESPONDERS = "results/clinical/responders.tsv" if RESPONSE else []
# covariates: the configured ones, plus the crossover period (a sample-sheet column)
DIFFERENTIAL_COVARIATES = list(DIFFERENTIAL["covariates"]) + (
    [STUDY.period]
    if STUDY.period
    and DIFFERENTIAL["period_covariate"]
    and STUDY.period not in DIFFERENTIAL["covariates"]
    else []
)
DIFFERENTIAL_SETTINGS = {
    key: DIFFERENTIAL[key]
    for key in (
        "alpha",
        "min_prevalence",
        "min_mean_abundance",
        "min_pairs",
        "min_group_size",
        "methods",
        "covariates",
        "effect",
        "confidence",
        "wilcoxon_zero_method",
        "mixed_df",
        "bias_correction",
        "presence_tests",
        "random_effects",
        "plot_method",
    )
} | {"covariates": DIFFERENTIAL_COVARIATES}
# a study without contrasts but with a response: responders vs non-responders at
# baseline per modality (results/differential/<modality>/baseline_response.tsv)
DIFFERENTIAL_BASELINE = "baseline_response"
DIFFERENTIAL_BASELINE_TABLES = [
    "calls",
    "untested",
    "formulas",
    "notes",
    "dropped_samples",
    "transformed",
]
DIFFERENTIAL_TABLES = [
    "calls",
    "untested",
    "model_fits",
    "coefficients",
    "formulas",
    "notes",
    "dropped_samples",
    "changes",
    "pairs",
    "transformed",
]


# Parse-time lookups by contrast / modality name (params read them with
# wildcard_lookup, common.smk).
# Timepoints of the mixed models: the contrast's pre (reference level) first,
# then post, or every configured timepoint in design order.
DIFFERENTIAL_TIMEPOINTS = {
    name: (
        [c["pre"], c["post"]]
        if DIFFERENTIAL["mixed_timepoints"] == "contrast"
        else [c["pre"]] + [t for t in config["design"]["timepoints"] if t != c["pre"]]
    )
    for name, c in DIFFERENTIAL_CONTRASTS.items()
}
# Options of gutaxis.differential.transforms.transform_table implied by the modality: the
# logit of percentages when the immune units are percent (of parent).
DIFFERENTIAL_TRANSFORM_OPTIONS = {
    m: (
        {
            "percent": spec.get("options", {}).get("units", "fraction")
            in ("percent", "percent_of_parent")
        }
        if spec.get("transform", "none") == "logit"
        else {}
    )
    for m, spec in config["modalities"].items()
}
# Sensitivity analysis per modality (rank_tests or none).
DIFFERENTIAL_SENSITIVITY = {
    m: DIFFERENTIAL["sensitivity"].get(spec["kind"], "none")
    for m, spec in config["modalities"].items()
}
# Processed metabolome tables are log2 already (transform none): their fold
# changes are 2^effect on the original intensities.
DIFFERENTIAL_PROCESSED_LOG2 = {
    m: spec["kind"] == "metabolome" and config["metabolome"]["log2"]
    for m, spec in config["modalities"].items()
}
# Compositions (proportions, zeros = not detected): bias correction and
# presence/absence tests apply to them only.
DIFFERENTIAL_COMPOSITIONAL = {
    m: spec["kind"] in ("taxonomy", "function")
    and spec.get("transform", "none") in ("clr", "rclr")
    for m, spec in config["modalities"].items()
}
# Name of the scale the effects are on, for axis labels (processed metabolomics
# is log2 already, hence transform none).
DIFFERENTIAL_SCALE = {
    m: {
        "clr": "CLR",
        "rclr": "robust CLR",
        "log2": "log2",
        "log2p1": "log2(x + 1)",
        "logit": "logit",
    }.get(
        spec.get("transform", "none"),
        (
            "log2 intensity"
            if spec["kind"] == "metabolome" and config["metabolome"]["log2"]
            else "value as given"
        ),
    )
    for m, spec in config["modalities"].items()
}
# Formula models (differential.models), by name: MaAsLin-class designs over sheet columns
DIFFERENTIAL_MODELS = {m["name"]: m for m in DIFFERENTIAL["models"]}
DIFFERENTIAL_MODEL_TABLES = ["untested", "fits", "formulas", "dropped_samples", "notes"]
# what the values of a modality are, for the effect-scale sentence of its model tables
DIFFERENTIAL_VALUES = {
    m: (
        "relative abundances"
        if spec["kind"] in ("taxonomy", "function")
        else ("log2 intensities" if DIFFERENTIAL_PROCESSED_LOG2[m] else "values")
    )
    for m, spec in config["modalities"].items()
}
DIFFERENTIAL_TITLES = {
    name: f"{c['pre']} \u2192 {c['post']}" for name, c in DIFFERENTIAL_CONTRASTS.items()
}


# plots run on the submitting host, not as cluster jobs
localrules:
    plot_differential_volcano,
    plot_differential_baseline_volcano,
    plot_differential_heatmap,
    plot_differential_paired,


rule differential:
    input:
        table=analysis_table,
        features=analysis_features,
        samples="results/inputs/samples.tsv",
        subjects="results/inputs/subjects.tsv",
        responders=DIFFERENTIAL_RESPONDERS,
        structure=analysis_structure,
    output:
        results=report(
            f"{DIFFERENTIAL_DIR}/{{contrast}}.tsv",
            caption="../report/differential_results.rst",
            category="Differential testing",
            subcategory="{modality}",
            labels={
                "modality": "{modality}",
                "contrast": "{contrast}",
                "table": "Differential test results",
            },
        ),
        untested=report(
            f"{DIFFERENTIAL_DIR}/{{contrast}}.untested.tsv",
            caption="../report/differential_untested.rst",
            category="Differential testing",
            subcategory="{modality}",
            labels={
                "modality": "{modality}",
                "contrast": "{contrast}",
                "table": "Features not tested",
            },
        ),
        calls=report(
            f"{DIFFERENTIAL_DIR}/{{contrast}}.calls.tsv",
            caption="../report/differential_calls.rst",
            category="Differential testing",
            subcategory="{modality}",
            labels={
                "modality": "{modality}",
                "contrast": "{contrast}",
                "table": "Called features (one row each)",
            },
        ),
        model_fits=f"{DIFFERENTIAL_DIR}/{{contrast}}.model_fits.tsv",
        coefficients=f"{DIFFERENTIAL_DIR}/{{contrast}}.coefficients.tsv",
        formulas=f"{DIFFERENTIAL_DIR}/{{contrast}}.formulas.tsv",
        notes=f"{DIFFERENTIAL_DIR}/{{contrast}}.notes.tsv",
        dropped_samples=f"{DIFFERENTIAL_DIR}/{{contrast}}.dropped_samples.tsv",
        changes=f"{DIFFERENTIAL_DIR}/{{contrast}}.changes.tsv",
        pairs=f"{DIFFERENTIAL_DIR}/{{contrast}}.pairs.tsv",
        transformed=f"{DIFFERENTIAL_DIR}/{{contrast}}.transformed.tsv",
    log:
        "logs/differential/{modality}_{contrast}.log",
    benchmark:
        "logs/benchmarks/differential/differential_{modality}_{contrast}.tsv"
    conda:
        "../envs/stats.yaml"
    # one BLAS thread: at 5,000 samples the job kept 0.8 of 2 reserved cores busy
    # (vectorised statistics and TSV writing are single-threaded), so a second
    # thread only kept another job from running
    threads: 1
    resources:
        # the transformed table, the change matrix and the mixed models'
        # per-subject statistics (chunks of 2,000 features) are a few copies
        # of the input
        mem_mb=memory_mb(2000, 15),
        runtime=runtime_minutes(15, 2),
    params:
        modality=wildcard_value("modality"),
        kind=modality_setting("kind"),
        transform=modality_setting("transform", default="none"),
        transform_options=wildcard_lookup(DIFFERENTIAL_TRANSFORM_OPTIONS, "modality"),
        clr_pseudocount_fraction=config["clr_pseudocount_fraction"],
        processed_log2=wildcard_lookup(DIFFERENTIAL_PROCESSED_LOG2, "modality"),
        contrast=wildcard_lookup(DIFFERENTIAL_CONTRASTS, "contrast"),
        timepoints=wildcard_lookup(DIFFERENTIAL_TIMEPOINTS, "contrast"),
        response_column=RESPONSE,
        sensitivity=wildcard_lookup(DIFFERENTIAL_SENSITIVITY, "modality"),
        compositional=wildcard_lookup(DIFFERENTIAL_COMPOSITIONAL, "modality"),
        settings=DIFFERENTIAL_SETTINGS,
        table_label=modality_setting("path"),
        samples_label=config["samples"],
    script:
        "../scripts/differential_run.py"


rule differential_baseline:
    input:
        table=analysis_table,
        features=analysis_features,
        samples="results/inputs/samples.tsv",
        subjects="results/inputs/subjects.tsv",
        responders="results/clinical/responders.tsv",
        structure=analysis_structure,
    output:
        results=report(
            f"{DIFFERENTIAL_DIR}/{DIFFERENTIAL_BASELINE}.tsv",
            caption="../report/differential_baseline.rst",
            category="Differential testing",
            subcategory="{modality}",
            labels={
                "modality": "{modality}",
                "contrast": "baseline",
                "table": "Responders vs non-responders at baseline",
            },
        ),
        calls=f"{DIFFERENTIAL_DIR}/{DIFFERENTIAL_BASELINE}.calls.tsv",
        untested=f"{DIFFERENTIAL_DIR}/{DIFFERENTIAL_BASELINE}.untested.tsv",
        formulas=f"{DIFFERENTIAL_DIR}/{DIFFERENTIAL_BASELINE}.formulas.tsv",
        notes=f"{DIFFERENTIAL_DIR}/{DIFFERENTIAL_BASELINE}.notes.tsv",
        dropped_samples=f"{DIFFERENTIAL_DIR}/{DIFFERENTIAL_BASELINE}.dropped_samples.tsv",
        transformed=f"{DIFFERENTIAL_DIR}/{DIFFERENTIAL_BASELINE}.transformed.tsv",
    log:
        "logs/differential/{modality}_baseline_response.log",
    benchmark:
        "logs/benchmarks/differential/differential_baseline_{modality}.tsv"
    conda:
        "../envs/stats.yaml"
    threads: 1
    resources:
        # one OLS and one rank test per feature on the baseline samples
        mem_mb=memory_mb(2000, 10),
        runtime=runtime_minutes(15, 4),
    params:
        modality=wildcard_value("modality"),
        kind=modality_setting("kind"),
        transform=modality_setting("transform", default="none"),
        transform_options=wildcard_lookup(DIFFERENTIAL_TRANSFORM_OPTIONS, "modality"),
        clr_pseudocount_fraction=config["clr_pseudocount_fraction"],
        processed_log2=wildcard_lookup(DIFFERENTIAL_PROCESSED_LOG2, "modality"),
        contrast=None,
        baseline=config["design"]["baseline"],
        baseline_name="baseline",
        response_column=RESPONSE,
        sensitivity=wildcard_lookup(DIFFERENTIAL_SENSITIVITY, "modality"),
        compositional=wildcard_lookup(DIFFERENTIAL_COMPOSITIONAL, "modality"),
        settings=DIFFERENTIAL_SETTINGS,
        table_label=modality_setting("path"),
        samples_label=config["samples"],
    script:
        "../scripts/differential_run.py"


rule differential_model:
    input:
        table=analysis_table,
        features=analysis_features,
        samples="results/inputs/samples.tsv",
        subjects="results/inputs/subjects.tsv",
        responders=DIFFERENTIAL_RESPONDERS,
    output:
        results=report(
            f"{DIFFERENTIAL_DIR}/models/{{model}}.tsv",
            caption="../report/differential_model.rst",
            category="Differential testing",
            subcategory="{modality}",
            labels={
                "modality": "{modality}",
                "contrast": "model {model}",
                "table": "Formula model results",
            },
        ),
        untested=f"{DIFFERENTIAL_DIR}/models/{{model}}.untested.tsv",
        fits=f"{DIFFERENTIAL_DIR}/models/{{model}}.fits.tsv",
        formulas=f"{DIFFERENTIAL_DIR}/models/{{model}}.formulas.tsv",
        dropped_samples=f"{DIFFERENTIAL_DIR}/models/{{model}}.dropped_samples.tsv",
        notes=f"{DIFFERENTIAL_DIR}/models/{{model}}.notes.tsv",
    wildcard_constraints:
        model="|".join(DIFFERENTIAL_MODELS) if DIFFERENTIAL_MODELS else "NONE",
    log:
        "logs/differential/{modality}_model_{model}.log",
    benchmark:
        "logs/benchmarks/differential/differential_model_{modality}_{model}.tsv"
    conda:
        "../envs/stats.yaml"
    threads: 1
    resources:
        # the transformed table and the mixed models' sufficient statistics
        mem_mb=memory_mb(2000, 15),
        runtime=runtime_minutes(15, 2),
    params:
        model=wildcard_lookup(DIFFERENTIAL_MODELS, "model"),
        response_column=RESPONSE,
        alpha=DIFFERENTIAL["alpha"],
        confidence=DIFFERENTIAL["confidence"],
        mixed_df=DIFFERENTIAL["mixed_df"],
        values=wildcard_lookup(DIFFERENTIAL_VALUES, "modality"),
        table_label=modality_setting("path"),
        samples_label=config["samples"],
        subjects_label=config["subjects"],
    script:
        "../scripts/differential_model.py"


rule plot_differential_volcano:
    input:
        results=f"{DIFFERENTIAL_DIR}/{{contrast}}.tsv",
    output:
        figures=report(
            figure_paths(f"{DIFFERENTIAL_FIGURES}/volcano"),
            caption="../report/differential_volcano.rst",
            category="Differential testing",
            subcategory="{modality}",
            labels={
                "modality": "{modality}",
                "contrast": "{contrast}",
                "figure": "Volcano plots",
            },
        ),
        source=f"results/figures/{DIFFERENTIAL_FIGURES}/volcano.source.tsv",
        panel=report(
            f"results/figures/main/panels/{DIFFERENTIAL_FIGURES}/volcano.png",
            caption="../report/main_panels.rst",
            category="Main figures",
            subcategory="Panels",
            labels={"panel": "Volcano plot, {modality}, {contrast}"},
        ),
        panel_source=f"results/figures/main/panels/{DIFFERENTIAL_FIGURES}/volcano.source.tsv",
    log:
        "logs/figures/differential_volcano_{modality}_{contrast}.log",
    benchmark:
        "logs/benchmarks/figures/differential_volcano_{modality}_{contrast}.tsv"
    conda:
        "../envs/plots.yaml"
    params:
        style=plot_style(f"{DIFFERENTIAL_FIGURES}/volcano"),
        alpha=DIFFERENTIAL["alpha"],
        n_labels=DIFFERENTIAL["volcano_labels"],
        # the main-figure panel shows this method's test on time
        method=DIFFERENTIAL["plot_method"],
        contrast=wildcard_lookup(DIFFERENTIAL_CONTRASTS, "contrast"),
        scale_label=wildcard_lookup(DIFFERENTIAL_SCALE, "modality"),
        title=differential_title,
    script:
        "../scripts/plot_differential_volcano.py"


rule plot_differential_baseline_volcano:
    input:
        results=f"{DIFFERENTIAL_DIR}/{DIFFERENTIAL_BASELINE}.tsv",
    output:
        figures=report(
            figure_paths("differential/{modality}/baseline/volcano"),
            caption="../report/differential_volcano.rst",
            category="Differential testing",
            subcategory="{modality}",
            labels={
                "modality": "{modality}",
                "contrast": "baseline",
                "figure": "Volcano plots",
            },
        ),
        source="results/figures/differential/{modality}/baseline/volcano.source.tsv",
    log:
        "logs/figures/differential_baseline_volcano_{modality}.log",
    benchmark:
        "logs/benchmarks/figures/differential_baseline_volcano_{modality}.tsv"
    conda:
        "../envs/plots.yaml"
    params:
        style=plot_style("differential/{modality}/baseline/volcano"),
        alpha=DIFFERENTIAL["alpha"],
        n_labels=DIFFERENTIAL["volcano_labels"],
        method=DIFFERENTIAL["plot_method"],
        contrast={"pre": config["design"]["baseline"], "post": ""},
        scale_label=wildcard_lookup(DIFFERENTIAL_SCALE, "modality"),
        title=differential_baseline_title,
    script:
        "../scripts/plot_differential_volcano.py"


rule plot_differential_heatmap:
    input:
        results=f"{DIFFERENTIAL_DIR}/{{contrast}}.tsv",
        changes=f"{DIFFERENTIAL_DIR}/{{contrast}}.changes.tsv",
        pairs=f"{DIFFERENTIAL_DIR}/{{contrast}}.pairs.tsv",
    output:
        figures=report(
            figure_paths(f"{DIFFERENTIAL_FIGURES}/heatmap"),
            caption="../report/differential_heatmap.rst",
            category="Differential testing",
            subcategory="{modality}",
            labels={
                "modality": "{modality}",
                "contrast": "{contrast}",
                "figure": "Heatmap of within-subject changes",
            },
        ),
        source=f"results/figures/{DIFFERENTIAL_FIGURES}/heatmap.source.tsv",
    log:
        "logs/figures/differential_heatmap_{modality}_{contrast}.log",
    benchmark:
        "logs/benchmarks/figures/differential_heatmap_{modality}_{contrast}.tsv"
    conda:
        "../envs/plots.yaml"
    params:
        style=plot_style(f"{DIFFERENTIAL_FIGURES}/heatmap"),
        alpha=DIFFERENTIAL["alpha"],
        method=DIFFERENTIAL["plot_method"],
        max_features=DIFFERENTIAL["heatmap_max_features"],
        cohorts=config["design"]["cohorts"],
        contrast=wildcard_lookup(DIFFERENTIAL_CONTRASTS, "contrast"),
        scale_label=wildcard_lookup(DIFFERENTIAL_SCALE, "modality"),
        title=differential_title,
    script:
        "../scripts/plot_differential_heatmap.py"


rule plot_differential_paired:
    input:
        results=f"{DIFFERENTIAL_DIR}/{{contrast}}.tsv",
        transformed=f"{DIFFERENTIAL_DIR}/{{contrast}}.transformed.tsv",
        pairs=f"{DIFFERENTIAL_DIR}/{{contrast}}.pairs.tsv",
    output:
        figures=report(
            figure_paths(f"{DIFFERENTIAL_FIGURES}/paired"),
            caption="../report/differential_paired.rst",
            category="Differential testing",
            subcategory="{modality}",
            labels={
                "modality": "{modality}",
                "contrast": "{contrast}",
                "figure": "Paired plots of the top features",
            },
        ),
        source=f"results/figures/{DIFFERENTIAL_FIGURES}/paired.source.tsv",
        panel=report(
            f"results/figures/main/panels/{DIFFERENTIAL_FIGURES}/paired.png",
            caption="../report/main_panels.rst",
            category="Main figures",
            subcategory="Panels",
            labels={"panel": "Paired plots, {modality}, {contrast}"},
        ),
        panel_source=f"results/figures/main/panels/{DIFFERENTIAL_FIGURES}/paired.source.tsv",
    log:
        "logs/figures/differential_paired_{modality}_{contrast}.log",
    benchmark:
        "logs/benchmarks/figures/differential_paired_{modality}_{contrast}.tsv"
    conda:
        "../envs/plots.yaml"
    params:
        style=plot_style(f"{DIFFERENTIAL_FIGURES}/paired"),
        alpha=DIFFERENTIAL["alpha"],
        method=DIFFERENTIAL["plot_method"],
        n_features=DIFFERENTIAL["paired_plot_features"],
        contrast=wildcard_lookup(DIFFERENTIAL_CONTRASTS, "contrast"),
        scale_label=wildcard_lookup(DIFFERENTIAL_SCALE, "modality"),
        title=differential_title,
    script:
        "../scripts/plot_differential_paired.py"


FINAL_OUTPUTS.extend(
    expand(
        f"{DIFFERENTIAL_DIR}/{{contrast}}.tsv",
        modality=MODALITIES,
        contrast=CONTRASTS,
    )
    + expand(
        f"{DIFFERENTIAL_DIR}/{{contrast}}.{{table}}.tsv",
        modality=MODALITIES,
        contrast=CONTRASTS,
        table=DIFFERENTIAL_TABLES,
    )
    + [
        path
        for modality in MODALITIES
        for contrast in CONTRASTS
        for stem in ("volcano", "heatmap", "paired")
        for path in figure_paths(f"differential/{modality}/{contrast}/{stem}")
    ]
)
# a baseline-only study: the responder comparison at baseline of every modality
if not CONTRASTS and RESPONSE:
    FINAL_OUTPUTS.extend(
        expand(
            f"{DIFFERENTIAL_DIR}/{DIFFERENTIAL_BASELINE}.tsv",
            modality=MODALITIES,
        )
        + expand(
            f"{DIFFERENTIAL_DIR}/{DIFFERENTIAL_BASELINE}.{{table}}.tsv",
            modality=MODALITIES,
            table=DIFFERENTIAL_BASELINE_TABLES,
        )
        + [
            path
            for modality in MODALITIES
            for path in figure_paths(f"differential/{modality}/baseline/volcano")
        ]
    )
# formula models (differential.models), every modality
FINAL_OUTPUTS.extend(
    expand(
        f"{DIFFERENTIAL_DIR}/models/{{model}}.tsv",
        modality=MODALITIES,
        model=DIFFERENTIAL_MODELS,
    )
    + expand(
        f"{DIFFERENTIAL_DIR}/models/{{model}}.{{table}}.tsv",
        modality=MODALITIES,
        model=DIFFERENTIAL_MODELS,
        table=DIFFERENTIAL_MODEL_TABLES,
    )
)
