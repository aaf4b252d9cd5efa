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
from pathlib import Path
from typing import Callable

from gutaxis.io.errors import InputError

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


#: where a job that stopped on bad input leaves its message (relative to the working
#: directory); the Snakefile's onerror handler prints these at the end of the run
INPUT_ERROR_DIR = Path(".snakemake") / "gutaxis" / "input_errors"


def input_error_marker(log_path: str | None) -> Path | None:
    """The file holding the input-error message of the job that writes ``log_path``."""
    if not log_path:
        return None
    return INPUT_ERROR_DIR / (str(log_path).replace(os.sep, "__") + ".txt")


def input_error_messages(since: float = 0.0, directory: Path = INPUT_ERROR_DIR) -> list[str]:
    """The distinct input-error messages jobs left since ``since`` (a time.time()),
    in the order they were written."""
    if not directory.is_dir():
        return []
    files = sorted((f for f in directory.glob("*.txt") if f.stat().st_mtime >= since),
                   key=lambda f: (f.stat().st_mtime, f.name))
    messages: list[str] = []
    for path in files:
        text = path.read_text().strip()
        if text and text not in messages:
            messages.append(text)
    return messages


def run(smk, main: Callable) -> None:
    """Call ``main(smk)`` with logging set up; exit 1 with a clear message on bad input.

    An :class:`InputError` is a user's mistake: its message goes to the log and to a
    marker file (:func:`input_error_marker`) that the workflow prints once, last on
    screen, when the run stops -- not to the terminal here, where it would scroll away
    between job blocks. A retry cannot fix bad input: when Snakemake restarts the job
    (the profiles retry jobs for memory and time limits), a later attempt that finds
    the marker of the first stops at once. Any other exception is a bug: its traceback
    goes to the log and it is re-raised.
    """
    log_path = smk.log[0] if len(smk.log) else None
    marker = input_error_marker(log_path)
    if marker is not None and marker.exists():
        if getattr(smk, "attempt", 1) > 1:
            sys.exit(1)
        marker.unlink()
    configure_logging(log_path)
    try:
        _profiled(main, smk)
    except InputError as err:
        logging.getLogger("gutaxis").error("%s", err)
        if marker is None:
            print(str(err), file=sys.stderr)
        else:
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.write_text(str(err) + "\n")
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
