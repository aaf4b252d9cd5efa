"""The quiet console: one line per finished job, the job blocks only in the run's log."""

from __future__ import annotations

import io
import logging

from gutaxis.console import ProgressFormatter, QuietConsole, quiet_console


class Event:
    def __init__(self, value):
        self.value = value


def record(msg, event=None, **extra):
    rec = logging.LogRecord("snakemake.logging", logging.INFO, __file__, 1, msg, (), None)
    if event is not None:
        rec.event = Event(event)
    for key, value in extra.items():
        setattr(rec, key, value)
    return rec


class PlainFormatter(logging.Formatter):
    def format(self, rec):
        return f"{getattr(getattr(rec, 'event', None), 'value', '')}|{rec.getMessage()}"


def test_console_keeps_one_line_per_job_and_the_log_file_keeps_everything():
    logger = logging.getLogger("test-quiet-console")
    logger.handlers.clear()
    logger.propagate = False
    screen, logfile = io.StringIO(), io.StringIO()
    console = logging.StreamHandler(screen)
    console.setFormatter(PlainFormatter())
    to_file = logging.FileHandler("/dev/null")
    to_file.stream = logfile  # a file handler: never filtered
    to_file.setFormatter(PlainFormatter())
    logger.addHandler(console)
    logger.addHandler(to_file)
    logger.setLevel(logging.INFO)
    assert quiet_console(logger)
    records = [
        record("", "workflow_started"), record("Building DAG of jobs..."),
        record("Job stats: ...", "run_info"), record("Select jobs to execute..."),
        record("Execute 2 jobs...", "job_started"),
        record("", "job_info", jobid=7, rule_name="differential",
               wildcards={"modality": "taxa", "contrast": "post_vs_baseline"}),
        record("Finished jobid: 7 (Rule: differential)", "job_finished"),
        record("", "progress", done=37, total=113),
        record("Error in rule import_modality:", "job_error"),
        record("gutaxis: a note of our own"),
    ]
    for rec in records:
        logger.handle(rec)
    lines = screen.getvalue().splitlines()
    assert len(lines) == 3
    assert lines[0].endswith("] 37/113 done: differential (taxa, post_vs_baseline)")
    assert lines[1] == "job_error|Error in rule import_modality:"
    assert lines[2] == "|gutaxis: a note of our own"
    # the log file got every record, unchanged (the progress record too)
    assert len(logfile.getvalue().splitlines()) == len(records)
    assert "progress|" in logfile.getvalue() and "job_info|" in logfile.getvalue()


def test_progress_formatter_leaves_other_records_to_the_original():
    state = QuietConsole()
    formatter = ProgressFormatter(PlainFormatter(), state)
    assert formatter.format(record("plain")) == "|plain"
    state.last = "plot_models_roc"
    assert formatter.format(record("", "progress", done=1, total=2)).endswith("1/2 done: plot_models_roc")
