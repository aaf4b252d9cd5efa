"""results/summary.md from the tables the study wrote (gutaxis.summary.summary_markdown)."""

import sys

sys.path.insert(0, snakemake.scriptdir)

from gutaxis.runner import run
from gutaxis.summary import landing_rst, summary_markdown
from gutaxis.io.tables import read_tsv


def _one(paths):
    return read_tsv(paths[0]) if paths else None


def main(smk):
    p = smk.params
    text = summary_markdown(
        p.title, read_tsv(smk.input.study, dtype=str), read_tsv(smk.input.samples, dtype=str),
        response=_one(smk.input.response), survival=_one(smk.input.survival),
        calls={tuple(key): read_tsv(path) for key, path in zip(p.calls, smk.input.calls)},
        alpha_tests={m: read_tsv(path) for m, path in zip(p.alpha_modalities, smk.input.alpha_tests)},
        permanova={tuple(key): read_tsv(path) for key, path in zip(p.permanova_keys, smk.input.permanova)},
        triads=_one(smk.input.triads), performance=_one(smk.input.performance), alpha=p.alpha)
    with open(smk.output.summary, "w") as handle:
        handle.write(text)
    with open(p.description) as handle:
        description = handle.read()
    with open(smk.output.landing, "w") as handle:
        handle.write(landing_rst(text, description))


run(snakemake, main)
