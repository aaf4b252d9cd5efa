"""The report as a reader sees it: report.html of the demo opened in headless Chromium.

The first screen (a 1400 x 900 window) must show the answers - response rates, the PFS2
median, the features called, the best model - and no rule graph; the description uses
labels, not config keys. Chromium is driven over the DevTools protocol (websocket-client):
the page's own JavaScript builds the report, so only a browser can tell what is visible.
Skips, with the reason, without Chromium (Debian package ``chromium``; .ci/run installs it).
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import run_snakemake

pytestmark = pytest.mark.workflow
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
WIDTH, HEIGHT = 1400, 900


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Browser:
    """Headless Chromium with one page, evaluated over the DevTools protocol."""

    def __init__(self, url: str, profile: Path):
        import websocket

        self.port = _free_port()
        self.process = subprocess.Popen(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", f"--remote-debugging-port={self.port}",
             f"--user-data-dir={profile}", f"--window-size={WIDTH},{HEIGHT}", url],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 60
        while True:
            try:
                targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{self.port}/json", timeout=2))
                page = next(t for t in targets if t.get("type") == "page")
                break
            except Exception:
                if time.time() > deadline:
                    self.close()
                    raise
                time.sleep(0.5)
        self.socket = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=30)
        self.calls = 0

    def evaluate(self, expression: str):
        self.calls += 1
        self.socket.send(json.dumps({"id": self.calls, "method": "Runtime.evaluate",
                                     "params": {"expression": expression, "returnByValue": True}}))
        while True:
            reply = json.loads(self.socket.recv())
            if reply.get("id") == self.calls:
                return reply["result"]["result"].get("value")

    def close(self):
        if getattr(self, "socket", None):
            self.socket.close()
        self.process.terminate()
        self.process.wait(timeout=30)


@pytest.fixture(scope="module")
def page(demo_run, tmp_path_factory):
    if CHROMIUM is None:
        pytest.skip("headless Chromium not installed (apt-get install chromium)")
    pytest.importorskip("websocket", reason="websocket-client not installed")
    workdir = tmp_path_factory.mktemp("browser") / "wd"
    shutil.copytree(demo_run, workdir, symlinks=True, ignore=shutil.ignore_patterns("locks", "incomplete"))
    result = run_snakemake(workdir, "--report", "report.html", timeout=900)
    assert result.returncode == 0, result.stderr[-4000:]
    browser = Browser((workdir / "report.html").as_uri(), workdir / "chromium-profile")
    deadline = time.time() + 60
    while not browser.evaluate("!!document.querySelector('#rulegraph') && document.body.innerText.length > 500"):
        assert time.time() < deadline, "the report did not render in 60 s"
        time.sleep(0.5)
    yield browser
    browser.close()


def _first_screen_text(page) -> str:
    """The text of every element whose box lies (partly) in the first window."""
    return page.evaluate(f"""
        Array.from(document.querySelectorAll('p, li, h1, h2, strong'))
             .filter(e => {{ const r = e.getBoundingClientRect();
                             return r.width > 0 && r.height > 0 && r.top < {HEIGHT} && r.bottom > 0; }})
             .map(e => e.innerText).join('\\n')""")


def test_first_screen_shows_the_answers(page):
    text = _first_screen_text(page)
    for answer in ("ORR (RECIST)", "DCR (RECIST)", "PFS2 median", "features changed", "Best responder model"):
        assert answer in text, f"'{answer}' not on the first screen:\n{text[:1500]}"
    for modality in ("taxa", "metabolites", "immune"):
        assert f"{modality}, post_vs_baseline" in text


def test_rule_graph_is_below_the_first_screen(page):
    top = page.evaluate("document.querySelector('#rulegraph').getBoundingClientRect().top")
    assert top >= HEIGHT, f"the rule graph starts at {top} px, inside the first {HEIGHT} px"


def test_description_uses_labels_not_config_keys(page):
    text = page.evaluate("document.body.innerText")
    assert "disease control" in text
    assert "defined by dcr_recist" not in text and "include in the denominator" not in text
