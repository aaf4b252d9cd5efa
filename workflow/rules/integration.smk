# Integration: which microbes, metabolites and peripheral immune subsets move
# together after treatment. Each integrated modality is prepared (compositions
# prevalence-filtered and CLR-transformed, immune proportions logit-transformed,
# processed metabolomics left on its log2 scale); every pair of modalities of
# different kinds (microbial - metabolome - immune) gives an association block:
# (partial) Spearman correlations of all feature pairs in the baseline, post and
# change (post - baseline) views, BH FDR per block and view. MOFA+ finds latent
# factors on the subject x timepoint units with every modality, tested against
# time and response. Axis triads microbe -> metabolite -> immune are chains of
# significant, sign-consistent change-view links, each tested by mediation
# analysis. Parameters come from the config's `integration` section (plus the
# design, the response definition and the seed). Outputs: results/integration/;
# figures: results/figures/integration/. Plot rules read result tables only.
# Study types: without a response the factors are tested against time only and
# the figures show no response groups (responders.tsv is not read); without
# contrasts (baseline-only) only the baseline view of each block runs (no
# change view, no MOFA+, no triads; see results/study.tsv).

INTEGRATION = config["integration"]
INTEGRATION_DIR = "results/integration"
INTEGRATION_RESPONSE = RESPONSE
# the responder labels, read only when the study has a response
INTEGRATION_RESPONDERS = "results/clinical/responders.tsv" if RESPONSE else []
INTEGRATION_FIGURES = "integration"

from gutaxis.integration.design import integration_design

try:
    INTEGRATION_DESIGN = integration_design(config)
except InputError as err:
    # like common.smk: one message naming the key and the fix, no traceback
    print(err, file=sys.stderr)
    sys.exit(1)

# modalities in axis order (microbial, metabolome, immune); empty = nothing to integrate
# (none in a cohort study, which runs its formula models only)
INTEGRATION_MODALITIES = (
    INTEGRATION_DESIGN.modalities if STUDY.study_type != "cohort" else []
)
INTEGRATION_PATTERN = "|".join(INTEGRATION_MODALITIES) or "(?!)"
INTEGRATION_PRE = INTEGRATION_DESIGN.pre
INTEGRATION_POST = INTEGRATION_DESIGN.post
INTEGRATION_VIEWS = INTEGRATION_DESIGN.views
INTEGRATION_BLOCKS = INTEGRATION_DESIGN.blocks
INTEGRATION_BLOCK_PATTERN = "|".join(INTEGRATION_BLOCKS) or "(?!)"
INTEGRATION_VIEW_PATTERN = "|".join(INTEGRATION_VIEWS) or "(?!)"
INTEGRATION_COVARIATES = INTEGRATION_DESIGN.covariates
INTEGRATION_IMMUNE = INTEGRATION_DESIGN.of_kind("immune")
# views of the MOFA+ fit (integration.mofa.modalities; empty = every integrated modality)
INTEGRATION_MOFA_MODALITIES = INTEGRATION_DESIGN.mofa_modalities
# metabolome modalities' platform gaps: MOFA uses pre and post, so a feature not measured
# at either is left out of its view
INTEGRATION_MOFA_STRUCTURES = {
    m: analysis_structure(m)
    for m in INTEGRATION_MOFA_MODALITIES
    if analysis_structure(m)
}
# microbe, metabolite and immune layers of the triads and the network; "none" placeholders
# keep the rules parseable when a layer is missing (their outputs are then not requested)
INTEGRATION_TRIAD = [m or "none" for m in INTEGRATION_DESIGN.triad]
INTEGRATION_LINKS_XM, INTEGRATION_LINKS_MY = [
    f"{INTEGRATION_DIR}/associations/{block}_change.tsv"
    for block in (INTEGRATION_DESIGN.triad_blocks or ["none", "none"])
]
# prepared tables: results/integration/prepared/<modality>.<suffix>
INTEGRATION_PREPARED = "results/integration/prepared/{}.{}"
INTEGRATION_TRIAD_FEATURES = [
    INTEGRATION_PREPARED.format(m, "features.tsv") for m in INTEGRATION_TRIAD
]
INTEGRATION_TRIAD_NOTES = [
    INTEGRATION_PREPARED.format(m, "notes.tsv") for m in INTEGRATION_TRIAD
]


# plots run on the submitting host, not as cluster jobs
localrules:
    plot_integration_immune_dynamics,
    plot_integration_heatmap,
    plot_integration_network,
    plot_integration_mofa_variance,
    plot_integration_mofa_scores,
    plot_integration_triads,


rule integration_prepare:
    input:
        table=analysis_table,
        features=analysis_features,
        notes="results/import/{modality}.notes.tsv",
    output:
        table=f"{INTEGRATION_DIR}/prepared/{{modality}}.tsv",
        features=f"{INTEGRATION_DIR}/prepared/{{modality}}.features.tsv",
        dropped=f"{INTEGRATION_DIR}/prepared/{{modality}}.dropped.tsv",
        notes=f"{INTEGRATION_DIR}/prepared/{{modality}}.notes.tsv",
    wildcard_constraints:
        modality=INTEGRATION_PATTERN,
    log:
        "logs/integration/prepare_{modality}.log",
    benchmark:
        "logs/benchmarks/integration/prepare_{modality}.tsv"
    # stats, not integration: the transforms use scikit-bio's CLR
    conda:
        "../envs/stats.yaml"
    resources:
        mem_mb=memory_mb(1000, 15),
        runtime=runtime_minutes(10, 20),
    params:
        kind=modality_setting("kind"),
        transform=modality_setting("transform"),
        label=modality_setting("path"),
        clr_pseudocount_fraction=config["clr_pseudocount_fraction"],
        min_prevalence=INTEGRATION["min_prevalence"],
        detection_limit=INTEGRATION["detection_limit"],
    script:
        "../scripts/integration_prepare.py"


rule integration_associations:
    input:
        a=block_prepared(0, "tsv"),
        b=block_prepared(1, "tsv"),
        features_a=block_prepared(0, "features.tsv"),
        features_b=block_prepared(1, "features.tsv"),
        samples="results/inputs/samples.tsv",
        subjects="results/inputs/subjects.tsv",
        structures=block_structure_files,
    output:
        table=f"{INTEGRATION_DIR}/associations/{{block}}_{{view}}.tsv",
        dropped=f"{INTEGRATION_DIR}/associations/{{block}}_{{view}}.dropped.tsv",
        summary=f"{INTEGRATION_DIR}/associations/{{block}}_{{view}}.summary.tsv",
        heatmap=f"{INTEGRATION_DIR}/associations/{{block}}_{{view}}.heatmap.tsv",
    wildcard_constraints:
        block=INTEGRATION_BLOCK_PATTERN,
        view=INTEGRATION_VIEW_PATTERN,
    log:
        "logs/integration/associations_{block}_{view}.log",
    benchmark:
        "logs/benchmarks/integration/integration_associations_{block}_{view}.tsv"
    conda:
        "../envs/integration.yaml"
    threads: 2 if INTEGRATION["n_perm"] > 0 else 1
    resources:
        # the long table of all pairs dominates: ~100 bytes per pair
        mem_mb=integration_associations_mem_mb,
        runtime=integration_associations_runtime,
    params:
        modality_a=block_modality(0),
        modality_b=block_modality(1),
        structures=block_structures,
        pre=INTEGRATION_PRE,
        post=INTEGRATION_POST,
        method=INTEGRATION["method"],
        covariates=INTEGRATION_COVARIATES,
        n_perm=INTEGRATION["n_perm"],
        permutation_strata=INTEGRATION["permutation_strata"],
        max_q=INTEGRATION["max_q"],
        top_k=INTEGRATION["top_k"],
        heatmap=INTEGRATION["heatmap"],
        seed=config["seed"],
        samples_label=config["samples"],
        subjects_label=config["subjects"],
    script:
        "../scripts/integration_associations.py"


rule integration_mofa:
    input:
        tables=expand(
            f"{INTEGRATION_DIR}/prepared/{{modality}}.tsv",
            modality=INTEGRATION_MOFA_MODALITIES,
        ),
        samples="results/inputs/samples.tsv",
        responders=INTEGRATION_RESPONDERS,
        structures=list(INTEGRATION_MOFA_STRUCTURES.values()),
    output:
        status=report(
            f"{INTEGRATION_DIR}/mofa/status.tsv",
            caption="../report/integration_mofa_status.rst",
            category="Integration",
            subcategory="Latent factors (MOFA+)",
            labels={"table": "MOFA+ fit status"},
        ),
        variance_explained=f"{INTEGRATION_DIR}/mofa/variance_explained.tsv",
        factors=f"{INTEGRATION_DIR}/mofa/factors.tsv",
        loadings=f"{INTEGRATION_DIR}/mofa/loadings.tsv",
        factor_tests=report(
            f"{INTEGRATION_DIR}/mofa/factor_tests.tsv",
            caption="../report/integration_mofa_tests.rst",
            category="Integration",
            subcategory="Latent factors (MOFA+)",
            labels={"table": "Factor scores vs time and response"},
        ),
        samples=f"{INTEGRATION_DIR}/mofa/samples.tsv",
        dropped=f"{INTEGRATION_DIR}/mofa/dropped_features.tsv",
    log:
        "logs/integration/mofa.log",
    benchmark:
        "logs/benchmarks/integration/integration_mofa.tsv"
    conda:
        "../envs/integration.yaml"
    # one BLAS thread keeps the fit byte-reproducible
    threads: 1
    resources:
        mem_mb=memory_mb(2000, 20),
        runtime=runtime_minutes(10, 2),
    params:
        modalities=INTEGRATION_MOFA_MODALITIES,
        structures=INTEGRATION_MOFA_STRUCTURES,
        pre=INTEGRATION_PRE,
        post=INTEGRATION_POST,
        mofa=INTEGRATION["mofa"],
        seed=config["seed"],
        response=INTEGRATION_RESPONSE,
        samples_label=config["samples"],
    script:
        "../scripts/integration_mofa.py"


rule integration_triads:
    input:
        microbes=INTEGRATION_PREPARED.format(INTEGRATION_TRIAD[0], "tsv"),
        metabolites=INTEGRATION_PREPARED.format(INTEGRATION_TRIAD[1], "tsv"),
        immune=INTEGRATION_PREPARED.format(INTEGRATION_TRIAD[2], "tsv"),
        links_xm=INTEGRATION_LINKS_XM,
        links_my=INTEGRATION_LINKS_MY,
        samples="results/inputs/samples.tsv",
        subjects="results/inputs/subjects.tsv",
    output:
        triads=report(
            f"{INTEGRATION_DIR}/triads.tsv",
            caption="../report/integration_triads_table.rst",
            category="Integration",
            subcategory="Axis triads",
            labels={"table": "Microbe -> metabolite -> immune triads"},
        ),
        candidates=f"{INTEGRATION_DIR}/triads_candidates.tsv",
        summary=f"{INTEGRATION_DIR}/triads_summary.tsv",
        data=f"{INTEGRATION_DIR}/triads_data.tsv",
    log:
        "logs/integration/triads.log",
    benchmark:
        "logs/benchmarks/integration/integration_triads.tsv"
    conda:
        "../envs/integration.yaml"
    threads: 2
    resources:
        mem_mb=memory_mb(2000, 10),
        # measured: ~6 ms per bootstrap replicate and triad on one core
        runtime=integration_triads_runtime,
    params:
        modalities=INTEGRATION_TRIAD,
        pre=INTEGRATION_PRE,
        post=INTEGRATION_POST,
        covariates=INTEGRATION_COVARIATES,
        triads=INTEGRATION["triads"],
        seed=config["seed"],
        samples_label=config["samples"],
        subjects_label=config["subjects"],
    script:
        "../scripts/integration_triads.py"


# ----------------------------------------------------------------------- figures


rule plot_integration_immune_dynamics:
    input:
        table=f"{INTEGRATION_DIR}/prepared/{{modality}}.tsv",
        notes=f"{INTEGRATION_DIR}/prepared/{{modality}}.notes.tsv",
        samples="results/inputs/samples.tsv",
        responders=INTEGRATION_RESPONDERS,
    output:
        figures=report(
            figure_paths(f"{INTEGRATION_FIGURES}/{{modality}}_dynamics"),
            caption="../report/integration_immune_dynamics.rst",
            category="Integration",
            subcategory="Immune subsets",
            labels={"modality": "{modality}", "figure": "Paired dynamics by response"},
        ),
        source=f"results/figures/{INTEGRATION_FIGURES}/{{modality}}_dynamics.source.tsv",
    wildcard_constraints:
        modality="|".join(INTEGRATION_IMMUNE) or "(?!)",
    log:
        "logs/figures/integration_dynamics_{modality}.log",
    benchmark:
        "logs/benchmarks/figures/integration_dynamics_{modality}.tsv"
    conda:
        "../envs/plots.yaml"
    params:
        figure="dynamics",
        style=plot_style(f"{INTEGRATION_FIGURES}/{{modality}}_dynamics"),
        pre=INTEGRATION_PRE,
        post=INTEGRATION_POST,
        response=INTEGRATION_RESPONSE,
        title=modality_title,
        samples_label=config["samples"],
    script:
        "../scripts/plot_integration.py"


rule plot_integration_heatmap:
    input:
        heatmap=f"{INTEGRATION_DIR}/associations/{{block}}_{{view}}.heatmap.tsv",
        summary=f"{INTEGRATION_DIR}/associations/{{block}}_{{view}}.summary.tsv",
    output:
        figures=report(
            figure_paths(f"{INTEGRATION_FIGURES}/heatmap_{{block}}_{{view}}"),
            caption="../report/integration_heatmap.rst",
            category="Integration",
            subcategory="Association blocks",
            labels={
                "block": "{block}",
                "view": "{view}",
                "figure": "Clustered heatmap",
            },
        ),
        source=f"results/figures/{INTEGRATION_FIGURES}/heatmap_{{block}}_{{view}}.source.tsv",
    wildcard_constraints:
        block=INTEGRATION_BLOCK_PATTERN,
        view=INTEGRATION_VIEW_PATTERN,
    log:
        "logs/figures/integration_heatmap_{block}_{view}.log",
    benchmark:
        "logs/benchmarks/figures/integration_heatmap_{block}_{view}.tsv"
    conda:
        "../envs/plots.yaml"
    params:
        figure="heatmap",
        style=plot_style(f"{INTEGRATION_FIGURES}/heatmap_{{block}}_{{view}}"),
        mark_q=INTEGRATION["heatmap"]["mark_q"],
        modality_a=block_modality(0),
        modality_b=block_modality(1),
    script:
        "../scripts/plot_integration.py"


rule plot_integration_network:
    input:
        links_xm=INTEGRATION_LINKS_XM,
        links_my=INTEGRATION_LINKS_MY,
        features=INTEGRATION_TRIAD_FEATURES,
    output:
        figures=report(
            figure_paths(f"{INTEGRATION_FIGURES}/network"),
            caption="../report/integration_network.rst",
            category="Integration",
            subcategory="Axis triads",
            labels={"figure": "Three-layer network of change-view links"},
        ),
        source=f"results/figures/{INTEGRATION_FIGURES}/network.source.tsv",
    log:
        "logs/figures/integration_network.log",
    benchmark:
        "logs/benchmarks/figures/integration_network.tsv"
    conda:
        "../envs/plots.yaml"
    params:
        figure="network",
        style=plot_style(f"{INTEGRATION_FIGURES}/network"),
        modalities=INTEGRATION_TRIAD,
        network=INTEGRATION["network"],
    script:
        "../scripts/plot_integration.py"


rule plot_integration_mofa_variance:
    input:
        variance_explained=f"{INTEGRATION_DIR}/mofa/variance_explained.tsv",
        status=f"{INTEGRATION_DIR}/mofa/status.tsv",
    output:
        figures=report(
            figure_paths(f"{INTEGRATION_FIGURES}/mofa_variance"),
            caption="../report/integration_mofa_variance.rst",
            category="Integration",
            subcategory="Latent factors (MOFA+)",
            labels={"figure": "Variance explained per factor and view"},
        ),
        source=f"results/figures/{INTEGRATION_FIGURES}/mofa_variance.source.tsv",
    log:
        "logs/figures/integration_mofa_variance.log",
    benchmark:
        "logs/benchmarks/figures/integration_mofa_variance.tsv"
    conda:
        "../envs/plots.yaml"
    params:
        figure="mofa_variance",
        style=plot_style(f"{INTEGRATION_FIGURES}/mofa_variance"),
    script:
        "../scripts/plot_integration.py"


rule plot_integration_mofa_scores:
    input:
        factors=f"{INTEGRATION_DIR}/mofa/factors.tsv",
        factor_tests=f"{INTEGRATION_DIR}/mofa/factor_tests.tsv",
        status=f"{INTEGRATION_DIR}/mofa/status.tsv",
        responders=INTEGRATION_RESPONDERS,
    output:
        figures=report(
            figure_paths(f"{INTEGRATION_FIGURES}/mofa_scores"),
            caption="../report/integration_mofa_scores.rst",
            category="Integration",
            subcategory="Latent factors (MOFA+)",
            labels={"figure": "Factor scores by timepoint and response"},
        ),
        source=f"results/figures/{INTEGRATION_FIGURES}/mofa_scores.source.tsv",
    log:
        "logs/figures/integration_mofa_scores.log",
    benchmark:
        "logs/benchmarks/figures/integration_mofa_scores.tsv"
    conda:
        "../envs/plots.yaml"
    params:
        figure="mofa_scores",
        style=plot_style(f"{INTEGRATION_FIGURES}/mofa_scores"),
        pre=INTEGRATION_PRE,
        post=INTEGRATION_POST,
        response=INTEGRATION_RESPONSE,
    script:
        "../scripts/plot_integration.py"


rule plot_integration_triads:
    input:
        triads=f"{INTEGRATION_DIR}/triads.tsv",
        data=f"{INTEGRATION_DIR}/triads_data.tsv",
        summary=f"{INTEGRATION_DIR}/triads_summary.tsv",
        features=INTEGRATION_TRIAD_FEATURES,
        notes=INTEGRATION_TRIAD_NOTES,
        responders=INTEGRATION_RESPONDERS,
    output:
        figures=report(
            figure_paths(f"{INTEGRATION_FIGURES}/triads"),
            caption="../report/integration_triads.rst",
            category="Integration",
            subcategory="Axis triads",
            labels={"figure": "Top triads"},
        ),
        source=f"results/figures/{INTEGRATION_FIGURES}/triads.source.tsv",
        panel=report(
            f"results/figures/main/panels/{INTEGRATION_FIGURES}/triads.png",
            caption="../report/main_panels.rst",
            category="Main figures",
            subcategory="Panels",
            labels={"panel": "Top triads"},
        ),
        panel_source=f"results/figures/main/panels/{INTEGRATION_FIGURES}/triads.source.tsv",
    log:
        "logs/figures/integration_triads.log",
    benchmark:
        "logs/benchmarks/figures/integration_triads.tsv"
    conda:
        "../envs/plots.yaml"
    params:
        figure="triads",
        style=plot_style(f"{INTEGRATION_FIGURES}/triads"),
        pre=INTEGRATION_PRE,
        post=INTEGRATION_POST,
        response=INTEGRATION_RESPONSE,
        fdr_level=INTEGRATION["triads"]["fdr_level"],
        modalities=INTEGRATION_TRIAD,
    script:
        "../scripts/plot_integration.py"


# the last view (change; the baseline view of a baseline-only study) gets heatmaps
INTEGRATION_FIGURE_VIEW = INTEGRATION_VIEWS[-1] if INTEGRATION_VIEWS else ""
if INTEGRATION_MODALITIES:
    FINAL_OUTPUTS.extend(
        [INTEGRATION_PREPARED.format(m, "tsv") for m in INTEGRATION_MODALITIES]
        + expand(
            f"{INTEGRATION_DIR}/associations/{{block}}_{{view}}.tsv",
            block=INTEGRATION_BLOCKS,
            view=INTEGRATION_VIEWS,
        )
        + [
            path
            for block in INTEGRATION_BLOCKS
            for path in figure_paths(
                f"{INTEGRATION_FIGURES}/heatmap_{block}_{INTEGRATION_FIGURE_VIEW}"
            )
        ]
    )
# MOFA+ and the immune dynamics need the pre and post samples of a contrast
if INTEGRATION_MODALITIES and INTEGRATION_POST:
    FINAL_OUTPUTS.extend(
        [
            f"{INTEGRATION_DIR}/mofa/{name}.tsv"
            for name in (
                "status",
                "variance_explained",
                "factors",
                "loadings",
                "factor_tests",
            )
        ]
        + figure_paths(f"{INTEGRATION_FIGURES}/mofa_variance")
        + figure_paths(f"{INTEGRATION_FIGURES}/mofa_scores")
        + [
            path
            for modality in INTEGRATION_IMMUNE
            for path in figure_paths(f"{INTEGRATION_FIGURES}/{modality}_dynamics")
        ]
    )
if INTEGRATION_MODALITIES and INTEGRATION_DESIGN.triad_blocks:
    FINAL_OUTPUTS.extend(
        [f"{INTEGRATION_DIR}/triads.tsv", f"{INTEGRATION_DIR}/triads_data.tsv"]
        + figure_paths(f"{INTEGRATION_FIGURES}/network")
        + figure_paths(f"{INTEGRATION_FIGURES}/triads")
    )
