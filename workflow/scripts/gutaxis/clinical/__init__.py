"""Clinical endpoints: objective response, responder labels, survival and adverse events.

Rule file ``workflow/rules/clinical.smk``; results under ``results/clinical/``. The modules:
``checks`` (vocabularies, flags, times and grades of the subjects and adverse-event tables),
``response`` (ORR/DCR with exact CIs, responder labels), ``survival`` (Kaplan-Meier, log-rank,
Cox PH and cox.zph), ``safety`` (adverse-event incidence and worst grade) and ``tables`` (the
result tables assembled from the checked sheets).
"""
