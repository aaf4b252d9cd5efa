"""Write the simulated gutaxis demo study.

Usage::

    python workflow/scripts/simulate_demo.py --out resources/demo --seed 20261122
    python workflow/scripts/simulate_demo.py --out /tmp/big --subjects 2500 --taxa 1500 \\
        --metabolites 5000 --immune 30
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from gutaxis.io.errors import InputError  # noqa: E402
from gutaxis.demo.simulate import simulate_study  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--seed", type=int, default=20261122)
    parser.add_argument("--subjects", type=int, default=48)
    parser.add_argument("--taxa", type=int, default=400)
    parser.add_argument("--metabolites", type=int, default=600)
    parser.add_argument("--immune", type=int, default=20)
    parser.add_argument("--timepoints", default="baseline,post", help="comma-separated, baseline first")
    parser.add_argument("--progression-fraction", type=float, default=0.125)
    parser.add_argument("--no-gaps", action="store_true", help="leave out the realistic gaps")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    try:
        paths = simulate_study(
            args.out, seed=args.seed, n_subjects=args.subjects, n_taxa=args.taxa,
            n_metabolites=args.metabolites, n_immune=args.immune,
            timepoints=tuple(t.strip() for t in args.timepoints.split(",") if t.strip()),
            progression_fraction=args.progression_fraction, realistic_gaps=not args.no_gaps,
        )
    except InputError as err:
        print(err, file=sys.stderr)
        return 2
    for key, path in paths.items():
        print(f"{key}\t{path}\t{path.stat().st_size} bytes")
    print(f"done in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
