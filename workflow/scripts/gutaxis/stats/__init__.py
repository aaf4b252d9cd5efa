"""Statistical building blocks shared by several modules, vectorised across features.

No rule file of its own: ``paired`` (paired t, Wilcoxon signed-rank, Hodges-Lehmann),
``rank_shift`` (order statistics of Walsh averages without building them), ``mixed``
(random-intercept linear mixed models with lmerTest inference) and ``logistic`` (many
logistic regressions on one design).
"""
