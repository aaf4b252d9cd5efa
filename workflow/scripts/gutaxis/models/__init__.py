"""Responder models: feature sets, nested cross-validation, performance, biomarkers and their survival.

Rule file ``workflow/rules/models.smk``; results under ``results/models/``. The modules:
``config`` (the section as the rule file reads it), ``features`` (feature sets per subject),
``transformers`` and ``pipeline`` (leakage-free in-fold preprocessing and models), ``fit``
(nested CV, permutation test), ``metrics`` (AUROC with DeLong CI, calibration), ``landmark``
(on-treatment sets counted from their landmark), ``survival`` (Cox and Kaplan-Meier of the
biomarkers) and ``summary`` (the best set and its top biomarkers).
"""
