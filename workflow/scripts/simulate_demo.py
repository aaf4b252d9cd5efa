"""Write the simulated gutaxis demo study.

Usage::

    python workflow/scripts/simulate_demo.py --out resources/demo --seed 20261122
    python workflow/scripts/simulate_demo.py --out /tmp/big --subjects 2500 --taxa 1500 \\
        --metabolites 5000 --immune 30
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from gutaxis.io.errors import InputError  # noqa: E402
from gutaxis.demo.simulate import parse_arguments, simulate_study  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    options = parse_arguments(argv, description=__doc__.splitlines()[0])
    started = time.perf_counter()
    try:
        paths = simulate_study(**options)
    except InputError as err:
        print(err, file=sys.stderr)
        return 2
    for key, path in paths.items():
        print(f"{key}\t{path}\t{path.stat().st_size} bytes")
    print(f"done in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
