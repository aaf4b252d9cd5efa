# Shared setup: the library on the path, the config validated and filled with
# its defaults, the sheets checked, and the input, params and resource functions
# of every rule file (named functions; the rule files define none).
# Any problem with the config or the sheets stops here, before a job runs,
# with one message that names the file, the row or key, and the fix.

import logging
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(workflow.basedir) / "workflow" / "scripts"))

from gutaxis.console import quiet_console
from gutaxis.diversity.design import beta_metric_summary
from gutaxis.integration.design import count_pairs
from gutaxis.io.errors import InputError, Problem
from gutaxis.runner import input_error_messages
from gutaxis.io.sample_qc import not_analysed_summary
from gutaxis.io.study import load_study
from gutaxis.metabolome.structure import missingness_run_summary
from gutaxis.models.config import set_estimators
from gutaxis.plots.style import (
    figure_override,
    figure_stem,
    override_matches,
    resolve_style,
    select_panels,
    unmatched_overrides,
)

try:
    _study = load_study(config, preflight=workflow.is_main_process)
except InputError as err:
    # the message names file, row and fix; a traceback would only hide it
    print(err, file=sys.stderr)
    sys.exit(1)
config.update(_study["config"])
SHEETS = _study["sheets"]
# what the study can have (gutaxis.io.design.plan_study): response, contrasts, endpoints
STUDY = _study["plan"]

if workflow.is_main_process:
    # what this study can have, and what it cannot (one line; results/study.tsv)
    print(f"gutaxis: {STUDY.summary()}", file=sys.stderr)

# input errors of this run's jobs are those written after it started
RUN_STARTED = time.time()


def start_quiet_console():
    """One console line per finished job from here on (the job blocks stay in the run's
    log, .snakemake/log/); GUTAXIS_CONSOLE=full keeps Snakemake's console. True when the
    console handler was found (it exists once Snakemake has set up its logging)."""
    if os.environ.get("GUTAXIS_CONSOLE", "quiet") == "full":
        return True
    return quiet_console(logging.getLogger("snakemake.logging"))


# a run (not a dry run, which prints the plan in full) is quiet from its banner on; when
# the workflow is parsed only the logging settings know whether this is a dry run
_LOGGING = getattr(getattr(workflow, "logger_manager", None), "settings", None)
QUIET_CONSOLE = not getattr(_LOGGING, "dryrun", True) and start_quiet_console()
MODALITIES = sorted(config["modalities"])
# the paired contrasts (none in a baseline-only study)
CONTRASTS = [c["name"] for c in STUDY.contrasts]
# the responder definition the omics modules compare ("" when the study has no response)
RESPONSE = STUDY.response or ""
FIGURE_FORMATS = config["style"]["formats"]
# Every rule's outputs that `rule all` builds; each module file adds its own.
FINAL_OUTPUTS = []
# Functions returning lines for the end-of-run summary; a module adds its own.
RUN_SUMMARY = []


wildcard_constraints:
    modality="|".join(MODALITIES),
    contrast="|".join(CONTRASTS) if CONTRASTS else "NONE",
    fmt="|".join(FIGURE_FORMATS),


# ----------------------------------------------------------------------------
# Functions of the rule files. Snakemake's linter wants rule files without
# function definitions, so the input, params and resource functions of every
# module live here: first those several modules use, then one section per rule
# file. They read the modules' constants (DIFFERENTIAL_CONTRASTS, MODEL_SETS,
# ...) when a job is planned, after every rule file has been parsed.


def modality_config(wildcards):
    """The config entry (`modalities.<name>`) of the job's modality."""
    return config["modalities"][wildcards.modality]


def modality_input(wildcards):
    """The raw table of the job's modality, as the config names it."""
    return config["modalities"][wildcards.modality]["path"]


def modalities_of_kind(*kinds):
    """The configured modalities whose kind is one of `kinds`, sorted by name."""
    return [m for m in MODALITIES if config["modalities"][m]["kind"] in kinds]


# The downstream contract: differential and integration rules take their table
# and annotations from these two, e.g. `table=analysis_table` (an input
# function of the `modality` wildcard) or `analysis_table("metabolites")`.
def analysis_table(modality):
    """The samples x features table a downstream module analyses: the processed
    (log2) table for metabolome kinds, the import otherwise."""
    name = getattr(modality, "modality", modality)
    if config["modalities"][name]["kind"] == "metabolome":
        return f"results/metabolome/{name}/processed.tsv"
    return f"results/import/{name}.tsv"


def analysis_features(modality):
    """Feature annotations aligned with analysis_table(modality)."""
    name = getattr(modality, "modality", modality)
    if config["modalities"][name]["kind"] == "metabolome":
        return f"results/metabolome/{name}/features.tsv"
    return f"results/import/{name}.features.tsv"


def analysis_structure(modality):
    """The features not measured per group (platform gaps) of a metabolome modality,
    which every module that uses those groups leaves out; none for other kinds."""
    name = getattr(modality, "modality", modality)
    if config["modalities"][name]["kind"] == "metabolome":
        return f"results/metabolome/{name}/missingness_structure.tsv"
    return []


def wildcard_value(name):
    """Params function returning the job's value of the wildcard `name`."""

    def value(wildcards):
        """The job's value of the wildcard."""
        return getattr(wildcards, name)

    return value


def wildcard_lookup(table, wildcard):
    """Input/params function returning `table`'s entry for the job's `wildcard`,
    e.g. `contrast=wildcard_lookup(DIFFERENTIAL_CONTRASTS, "contrast")`."""

    def entry(wildcards):
        """The table's entry named by the job's wildcard."""
        return table[getattr(wildcards, wildcard)]

    return entry


# `default` of modality_setting when the key must be present
_REQUIRED = object()


def modality_setting(key, default=_REQUIRED):
    """Params function returning `key` of the job's modality's config entry (or
    `default` when given and the entry has no such key)."""

    def setting(wildcards):
        """The setting of the job's modality."""
        spec = config["modalities"][wildcards.modality]
        return spec[key] if default is _REQUIRED else spec.get(key, default)

    return setting


def memory_mb(minimum, per_input_mb, fixed=0):
    """Resource function returning `mem_mb`: max(minimum, fixed + per_input_mb x
    input size in MB), doubled on the second attempt, tripled on the third."""

    def mem_mb(wildcards, input, attempt):
        """Memory (MB) of this attempt of the job."""
        return max(minimum, fixed + per_input_mb * input.size_mb) * attempt

    return mem_mb


def runtime_minutes(minimum, input_mb_per_minute):
    """Resource function returning `runtime`: max(minimum, one minute per
    `input_mb_per_minute` MB of input) minutes, times the attempt."""

    def runtime(wildcards, input, attempt):
        """Run time (minutes) of this attempt of the job."""
        return max(minimum, input.size_mb // input_mb_per_minute) * attempt

    return runtime


def figure_paths(stem):
    """One path per configured format for the figure `results/figures/<stem>`."""
    return expand("results/figures/{stem}.{fmt}", stem=stem, fmt=FIGURE_FORMATS)


# Figure titles name a modality by what it measures and its config name.
KIND_TITLES = {
    "taxonomy": "Gut microbiome",
    "function": "Microbial functions",
    "metabolome": "Metabolome",
    "immune": "Immune subsets",
}


def modality_title(modality):
    """`Gut microbiome (taxa)`: a modality (a name, or a job's wildcards, as in
    `title=modality_title`) as figure titles name it."""
    name = getattr(modality, "modality", modality)
    spec = config["modalities"][name]
    # densities of tumour biopsies, not blood subsets
    if spec["sample_type"] == "tissue":
        return f"Tumour tissue ({name})"
    return f"{KIND_TITLES.get(spec['kind'], spec['kind'])} ({name})"


def plot_style(stem):
    """`params: style=plot_style("<figure stem pattern>")` of every plot rule.

    The style section with the override of the figure this job draws (its stem,
    the pattern with the job's wildcards filled in) and no other, so editing one
    figure's override reruns that figure alone. A function of the wildcards only:
    Snakemake does not compare params that depend on output files, and a style
    change must rerun the plot job.
    """

    def style(wildcards):
        """The resolved style of the job's figure."""
        return resolve_style(config["style"], stem.format(**dict(wildcards.items())))

    return style


def if_written(path):
    """``[path]`` when this study's workflow writes it (a final output), else ``[]``: an
    optional input of a rule planned after the modules (the study summary)."""
    return [path] if path in FINAL_OUTPUTS else []


def final_outputs():
    """Every output `rule all` builds (FINAL_OUTPUTS, filled by the module files)."""
    return FINAL_OUTPUTS


# ------------------------------------------------------------- metabolome.smk


def metabolome_run_summary():
    """End-of-run lines: metabolites left out of a contrast as not measured at one
    of its timepoints."""
    return missingness_run_summary(
        {
            m: f"{METABOLOME_DIR.format(modality=m)}/contrast_missingness.tsv"
            for m in METABOLOME_MODALITIES
        }
    )


# -------------------------------------------------------------- diversity.smk


def diversity_title(wildcards):
    """`<modality title>: <pre> → <post>`, the title of a diversity figure."""
    contrast = DIVERSITY_CONTRASTS[wildcards.contrast]
    return "{}: {} \u2192 {}".format(
        modality_title(wildcards.modality), contrast["pre"], contrast["post"]
    )


def diversity_baseline_title(wildcards):
    """`<modality title>: <baseline>`, the title of a baseline diversity figure."""
    return f"{modality_title(wildcards.modality)}: {config['design']['baseline']}"


def diversity_run_summary():
    """End-of-run lines: the β metrics left out as undefined for some pairs, and the
    primary metric used instead."""
    return beta_metric_summary(
        {m: f"results/diversity/{m}/beta_metrics.tsv" for m in DIVERSITY_MODALITIES}
    )


# ----------------------------------------------------------- differential.smk


def differential_title(wildcards):
    """`<modality title>: <pre> → <post>`, the title of a differential figure."""
    return (
        f"{modality_title(wildcards.modality)}: "
        f"{DIFFERENTIAL_TITLES[wildcards.contrast]}"
    )


def differential_baseline_title(wildcards):
    """The title of the baseline responder volcano of the job's modality."""
    return (
        f"{modality_title(wildcards.modality)}: responders vs non-responders at "
        f"{config['design']['baseline']}"
    )


# ------------------------------------------------------------ integration.smk


def block_modality(side):
    """Params function returning the modality on `side` (0 = a, 1 = b) of the
    job's integration block."""

    def modality(wildcards):
        """The block's modality on that side."""
        return INTEGRATION_BLOCKS[wildcards.block][side]

    return modality


def block_prepared(side, suffix):
    """Input function returning results/integration/prepared/<modality>.<suffix> of
    the modality on `side` (0 = a, 1 = b) of the job's integration block."""
    side_modality = block_modality(side)

    def prepared(wildcards):
        """The prepared table (or its annotations) of that side."""
        return INTEGRATION_PREPARED.format(side_modality(wildcards), suffix)

    return prepared


def block_structures(wildcards):
    """Modality -> missingness_structure.tsv of the metabolome sides of an integration
    block (INTEGRATION_BLOCKS is defined in integration.smk)."""
    pair = INTEGRATION_BLOCKS[wildcards.block]
    return {m: analysis_structure(m) for m in pair if analysis_structure(m)}


def block_structure_files(wildcards):
    """The missingness_structure.tsv files of the job's integration block."""
    return list(block_structures(wildcards).values())


def integration_block_pairs(wildcards):
    """The number of feature pairs of the job's block (prepared tables' columns)."""
    return count_pairs(
        INTEGRATION_PREPARED.format(m, "tsv") for m in INTEGRATION_BLOCKS[wildcards.block]
    )


def integration_associations_mem_mb(wildcards, input, attempt):
    """Memory (MB) of an association block: the long table of all pairs dominates,
    ~100 bytes per pair, beside four copies of the input."""
    return (
        max(1000, 4 * input.size_mb + 1e-4 * integration_block_pairs(wildcards)) * attempt
    )


def integration_associations_runtime(wildcards, attempt):
    """Run time (minutes) of an association block, from its pairs and permutations."""
    return (
        max(
            10,
            1e-5 * integration_block_pairs(wildcards) * (1 + INTEGRATION["n_perm"] / 100),
        )
        * attempt
    )


def integration_triads_runtime(wildcards, attempt):
    """Run time (minutes) of the triads: measured ~6 ms per bootstrap replicate and
    triad on one core."""
    return (
        max(
            10,
            INTEGRATION["triads"]["max_triads"]
            * INTEGRATION["triads"]["n_rep"]
            * 0.006
            / 60,
        )
        * attempt
    )


# ----------------------------------------------------------------- models.smk


def model_set(wildcards):
    """The spec of the job's feature set (`models.feature_sets` entry)."""
    return MODEL_SETS[wildcards.feature_set]


def model_blocks(wildcards):
    """The modalities (blocks) of the job's feature set."""
    return model_set(wildcards)["blocks"]


def model_tables(wildcards):
    """The analysis tables of the job's feature set's blocks."""
    return [analysis_table(m) for m in model_blocks(wildcards)]


def model_structures(wildcards):
    """Block -> missingness_structure.tsv of a model feature set's metabolome blocks
    (MODEL_SETS is defined in models.smk)."""
    return {
        m: analysis_structure(m) for m in model_blocks(wildcards) if analysis_structure(m)
    }


def model_structure_files(wildcards):
    """The missingness_structure.tsv files of the job's feature set."""
    return list(model_structures(wildcards).values())


def model_estimators(wildcards):
    """The estimators the job's feature set fits."""
    return set_estimators(config, model_set(wildcards))


def model_permutation_test(wildcards):
    """Whether the job's feature set gets the label-permutation test (default yes)."""
    return model_set(wildcards).get("permutation_test", True)


def model_modality_configs(wildcards):
    """Block -> config entry of the modalities of the job's feature set."""
    return {m: config["modalities"][m] for m in model_blocks(wildcards)}


def models_fit_runtime(wildcards, input, attempt):
    """Run time (minutes) of a model fit: two minutes per MB of tables, at least 30."""
    return max(30, 2 * input.size_mb) * attempt


# ---------------------------------------------------------------- figures.smk

# Main (paper) figures: see figures.smk; MAIN_RASTER is set there. A panel is a
# module figure's raster, or, under main/panels/, the compact version of a module
# figure (the facets a paper shows) that the module's plot job writes as a PNG.
MAIN_PANELS = "main/panels/"


def main_panel_path(stem):
    """The raster a main figure places for the panel `stem`."""
    if stem.startswith(MAIN_PANELS):
        return f"results/figures/{stem}.png"
    return f"results/figures/{stem}.{MAIN_RASTER}"


def _main_panel(stem):
    """`stem` when this run builds its module figure, else None."""
    full = stem[len(MAIN_PANELS) :] if stem.startswith(MAIN_PANELS) else stem
    if MAIN_RASTER is None and full == stem:
        return None
    return stem if figure_paths(full)[0] in FINAL_OUTPUTS else None


def _main_figure_panels():
    """Figure number -> rows of cells (panels stacked in a cell) of module figure stems."""
    taxa = modalities_of_kind("taxonomy")[:1]
    metabolome = modalities_of_kind("metabolome")[:1]
    immune = modalities_of_kind("immune")[:1]
    contrast = CONTRASTS[0] if CONTRASTS else "none"
    # Figure 2's PCoA shows the pre-specified primary beta metric (its PERMANOVA is the
    # one called), not whichever metric happens to be listed first
    diversity = config.get("diversity", {})
    metric = (
        diversity.get("primary_metric") or (diversity.get("beta_metrics") or ["none"])[0]
    )
    P = MAIN_PANELS
    # panels keep their native size (and font size) unless a row is wider than the
    # double column: single-column panels side by side, double-column ones alone
    layouts = {
        "1": [[["clinical/waterfall", "clinical/km"], ["clinical/swimmer"]]],
        "2": [
            [[f"{P}diversity/{m}/{contrast}/alpha_paired" for m in taxa]],
            [[f"diversity/{m}/{contrast}/pcoa_{metric}" for m in taxa]]
            + [[f"{P}differential/{m}/{contrast}/volcano" for m in taxa]],
        ],
        "3": [
            [[f"{P}differential/{m}/{contrast}/volcano"] for m in metabolome + immune],
            [[f"{P}differential/{m}/{contrast}/paired" for m in metabolome]],
            [[f"{P}differential/{m}/{contrast}/paired" for m in immune]],
        ],
        "4": [[["integration/network"]], [[f"{P}integration/triads"]]],
        "5": [[[f"{P}models/roc"]], [["models/stability"]]],
    }
    if not CONTRASTS:
        # baseline-only: responders against non-responders at baseline
        layouts["2"] = [
            [[f"diversity/{m}/baseline/pcoa_{metric}" for m in taxa]],
            [[f"differential/{m}/baseline/volcano" for m in taxa]],
        ]
        layouts["3"] = [
            [[f"differential/{m}/baseline/volcano"] for m in metabolome + immune]
        ]
    figures = {}
    for number, rows in layouts.items():
        kept = [[[s for s in cell if _main_panel(s)] for cell in row] for row in rows]
        # style.overrides."main/figureN".panels: the panels to keep (letters or stems)
        built = [s for row in kept for cell in row for s in cell]
        wanted = figure_override(config["style"], f"main/figure{number}")["panels"]
        try:
            chosen = set(select_panels(built, wanted))
        except ValueError as err:
            problem = Problem(
                "config",
                f"key 'style.overrides' (main/figure{number}, panels)",
                str(err),
                "name panels by their letter or module figure",
            )
            print(InputError(problem), file=sys.stderr)
            sys.exit(1)
        kept = [[[s for s in cell if s in chosen] for cell in row] for row in kept]
        kept = [[cell for cell in row if cell] for row in kept]
        kept = [row for row in kept if row]
        if kept:
            figures[number] = kept
    return figures


def main_figure_stems(wildcards):
    """The module figure stems of the job's main figure, row by row."""
    return [s for row in MAIN_FIGURES[wildcards.number] for cell in row for s in cell]


def main_figure_panels(wildcards):
    """The panel rasters the job's main figure places."""
    return [main_panel_path(stem) for stem in main_figure_stems(wildcards)]


def main_figure_sources(wildcards):
    """The source tables of the job's main figure's panels."""
    return [f"results/figures/{stem}.source.tsv" for stem in main_figure_stems(wildcards)]


# ------------------------------------------------------------------- end of run


def print_run_summary(failed=False):
    """At the end of a run: the study type and what was skipped, then the samples not
    analysed per modality with their reasons (results/qc/samples.tsv)."""
    print(f"gutaxis: {STUDY.summary()}", file=sys.stderr)
    for lines in RUN_SUMMARY:
        for line in lines():
            print(f"gutaxis: {line}", file=sys.stderr)
    status_path = Path("results/qc/samples.tsv")
    # after a failed run, a table older than the run may not describe its inputs
    fresh = status_path.is_file() and status_path.stat().st_mtime >= RUN_STARTED - 1
    if status_path.is_file() and (fresh or not failed):
        import pandas as pd

        status = pd.read_csv(status_path, sep="\t", dtype=str, keep_default_na=False)
        lines = not_analysed_summary(status)
        if lines:
            print(
                "gutaxis: samples not analysed (results/qc/samples.tsv lists each):",
                file=sys.stderr,
            )
            for line in lines:
                print(f"  - {line}", file=sys.stderr)
    print_headline(failed)


def print_headline(failed=False):
    """The answers of results/summary.md (its first screen, up to the rule), and its path."""
    path = Path("results/summary.md")
    if failed or not path.is_file():  # after a successful run it is up to date
        return
    head = path.read_text().split("\n---\n")[0].splitlines()
    print("gutaxis: the answers (results/summary.md):", file=sys.stderr)
    for line in head:
        if line.startswith("- ") or line.startswith("**"):
            print(f"  {line.replace('**', '')}", file=sys.stderr)


def print_input_errors():
    """The messages of the jobs that stopped on bad input, once each, last on screen."""
    messages = input_error_messages(since=RUN_STARTED - 1)
    if messages:
        print(
            "\ngutaxis: the run stopped on bad input. Fix it and run again:",
            file=sys.stderr,
        )
        for message in messages:
            print(message, file=sys.stderr)
