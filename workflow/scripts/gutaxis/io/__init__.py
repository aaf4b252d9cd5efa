"""Inputs of a study: the config, the sample, subject and adverse-event sheets, and every omics table.

Rule file ``workflow/rules/inputs.smk``; results under ``results/inputs/`` (checked sheets),
``results/import/`` (canonical omics tables), ``results/qc/`` (each sample's fate, each subject's
pairs) and ``results/study.tsv`` (the analyses the design allows). The modules: ``configuration``
(schema, defaults, meaning of a config), ``sheets`` (read and check the sheets), ``importers``
(real tool outputs to samples x features), ``reconcile`` (match a table to the sheet), ``preflight``
and ``study`` (every check of a dry run), ``design`` (study type, response, contrasts, skips),
``pairing`` (each subject's pre and post sample), ``sample_qc``, ``subject_covariates``,
``tables`` (tidy TSV read and written identically), ``settings`` (options objects with keyword
overrides) and ``errors`` (one clear line per problem).
"""
