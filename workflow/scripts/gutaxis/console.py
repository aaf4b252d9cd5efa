"""A quiet console for workflow runs: one line per finished job instead of Snakemake's blocks.

Snakemake prints about 16 lines per job (its rule, inputs, outputs, log, reason, the
finish and the progress): 1,900 lines for the demo. :class:`QuietConsole` is a logging
filter for Snakemake's *console* handler only, so the run's log file
(``.snakemake/log/``) keeps every block. During a run it drops the job blocks, the
scheduler's "Select jobs / Execute N jobs" lines, the banner and the job table, and turns
each progress record into one line naming the job that finished::

    [10:42:07] 37/113 done: differential (taxa, post_vs_baseline)

Errors, warnings and everything a dry run prints pass unchanged.
"""

from __future__ import annotations

import logging
import re
import time

#: Snakemake log events (``record.event``) left out of the console during a run
DROPPED_EVENTS = {"job_info", "job_started", "job_finished", "workflow_started", "run_info",
                  "resources_info", "group_info", "shellcmd"}
#: plain scheduler and setup messages left out of the console during a run
DROPPED_TEXT = re.compile(r"^(Select jobs to execute\.\.\.|Execute \d+ jobs?\.\.\.|Building DAG of jobs"
                          r"|Using shell:|Provided cores:|Rules claiming more threads|Assuming "
                          r"unrestricted shared filesystem|Conda environments:|Singularity "
                          r"containers:|Provided resources:)")
_FINISHED = re.compile(r"Finished jobid: (\d+) \(Rule: ([^)]+)\)")


def _event(record: logging.LogRecord) -> str:
    event = getattr(record, "event", None)
    return str(getattr(event, "value", event)) if event is not None else ""


class QuietConsole(logging.Filter):
    """Keep Snakemake's console to one line per finished job (see the module docstring)."""

    def __init__(self):
        super().__init__()
        self.jobs: dict[int, str] = {}
        self.last = ""

    def filter(self, record: logging.LogRecord) -> bool:
        event = _event(record)
        if event == "job_info":
            wildcards = getattr(record, "wildcards", None) or {}
            values = [str(v) for v in (wildcards.values() if isinstance(wildcards, dict) else wildcards)]
            label = str(getattr(record, "rule_name", "job"))
            self.jobs[getattr(record, "jobid", -1)] = label + (f" ({', '.join(values)})" if values else "")
            return False
        if event == "job_finished":
            match = _FINISHED.search(str(getattr(record, "msg", "")))
            if match:
                self.last = self.jobs.get(int(match.group(1)), match.group(2))
            return False
        if event in DROPPED_EVENTS:
            return False
        return not (event == "" and DROPPED_TEXT.match(str(record.getMessage() or "")))


class ProgressFormatter(logging.Formatter):
    """The console handler's formatter: a progress record becomes the one line naming the
    job that finished; every other record is formatted as before. (Records are shared
    with the log file's handler, so they are not modified.)"""

    def __init__(self, original: logging.Formatter, state: QuietConsole):
        super().__init__()
        self.original = original
        self.state = state

    def format(self, record: logging.LogRecord) -> str:
        if _event(record) == "progress":
            done, total = getattr(record, "done", "?"), getattr(record, "total", "?")
            return f"[{time.strftime('%H:%M:%S')}] {done}/{total} done: {self.state.last}"
        return self.original.format(record)


def quiet_console(logger: logging.Logger) -> bool:
    """Quiet the logger's console handler(s) (:class:`QuietConsole`, :class:`ProgressFormatter`);
    the file handlers are left as they are. True when a console handler was found."""
    attached = False
    for handler in logger.handlers:
        if isinstance(handler, logging.StreamHandler) and not isinstance(handler, logging.FileHandler):
            state = QuietConsole()
            handler.addFilter(state)
            handler.setFormatter(ProgressFormatter(handler.formatter or logging.Formatter(), state))
            attached = True
    return attached
