"""The command line every example's make_sheets.py shares: --data (the one path to the
public data set, the directory holding its SOURCE.md) and --out (where samples.tsv and
subjects.tsv go)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable

import pandas as pd


def make_sheets(doc: str, name: str, required: list[str], build: Callable, here: Path,
                argv=None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Parse the arguments, check the data set is there, build and write the two sheets.

    ``build(data_dir) -> (samples, subjects)`` derives the sheets from the data set's own
    metadata; ``required`` are the files (or folders) under ``--data`` it reads.
    """
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data") / name,
                        help="the data set's directory (the one holding SOURCE.md)")
    parser.add_argument("--out", type=Path, default=here / "sheets",
                        help="where samples.tsv and subjects.tsv go (default: %(default)s)")
    args = parser.parse_args(argv)
    for part in required:
        if not (args.data / part).exists():
            sys.exit(f"{args.data}: {part} not found; give the data set's directory with --data")
    samples, subjects = build(args.data)
    args.out.mkdir(parents=True, exist_ok=True)
    samples.to_csv(args.out / "samples.tsv", sep="\t", index=False)
    subjects.to_csv(args.out / "subjects.tsv", sep="\t", index=False)
    excluded = int((samples["exclude"] == "yes").sum()) if "exclude" in samples.columns else 0
    print(f"wrote {args.out / 'samples.tsv'} ({len(samples)} samples"
          + (f", {excluded} excluded" if excluded else "")
          + f") and {args.out / 'subjects.tsv'} ({len(subjects)} subjects)")
    return samples, subjects
