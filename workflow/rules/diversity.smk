# Microbiome ecology: every modality of kind `taxonomy` goes through a
# prevalence / mean-abundance filter (renormalisation recorded), α diversity per
# sample with paired Wilcoxon / Hodges-Lehmann tests and a linear mixed model,
# β diversity (one distance matrix per configured metric) with PCoA, PERMANOVA
# with restricted permutations and PERMDISP beside it, and the within-subject
# pre->post shift compared between responders and non-responders. Responder
# labels are the `response.primary` column of results/clinical/responders.tsv.
# Parameters come only from the config's `diversity` section (plus the design,
# the response definition and the seed). Outputs: results/diversity/<modality>/;
# figures: results/figures/diversity/<modality>/<contrast>/. Plot rules read the
# result tables and compute nothing.
#
# Study types (gutaxis.io.design): without response (intervention, crossover) no rule
# reads the responders table and no test or figure has a response term or group;
# a crossover's sample-sheet `period` is a covariate of the α mixed models and of
# the time PERMANOVA; a baseline-only study (no contrasts) has no paired tests or
# shift (skipped in the study plan) and gets the baseline comparisons instead:
# alpha_baseline_tests.tsv / alpha_baseline_models.tsv, PERMANOVA rows of contrast
# "baseline" and the PCoA of the baseline samples by response
# (results/figures/diversity/<modality>/baseline/). beta_metrics.tsv says which β
# metrics are defined for every sample pair and which one is primary
# (diversity.undefined_pairs).

DIVERSITY = config["diversity"]
# a cohort study (repeated samples, no contrast) runs its formula models only: the
# diversity tests assume pairs or one sample per subject
DIVERSITY_MODALITIES = (
    modalities_of_kind("taxonomy") if STUDY.study_type != "cohort" else []
)
# patterns that match no name when there is no taxonomy modality / beta metric
DIVERSITY_MODALITY_PATTERN = "|".join(DIVERSITY_MODALITIES) or "(?!)"
DIVERSITY_METRICS = DIVERSITY["beta_metrics"]
DIVERSITY_METRIC_PATTERN = "|".join(DIVERSITY_METRICS) or "(?!)"
DIVERSITY_CONTRASTS = {c["name"]: c for c in STUDY.contrasts}
DIVERSITY_DIR = "results/diversity/{modality}"
DIVERSITY_FIGURES = "diversity/{modality}/{contrast}"
DIVERSITY_RESPONSE = RESPONSE
# the responders table is an input only when the study has a response
DIVERSITY_RESPONDERS = (
    {"responders": "results/clinical/responders.tsv"} if DIVERSITY_RESPONSE else {}
)
# the sample-sheet column of a crossover's periods ("" otherwise)
DIVERSITY_PERIOD = STUDY.period or ""
# a baseline-only study: baseline comparisons instead of paired tests and shifts
DIVERSITY_BASELINE_ONLY = not DIVERSITY_CONTRASTS


# plots run on the submitting host, not as cluster jobs
localrules:
    plot_diversity_alpha,
    plot_diversity_pcoa,
    plot_diversity_pcoa_baseline,
    plot_diversity_shift,


rule diversity_filter:
    input:
        table="results/import/{modality}.tsv",
        notes="results/import/{modality}.notes.tsv",
    output:
        filtered=f"{DIVERSITY_DIR}/filtered.tsv",
        dropped_features=report(
            f"{DIVERSITY_DIR}/dropped_features.tsv",
            caption="../report/diversity_filter.rst",
            category="Microbiome diversity",
            subcategory="{modality}",
            labels={
                "modality": "{modality}",
                "table": "Features dropped by the filter",
            },
        ),
        dropped_samples=f"{DIVERSITY_DIR}/dropped_samples.tsv",
        renormalisation=f"{DIVERSITY_DIR}/renormalisation.tsv",
        parameters=f"{DIVERSITY_DIR}/filter_parameters.tsv",
    wildcard_constraints:
        modality=DIVERSITY_MODALITY_PATTERN,
    log:
        "logs/diversity/filter_{modality}.log",
    benchmark:
        "logs/benchmarks/diversity/filter_{modality}.tsv"
    conda:
        "../envs/stats.yaml"
    resources:
        mem_mb=memory_mb(1000, 15),
        runtime=runtime_minutes(10, 20),
    params:
        min_prevalence=DIVERSITY["min_prevalence"],
        min_mean_abundance=DIVERSITY["min_mean_abundance"],
        detection_limit=DIVERSITY["detection_limit"],
    script:
        "../scripts/diversity_filter.py"


rule diversity_alpha:
    input:
        **DIVERSITY_RESPONDERS,
        filtered=f"{DIVERSITY_DIR}/filtered.tsv",
        parameters=f"{DIVERSITY_DIR}/filter_parameters.tsv",
        samples="results/inputs/samples.tsv",
        subjects="results/inputs/subjects.tsv",
    output:
        alpha=f"{DIVERSITY_DIR}/alpha.tsv",
    wildcard_constraints:
        modality=DIVERSITY_MODALITY_PATTERN,
    log:
        "logs/diversity/alpha_{modality}.log",
    benchmark:
        "logs/benchmarks/diversity/diversity_alpha_{modality}.tsv"
    conda:
        "../envs/stats.yaml"
    resources:
        mem_mb=memory_mb(1000, 15),
        runtime=runtime_minutes(10, 20),
    params:
        metrics=DIVERSITY["alpha_metrics"],
        rarefaction_depth=DIVERSITY["rarefaction_depth"],
        primary=DIVERSITY_RESPONSE,
        period=DIVERSITY_PERIOD,
    script:
        "../scripts/diversity_alpha.py"


rule diversity_alpha_tests:
    input:
        alpha=f"{DIVERSITY_DIR}/alpha.tsv",
    output:
        tests=report(
            f"{DIVERSITY_DIR}/alpha_tests.tsv",
            caption="../report/diversity_alpha_tests.rst",
            category="Microbiome diversity",
            subcategory="{modality}",
            labels={"modality": "{modality}", "table": "α diversity: paired tests"},
        ),
        mixed=report(
            f"{DIVERSITY_DIR}/alpha_mixed.tsv",
            caption="../report/diversity_alpha_mixed.rst",
            category="Microbiome diversity",
            subcategory="{modality}",
            labels={"modality": "{modality}", "table": "α diversity: mixed models"},
        ),
    wildcard_constraints:
        modality=DIVERSITY_MODALITY_PATTERN,
    log:
        "logs/diversity/alpha_tests_{modality}.log",
    benchmark:
        "logs/benchmarks/diversity/diversity_alpha_tests_{modality}.tsv"
    conda:
        "../envs/stats.yaml"
    resources:
        mem_mb=memory_mb(1000, 10),
        runtime=runtime_minutes(10, 5),
    params:
        contrasts=config["design"]["contrasts"],
        timepoints=config["design"]["timepoints"],
        baseline=config["design"]["baseline"],
        conf_level=DIVERSITY["conf_level"],
        significance_level=DIVERSITY["significance_level"],
        response=bool(DIVERSITY_RESPONSE),
        period=DIVERSITY_PERIOD,
    script:
        "../scripts/diversity_alpha_tests.py"


rule diversity_alpha_baseline:
    input:
        alpha=f"{DIVERSITY_DIR}/alpha.tsv",
    output:
        tests=report(
            f"{DIVERSITY_DIR}/alpha_baseline_tests.tsv",
            caption="../report/diversity_alpha_baseline_tests.rst",
            category="Microbiome diversity",
            subcategory="{modality}",
            labels={
                "modality": "{modality}",
                "table": "α diversity at baseline: responders vs non-responders",
            },
        ),
        models=report(
            f"{DIVERSITY_DIR}/alpha_baseline_models.tsv",
            caption="../report/diversity_alpha_baseline_models.rst",
            category="Microbiome diversity",
            subcategory="{modality}",
            labels={
                "modality": "{modality}",
                "table": "α diversity at baseline: linear models",
            },
        ),
    wildcard_constraints:
        modality=DIVERSITY_MODALITY_PATTERN,
    log:
        "logs/diversity/alpha_baseline_{modality}.log",
    benchmark:
        "logs/benchmarks/diversity/diversity_alpha_baseline_{modality}.tsv"
    conda:
        "../envs/stats.yaml"
    resources:
        mem_mb=memory_mb(1000, 10),
        runtime=runtime_minutes(10, 5),
    params:
        baseline=config["design"]["baseline"],
        significance_level=DIVERSITY["significance_level"],
        response=bool(DIVERSITY_RESPONSE),
    script:
        "../scripts/diversity_alpha_baseline.py"


rule diversity_beta_metrics:
    input:
        filtered=f"{DIVERSITY_DIR}/filtered.tsv",
    output:
        check=report(
            f"{DIVERSITY_DIR}/beta_metrics.tsv",
            caption="../report/diversity_beta_metrics.rst",
            category="Microbiome diversity",
            subcategory="{modality}",
            labels={
                "modality": "{modality}",
                "table": "β metrics defined for every pair",
            },
        ),
    wildcard_constraints:
        modality=DIVERSITY_MODALITY_PATTERN,
    log:
        "logs/diversity/beta_metrics_{modality}.log",
    benchmark:
        "logs/benchmarks/diversity/diversity_beta_metrics_{modality}.tsv"
    conda:
        "../envs/stats.yaml"
    resources:
        # the samples x samples count of shared features
        mem_mb=memory_mb(1000, 20),
        runtime=runtime_minutes(10, 5),
    params:
        metrics=DIVERSITY_METRICS,
        primary=DIVERSITY["primary_metric"],
        undefined_pairs=DIVERSITY["undefined_pairs"],
    script:
        "../scripts/diversity_beta_metrics.py"


rule diversity_beta:
    input:
        **DIVERSITY_RESPONDERS,
        filtered=f"{DIVERSITY_DIR}/filtered.tsv",
        check=f"{DIVERSITY_DIR}/beta_metrics.tsv",
        samples="results/inputs/samples.tsv",
        subjects="results/inputs/subjects.tsv",
    output:
        distances=f"{DIVERSITY_DIR}/distances/{{metric}}.tsv",
        # binary copy read by the rules below: parsing an n x n TSV dominates
        # their run time at consortium size (n = 5,000: ~300 MB of text)
        matrix=f"{DIVERSITY_DIR}/distances/{{metric}}.npy",
        matrix_ids=f"{DIVERSITY_DIR}/distances/{{metric}}.sample_ids.tsv",
        parameters=f"{DIVERSITY_DIR}/distances/{{metric}}.parameters.tsv",
        coordinates=f"{DIVERSITY_DIR}/pcoa/{{metric}}.tsv",
        axes=f"{DIVERSITY_DIR}/pcoa/{{metric}}.axes.tsv",
    wildcard_constraints:
        modality=DIVERSITY_MODALITY_PATTERN,
        metric=DIVERSITY_METRIC_PATTERN,
    log:
        "logs/diversity/beta_{modality}_{metric}.log",
    benchmark:
        "logs/benchmarks/diversity/diversity_beta_{modality}_{metric}.tsv"
    conda:
        "../envs/stats.yaml"
    resources:
        # the n x n matrix and a few copies of it dominate; n grows with the table
        mem_mb=memory_mb(2000, 40),
        runtime=runtime_minutes(10, 2),
    params:
        pseudocount=DIVERSITY["pseudocount"],
        n_axes=max([10] + DIVERSITY["pcoa_axes"]),
        primary=DIVERSITY_RESPONSE,
        period=DIVERSITY_PERIOD,
    script:
        "../scripts/diversity_beta.py"


rule diversity_permanova:
    input:
        **DIVERSITY_RESPONDERS,
        matrix=f"{DIVERSITY_DIR}/distances/{{metric}}.npy",
        matrix_ids=f"{DIVERSITY_DIR}/distances/{{metric}}.sample_ids.tsv",
        check=f"{DIVERSITY_DIR}/beta_metrics.tsv",
        samples="results/inputs/samples.tsv",
        subjects="results/inputs/subjects.tsv",
    output:
        permanova=report(
            f"{DIVERSITY_DIR}/permanova/{{metric}}.tsv",
            caption="../report/diversity_permanova.rst",
            category="Microbiome diversity",
            subcategory="{modality}",
            labels={"modality": "{modality}", "table": "PERMANOVA ({metric})"},
        ),
        permdisp=f"{DIVERSITY_DIR}/permdisp/{{metric}}.tsv",
        group_distances=f"{DIVERSITY_DIR}/permdisp/{{metric}}.groups.tsv",
        notes=f"{DIVERSITY_DIR}/permanova/{{metric}}.notes.tsv",
    wildcard_constraints:
        modality=DIVERSITY_MODALITY_PATTERN,
        metric=DIVERSITY_METRIC_PATTERN,
    log:
        "logs/diversity/permanova_{modality}_{metric}.log",
    benchmark:
        "logs/benchmarks/diversity/diversity_permanova_{modality}_{metric}.tsv"
    conda:
        "../envs/stats.yaml"
    resources:
        # the Gower matrix, its copies and the 128 MB permutation blocks
        mem_mb=memory_mb(1000, 6, fixed=400),
        runtime=runtime_minutes(10, 2),
    params:
        contrasts=STUDY.contrasts,
        baseline=config["design"]["baseline"],
        period=DIVERSITY_PERIOD,
        sequential_terms=DIVERSITY["sequential_terms"],
        permutations=DIVERSITY["permutations"],
        seed=config["seed"],
        primary=DIVERSITY_RESPONSE,
        primary_metric=DIVERSITY["primary_metric"],
        significance_level=DIVERSITY["significance_level"],
    script:
        "../scripts/diversity_permanova.py"


rule diversity_shift:
    input:
        **DIVERSITY_RESPONDERS,
        matrix=f"{DIVERSITY_DIR}/distances/{{metric}}.npy",
        matrix_ids=f"{DIVERSITY_DIR}/distances/{{metric}}.sample_ids.tsv",
        check=f"{DIVERSITY_DIR}/beta_metrics.tsv",
        samples="results/inputs/samples.tsv",
        subjects="results/inputs/subjects.tsv",
    output:
        shift=f"{DIVERSITY_DIR}/shift/{{metric}}.tsv",
        tests=f"{DIVERSITY_DIR}/shift/{{metric}}.tests.tsv",
    wildcard_constraints:
        modality=DIVERSITY_MODALITY_PATTERN,
        metric=DIVERSITY_METRIC_PATTERN,
    log:
        "logs/diversity/shift_{modality}_{metric}.log",
    benchmark:
        "logs/benchmarks/diversity/shift_{modality}_{metric}.tsv"
    conda:
        "../envs/stats.yaml"
    resources:
        mem_mb=memory_mb(1000, 4),
        runtime=runtime_minutes(10, 20),
    params:
        contrasts=STUDY.contrasts,
        primary=DIVERSITY_RESPONSE,
        conf_level=DIVERSITY["conf_level"],
        primary_metric=DIVERSITY["primary_metric"],
        significance_level=DIVERSITY["significance_level"],
    script:
        "../scripts/diversity_shift.py"


rule plot_diversity_alpha:
    input:
        alpha=f"{DIVERSITY_DIR}/alpha.tsv",
        tests=f"{DIVERSITY_DIR}/alpha_tests.tsv",
    output:
        figures=report(
            figure_paths(f"{DIVERSITY_FIGURES}/alpha_paired"),
            caption="../report/diversity_alpha_paired.rst",
            category="Microbiome diversity",
            subcategory="{modality}",
            labels={
                "modality": "{modality}",
                "contrast": "{contrast}",
                "figure": "Paired α diversity",
            },
        ),
        source=f"results/figures/{DIVERSITY_FIGURES}/alpha_paired.source.tsv",
        panel=report(
            f"results/figures/main/panels/{DIVERSITY_FIGURES}/alpha_paired.png",
            caption="../report/main_panels.rst",
            category="Main figures",
            subcategory="Panels",
            labels={"panel": "Paired α diversity, {modality}, {contrast}"},
        ),
        panel_source=f"results/figures/main/panels/{DIVERSITY_FIGURES}/alpha_paired.source.tsv",
    wildcard_constraints:
        modality=DIVERSITY_MODALITY_PATTERN,
    log:
        "logs/figures/diversity_alpha_{modality}_{contrast}.log",
    benchmark:
        "logs/benchmarks/figures/diversity_alpha_{modality}_{contrast}.tsv"
    conda:
        "../envs/plots.yaml"
    params:
        style=plot_style(f"{DIVERSITY_FIGURES}/alpha_paired"),
        response=bool(DIVERSITY_RESPONSE),
        cohorts=config["design"]["cohorts"],
        metrics=DIVERSITY["alpha_plot_metrics"],
        contrast=wildcard_lookup(DIVERSITY_CONTRASTS, "contrast"),
        title=diversity_title,
    script:
        "../scripts/plot_diversity_alpha.py"


rule plot_diversity_pcoa:
    input:
        coordinates=f"{DIVERSITY_DIR}/pcoa/{{metric}}.tsv",
        axes=f"{DIVERSITY_DIR}/pcoa/{{metric}}.axes.tsv",
        permanova=f"{DIVERSITY_DIR}/permanova/{{metric}}.tsv",
    output:
        figures=report(
            figure_paths(f"{DIVERSITY_FIGURES}/pcoa_{{metric}}"),
            caption="../report/diversity_pcoa.rst",
            category="Microbiome diversity",
            subcategory="{modality}",
            labels={
                "modality": "{modality}",
                "contrast": "{contrast}",
                "figure": "PCoA ({metric})",
            },
        ),
        source=f"results/figures/{DIVERSITY_FIGURES}/pcoa_{{metric}}.source.tsv",
    wildcard_constraints:
        modality=DIVERSITY_MODALITY_PATTERN,
        metric=DIVERSITY_METRIC_PATTERN,
    log:
        "logs/figures/diversity_pcoa_{modality}_{metric}_{contrast}.log",
    benchmark:
        "logs/benchmarks/figures/diversity_pcoa_{modality}_{metric}_{contrast}.tsv"
    conda:
        "../envs/plots.yaml"
    params:
        style=plot_style(f"{DIVERSITY_FIGURES}/pcoa_{{metric}}"),
        response=bool(DIVERSITY_RESPONSE),
        axes=DIVERSITY["pcoa_axes"],
        contrast=wildcard_lookup(DIVERSITY_CONTRASTS, "contrast"),
        title=diversity_title,
    script:
        "../scripts/plot_diversity_pcoa.py"


rule plot_diversity_shift:
    input:
        shift=expand(
            f"{DIVERSITY_DIR}/shift/{{metric}}.tsv",
            metric=DIVERSITY_METRICS,
            allow_missing=True,
        ),
        tests=expand(
            f"{DIVERSITY_DIR}/shift/{{metric}}.tests.tsv",
            metric=DIVERSITY_METRICS,
            allow_missing=True,
        ),
    output:
        figures=report(
            figure_paths(f"{DIVERSITY_FIGURES}/shift"),
            caption="../report/diversity_shift.rst",
            category="Microbiome diversity",
            subcategory="{modality}",
            labels={
                "modality": "{modality}",
                "contrast": "{contrast}",
                "figure": "Within-subject shift",
            },
        ),
        source=f"results/figures/{DIVERSITY_FIGURES}/shift.source.tsv",
    wildcard_constraints:
        modality=DIVERSITY_MODALITY_PATTERN,
    log:
        "logs/figures/diversity_shift_{modality}_{contrast}.log",
    benchmark:
        "logs/benchmarks/figures/diversity_shift_{modality}_{contrast}.tsv"
    conda:
        "../envs/plots.yaml"
    params:
        style=plot_style(f"{DIVERSITY_FIGURES}/shift"),
        response=bool(DIVERSITY_RESPONSE),
        metrics=DIVERSITY_METRICS,
        contrast=wildcard_lookup(DIVERSITY_CONTRASTS, "contrast"),
        title=diversity_title,
    script:
        "../scripts/plot_diversity_shift.py"


rule plot_diversity_pcoa_baseline:
    input:
        coordinates=f"{DIVERSITY_DIR}/pcoa/{{metric}}.tsv",
        axes=f"{DIVERSITY_DIR}/pcoa/{{metric}}.axes.tsv",
        permanova=f"{DIVERSITY_DIR}/permanova/{{metric}}.tsv",
    output:
        figures=report(
            figure_paths("diversity/{modality}/baseline/pcoa_{metric}"),
            caption="../report/diversity_pcoa_baseline.rst",
            category="Microbiome diversity",
            subcategory="{modality}",
            labels={
                "modality": "{modality}",
                "contrast": "baseline",
                "figure": "PCoA at baseline ({metric})",
            },
        ),
        source="results/figures/diversity/{modality}/baseline/pcoa_{metric}.source.tsv",
    wildcard_constraints:
        modality=DIVERSITY_MODALITY_PATTERN,
        metric=DIVERSITY_METRIC_PATTERN,
    log:
        "logs/figures/diversity_pcoa_baseline_{modality}_{metric}.log",
    benchmark:
        "logs/benchmarks/figures/diversity_pcoa_baseline_{modality}_{metric}.tsv"
    conda:
        "../envs/plots.yaml"
    params:
        style=plot_style("diversity/{modality}/baseline/pcoa_{metric}"),
        axes=DIVERSITY["pcoa_axes"],
        baseline=config["design"]["baseline"],
        response=bool(DIVERSITY_RESPONSE),
        title=diversity_baseline_title,
    script:
        "../scripts/plot_diversity_pcoa_baseline.py"


# every study: filter, alpha, the metric check, distances, PCoA and PERMANOVA
FINAL_OUTPUTS.extend(
    expand(
        f"{DIVERSITY_DIR}/{{table}}.tsv",
        modality=DIVERSITY_MODALITIES,
        table=[
            "filtered",
            "dropped_features",
            "dropped_samples",
            "renormalisation",
            "alpha",
            "beta_metrics",
        ],
    )
    + expand(
        f"{DIVERSITY_DIR}/{{table}}/{{metric}}.tsv",
        modality=DIVERSITY_MODALITIES,
        metric=DIVERSITY_METRICS,
        table=["pcoa", "permanova", "permdisp"],
    )
)
if DIVERSITY_BASELINE_ONLY:
    # baseline comparisons; the paired tests and the shift are skipped (study plan)
    FINAL_OUTPUTS.extend(
        expand(
            f"{DIVERSITY_DIR}/{{table}}.tsv",
            modality=DIVERSITY_MODALITIES,
            table=["alpha_baseline_tests", "alpha_baseline_models"],
        )
        + [
            path
            for modality in DIVERSITY_MODALITIES
            for metric in DIVERSITY_METRICS
            for path in figure_paths(f"diversity/{modality}/baseline/pcoa_{metric}")
        ]
    )
else:
    FINAL_OUTPUTS.extend(
        expand(
            f"{DIVERSITY_DIR}/{{table}}.tsv",
            modality=DIVERSITY_MODALITIES,
            table=["alpha_tests", "alpha_mixed"],
        )
        + expand(
            f"{DIVERSITY_DIR}/shift/{{metric}}{{suffix}}.tsv",
            modality=DIVERSITY_MODALITIES,
            metric=DIVERSITY_METRICS,
            suffix=["", ".tests"],
        )
        + [
            path
            for modality in DIVERSITY_MODALITIES
            for contrast in DIVERSITY_CONTRASTS
            for stem in ["alpha_paired", "shift"]
            + [f"pcoa_{metric}" for metric in DIVERSITY_METRICS]
            for path in figure_paths(f"diversity/{modality}/{contrast}/{stem}")
        ]
    )


# end of run: the β metrics left out as undefined for some pairs, the primary used instead
RUN_SUMMARY.append(diversity_run_summary)
