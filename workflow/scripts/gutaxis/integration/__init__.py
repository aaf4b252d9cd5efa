"""Integration of the omics with each other and with immune data: associations, MOFA+ factors and axis triads.

Rule file ``workflow/rules/integration.smk``; results under ``results/integration/``. The modules:
``design`` (what the module runs on, from the config), ``prepare`` (one modality on the scale the
module correlates), ``views`` (baseline, post and change views of two blocks), ``associations``
((partial) Spearman blocks), ``association_display`` (what a heatmap shows), ``mofa`` (latent
factors) and ``triads`` (microbe -> metabolite -> immune mediation).
"""
