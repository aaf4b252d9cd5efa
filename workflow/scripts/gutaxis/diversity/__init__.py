"""Alpha and beta diversity of a count or composition table, and their pre->post change.

Rule file ``workflow/rules/diversity.smk``; results under ``results/diversity/<modality>/``. The
modules: ``filtering`` (prevalence and abundance filter), ``design`` (who each sample is),
``alpha`` (indices and tests of their change), ``beta`` (distances, PCoA, the shift statistics),
``shift`` (the within-subject shift tables) and ``permanova`` (PERMANOVA and PERMDISP with
restricted permutations).
"""
