"""Run a workflow entry point: log to the rule's log file, turn input errors into one message.

The thin scripts in ``workflow/scripts/*.py`` call :func:`run` with the object
Snakemake injects; this module only duck-types it (``.log``, ``.input`` ...) and
never imports Snakemake.
"""

from __future__ import annotations

import logging
import os
import sys
import traceback
from typing import Callable

from gutaxis.errors import InputError

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(log_path: str | None) -> None:
    """Send this process's log records (and warnings) to ``log_path``."""
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_path:
        handlers = [logging.FileHandler(log_path, mode="w")]
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT, handlers=handlers, force=True)
    logging.captureWarnings(True)
    # font subsetting logs every glyph at INFO; keep the rule logs readable
    for noisy in ("fontTools", "matplotlib"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def run(smk, main: Callable) -> None:
    """Call ``main(smk)`` with logging set up; exit 1 with a clear message on bad input.

    An :class:`InputError` is a user's mistake: its message goes to stderr (the
    terminal) and to the log, without a traceback. Any other exception is a bug:
    its traceback goes to the log and it is re-raised.
    """
    log_path = smk.log[0] if len(smk.log) else None
    configure_logging(log_path)
    try:
        _profiled(main, smk)
    except InputError as err:
        logging.getLogger("gutaxis").error("%s", err)
        print(str(err), file=sys.stderr)
        sys.exit(1)
    except Exception:
        logging.getLogger("gutaxis").error("unexpected failure:\n%s", traceback.format_exc())
        raise


def _profiled(main: Callable, smk) -> None:
    """``main(smk)``, under cProfile when ``GUTAXIS_PROFILE`` names a directory.

    For finding where a rule spends its time at scale (benchmarks/README.md):
    ``GUTAXIS_PROFILE=/tmp/prof snakemake ...`` writes one ``<rule>.<pid>.prof`` per job
    (read with ``python -m pstats``). Unset, nothing changes.
    """
    directory = os.environ.get("GUTAXIS_PROFILE")
    if not directory:
        main(smk)
        return
    import cProfile

    os.makedirs(directory, exist_ok=True)
    rule = getattr(smk, "rule", "job")
    profiler = cProfile.Profile()
    try:
        profiler.runcall(main, smk)
    finally:
        profiler.dump_stats(os.path.join(directory, f"{rule}.{os.getpid()}.prof"))
