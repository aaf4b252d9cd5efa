"""Processing of an untargeted metabolomics peak table: filter, correct drift, impute, normalise, transform.

Rule file ``workflow/rules/metabolome.smk``; results under ``results/metabolome/<modality>/``. The
entry point is ``process.process_metabolome``; one module per step family: ``inputs``
(validation), ``params`` (defaults), ``filters`` (blank, missingness, QC RSD), ``drift``
(QC-RLSC), ``impute``, ``normalise``, ``structure`` (features not measured in a group of
samples) and ``qc`` (the tables the QC figures read).
"""
