"""ContrastSettings (the settings of one contrast) and the job of the differential rule."""

from __future__ import annotations

from types import SimpleNamespace

import pandas as pd
import pytest

from gutaxis.differential.contrast import ContrastSettings, run_contrast
from gutaxis.differential.run import DifferentialJob, numeric_covariates
from gutaxis.io.settings import with_overrides
from test_differential import CONTRAST, simulate_trial

SECTION = {"alpha": 0.05, "min_pairs": 4, "min_group_size": 3, "methods": ["paired", "mixed"],
           "covariates": ["cohort"], "effect": "mean", "confidence": 0.9,
           "wilcoxon_zero_method": "zsplit", "mixed_df": "z", "bias_correction": "mode",
           "presence_tests": True, "random_effects": ["subject_id"],
           "sensitivity": {"taxonomy": "rank_tests"}, "min_prevalence": 0.1,
           "min_mean_abundance": 0.0, "plot_method": "paired_t"}


def test_settings_from_the_config_section():
    settings = ContrastSettings.from_config(SECTION, modality="taxa", sensitivity="none")
    assert settings.methods == ("paired", "mixed") and settings.covariates == ("cohort",)
    assert settings.wilcoxon_options == {"zero_method": "zsplit"}
    assert (settings.alpha, settings.confidence, settings.mixed_df) == (0.05, 0.9, "z")
    # the config's sensitivity is per modality kind: the caller names the modality's
    assert settings.sensitivity == "none" and settings.modality == "taxa"
    with pytest.raises(TypeError):
        with_overrides(settings, ContrastSettings, {"no_such_setting": 1})


def test_settings_object_and_keywords_give_one_result():
    table, samples, responders, _ = simulate_trial(n_features=15, n_changed=3, effect=1.5, seed=2)
    keywords = dict(methods=("paired",), covariates=(), alpha=0.05, modality="m")
    by_keywords = run_contrast(table, samples, CONTRAST, transform="log2", responders=responders,
                               **keywords)
    by_settings = run_contrast(table, samples, CONTRAST, transform="log2", responders=responders,
                               settings=ContrastSettings(**keywords))
    pd.testing.assert_frame_equal(by_keywords.results, by_settings.results)


def test_job_from_rule_params_keeps_compositional_options_to_compositions():
    params = SimpleNamespace(settings=SECTION, compositional=False, response_column="dcr_recist",
                             modality="metabolites", sensitivity="rank_tests",
                             table_label="peaks.tsv", samples_label="samples.tsv",
                             contrast={"name": "c", "pre": "baseline", "post": "post"},
                             timepoints=["baseline", "post"], transform="none",
                             transform_options={}, clr_pseudocount_fraction=0.5,
                             processed_log2=True)
    job = DifferentialJob.from_params(params)
    assert (job.testing.bias_correction, job.testing.presence_tests) == ("none", False)
    assert job.name == "c" and job.baseline is None and job.testing.file_table == "peaks.tsv"


def test_numeric_covariates_only_where_every_cell_is_a_number():
    subjects = pd.DataFrame({"subject_id": ["1", "2", "3"], "age": ["50", "", "61.5"],
                             "cohort": ["a", "2", ""]})
    out = numeric_covariates(subjects, ["age", "cohort", "subject_id", "absent"])
    assert out["age"].tolist()[::2] == [50.0, 61.5] and pd.isna(out["age"][1])
    assert out["cohort"].tolist() == ["a", "2", ""] and out["subject_id"].tolist() == ["1", "2", "3"]
