"""What the browser tests share: a marimo server on 127.0.0.1, a headless Chromium driven by
Playwright, and the checks a researcher's eyes would make.

Imported by tests/browser/test_*.py (pytest puts this folder on sys.path). Chromium is
Debian's (`apt-get install chromium`; `playwright install` cannot download here); a
missing browser fails the tests, it never skips them.
"""

from __future__ import annotations

import contextlib
import html
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MARIMO = Path(sys.executable).with_name("marimo")
SCREENS = ROOT / "reports" / "screens"
SHARED = ROOT.parent / "shared"  # real EEG beside the checkout, as CI has it
# Flags that let Chromium start as root in a container and keep it off the network:
# without the background-networking ones it dials out and the closed network refuses it.
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SETTLE_S = 1.0  # no kernel message this long, and no cell queued or running: settled

# All text of the page, through marimo's shadow roots (outputs live in them).
PAGE_TEXT_JS = """() => {
  const out = [];
  const walk = (node) => {
    if (node.nodeType === Node.TEXT_NODE) { out.push(node.textContent); return; }
    const kind = node.nodeType;
    if (kind !== Node.ELEMENT_NODE && kind !== Node.DOCUMENT_FRAGMENT_NODE) return;
    if (node.tagName === "SCRIPT" || node.tagName === "STYLE") return;
    if (node.shadowRoot) walk(node.shadowRoot);
    for (const child of node.childNodes) walk(child);
  };
  walk(document.body);
  return out.join(" ").replace(/\\s+/g, " ");
}"""
OUTPUTS_TEXT_JS = PAGE_TEXT_JS.replace(
    "walk(document.body);",
    "for (const area of document.querySelectorAll('.output-area')) walk(area);",
)
# Errors a reader would see: failed cells, tracebacks, red callouts (mo.callout "danger").
ERRORS_JS = """() => {
  const found = [];
  for (const cell of document.querySelectorAll(".marimo-cell.has-error")) {
    found.push("cell " + cell.dataset.cellId + " failed: " + cell.innerText.slice(0, 400));
  }
  const walk = (node) => {
    if (node.tagName === "MARIMO-CALLOUT-OUTPUT"
        && (node.getAttribute("data-kind") || "").includes("danger")) {
      found.push("red callout: " + (node.shadowRoot ? node.shadowRoot.textContent : "")
                 .slice(0, 400));
    }
    if (node.shadowRoot) walk(node.shadowRoot);
    for (const child of node.children || []) walk(child);
  };
  walk(document.body);
  // a None among a stack's parts is printed as the word "None" (table cells may hold it)
  const stray = (node) => {
    if (node.nodeType === Node.ELEMENT_NODE && node.childElementCount === 0
        && node.textContent.trim() === "None" && !node.closest("td, th")) {
      found.push("a stray None is shown (" + node.tagName + ")");
    }
    if (node.shadowRoot) stray(node.shadowRoot);
    for (const child of node.children || []) stray(child);
  };
  for (const area of document.querySelectorAll(".output-area")) stray(area);
  return found;
}"""
# Coloured ("ink") pixels of the first chart drawn after the text `anchor`: marimo draws
# Vega charts on a canvas, so what a chart shows is read from its pixels. Saturated pixels
# are the marks (bars, lines, points); axes, grid and labels are grey. null: no chart.
INK_JS = """(anchor) => {
  const order = [];
  const walk = (node) => {
    if (node.nodeType === Node.TEXT_NODE) { order.push(node); return; }
    if (node.tagName === "CANVAS") order.push(node);
    if (node.shadowRoot) walk(node.shadowRoot);
    for (const child of node.childNodes || []) walk(child);
  };
  walk(document.body);
  const at = order.findIndex(
    (n) => n.nodeType === Node.TEXT_NODE && n.textContent.includes(anchor));
  const canvas = at < 0 ? null : order.slice(at).find((n) => n.tagName === "CANVAS");
  if (!canvas) return null;
  const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  let ink = 0;
  for (let i = 0; i < data.length; i += 4) {
    const [r, g, b, a] = [data[i], data[i + 1], data[i + 2], data[i + 3]];
    if (a > 128 && Math.max(r, g, b) - Math.min(r, g, b) > 60) ink += 1;
  }
  return ink;
}"""


def chromium_path() -> str:
    """Debian's Chromium (or $EEGWB_CHROMIUM); a clear failure when there is none."""
    path = (
        os.environ.get("EEGWB_CHROMIUM")
        or shutil.which("chromium")
        or shutil.which("chromium-browser")
    )
    if not path:
        pytest.fail(
            "no Chromium: `apt-get install -y chromium` (scripts/test.sh does it as "
            "root), or set EEGWB_CHROMIUM to a Chromium binary",
            pytrace=False,
        )
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_env(workspace: Path) -> dict[str, str]:
    """The environment a notebook runs in under test: eegwb from this checkout, one torch
    thread, and marimo's session snapshots (`__marimo__/`, kept beside a notebook) and
    bytecode under the workspace (`sys.pycache_prefix`), not in the repository."""
    return {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": str(ROOT),
        "PYTHONPYCACHEPREFIX": str(workspace / ".pycache"),
    }


def eegwb(args: list[str], workspace: Path, timeout_s: float = 600) -> subprocess.CompletedProcess:
    """`python -m eegwb ARGS` in the workspace, as a researcher runs it there."""
    return subprocess.run(
        [sys.executable, "-m", "eegwb", *args],
        cwd=workspace,
        env=run_env(workspace),
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )


@dataclass
class MarimoServer:
    """`marimo run|edit NOTEBOOK` on 127.0.0.1 from `cwd`, its output in `log`."""

    url: str
    log: Path
    process: subprocess.Popen = field(repr=False)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


@contextlib.contextmanager
def marimo_server(
    notebook: str, cwd: Path, mode: str = "run", timeout_s: float = 60
) -> Iterator[MarimoServer]:
    """A marimo server as a researcher starts one, on a free port, stopped afterwards.

    `--show-tracebacks`: `marimo run` otherwise hides a failed cell's output entirely, so
    an error would pass unseen. No token: only this machine can reach 127.0.0.1.
    """
    port = free_port()
    log = cwd / f"marimo-{mode}-{Path(notebook).stem}-{port}.log"
    cmd = [
        str(MARIMO),
        mode,
        str(ROOT / "notebooks" / notebook),
        "--headless",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-token",
    ]
    if mode == "run":
        cmd.append("--show-tracebacks")
    with open(log, "w") as out:
        process = subprocess.Popen(
            cmd, cwd=cwd, env=run_env(cwd), stdout=out, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"{' '.join(cmd)} did not start:\n{log.read_text()}")
                time.sleep(0.1)
        yield MarimoServer(f"http://127.0.0.1:{port}/", log, process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


class Watched:
    """A page, the kernel's messages to it and its console errors, collected as they come.

    When is a notebook done? The kernel says so: every `cell-op` message carries the cell's
    status (queued, running, idle); the page has settled when no cell is queued or running
    and no message has come for a moment (a progress bar or a live chart sends messages).
    """

    def __init__(self, page) -> None:
        self.page = page
        self.console_errors: list[str] = []
        self.status: dict[str, str] = {}
        self.frames = 0
        self.last_frame = time.monotonic()
        self.kernel_ready = False
        self.cells: set[str] = set()  # the notebook's cells, from kernel-ready
        self.reported: set[str] = set()  # cells the kernel has sent news of
        self.progress: list[str] = []  # titles of progress bars and spinners, as they came
        self.outputs: dict[str, tuple[str, str]] = {}  # cell -> (mimetype, data) last shown
        page.on("console", self._console)
        page.on("pageerror", lambda e: self.console_errors.append(f"uncaught: {e}"))
        page.on("websocket", lambda ws: ws.on("framereceived", self._frame))

    def _console(self, message) -> None:
        # errors, and Vega's warnings ("WARN Log scale domain includes zero": an empty chart)
        if message.type == "error" or (
            message.type == "warning" and message.text.startswith("WARN")
        ):
            self.console_errors.append(f"{message.type}: {message.text}")

    def _frame(self, payload) -> None:
        self.frames += 1
        self.last_frame = time.monotonic()
        if not isinstance(payload, str) or '"op"' not in payload[:20]:
            return
        message = json.loads(payload)
        data = message.get("data") or {}
        if message.get("op") == "kernel-ready":
            self.kernel_ready = True
            self.cells = set(data.get("cell_ids") or [])
        elif message.get("op") == "cell-op":
            self.reported.add(data["cell_id"])
            if data.get("status"):
                self.status[data["cell_id"]] = data["status"]
            output = data.get("output") or {}
            shown = str(output.get("data") or "")
            if output.get("mimetype"):
                self.outputs[data["cell_id"]] = (output["mimetype"], shown)
            if "<marimo-progress" in shown:
                self.progress += re.findall(r"data-title='\"([^\"]*)\"'", html.unescape(shown))

    def busy(self) -> list[str]:
        return [c for c, s in self.status.items() if s in ("queued", "running")]

    def text(self) -> str:
        return self.page.evaluate(PAGE_TEXT_JS)

    def chart_specs(self) -> list[str]:
        """The Vega-Lite specs (JSON text) of the charts the cells show now: a chart's
        content, which the canvas it is drawn on does not expose. A chart inside a stack is
        embedded in the cell's HTML, so HTML outputs that hold a spec count too."""
        return [d for m, d in self.outputs.values() if "vegalite" in m or "vegalite" in d]

    def outputs_text(self) -> str:
        """The text of the cells' outputs only (`marimo edit` also shows the code)."""
        return self.page.evaluate(OUTPUTS_TEXT_JS)

    def click(self, name: str, timeout_s: float = 300) -> None:
        """Press the button called `name` and wait until what it started has finished."""
        before = self.frames
        self.page.get_by_role("button", name=name, exact=True).click()
        self.settle(timeout_s, since=before)

    def open(self, url: str, timeout_s: float = 120) -> None:
        self.page.goto(url)
        self.settle(timeout_s)

    def settle(
        self, timeout_s: float = 120, quiet_s: float = SETTLE_S, since: int | None = None
    ) -> None:
        """Wait until the kernel is ready and has sent news of every cell, no cell is
        queued or running, and nothing came for `quiet_s`. `since`: a frame count taken
        before an action; wait for news after it. (A loaded machine can pause longer than
        `quiet_s` between kernel-ready and the first cell, so quiet alone is not enough.)"""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.page.wait_for_timeout(100)
            started = since is None or self.frames > since
            quiet = time.monotonic() - self.last_frame >= quiet_s
            heard = self.kernel_ready and self.cells <= self.reported
            if heard and started and not self.busy() and quiet:
                return
        raise AssertionError(
            f"page did not settle in {timeout_s} s (busy: {self.busy()}, not heard from: "
            f"{sorted(self.cells - self.reported)}): {self.text()[-2000:]}"
        )

    def wait_for_text(self, needle: str, timeout_s: float = 120) -> str:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            text = self.text()
            if needle in text:
                return text
            self.page.wait_for_timeout(200)
        raise AssertionError(f"{needle!r} never appeared; the page reads:\n{self.text()[-3000:]}")

    def errors(self) -> list[str]:
        return self.page.evaluate(ERRORS_JS)

    def assert_clean(self, server: MarimoServer | None = None, findings: str | None = None) -> None:
        """No failed cell, traceback or red callout on the page; no console error; no
        traceback in the server's log. `findings`: red callouts starting with it are a
        notebook's results (the autopsy's "FAIL ..." findings), not errors."""
        problems = [
            e for e in self.errors() if not (findings and e.startswith(f"red callout: {findings}"))
        ]
        problems += [f"console: {e}" for e in self.console_errors]
        if "Traceback (most recent call last)" in self.text():
            problems.append("a traceback is shown")
        if server is not None and "Traceback" in server.log_text():
            problems.append(f"server log:\n{server.log_text()[-3000:]}")
        assert not problems, "\n".join(problems)

    def screenshot(self, name: str) -> Path:
        """The whole notebook (marimo scrolls inside #App, so the viewport grows to it)."""
        SCREENS.mkdir(parents=True, exist_ok=True)
        page = self.page
        size = page.viewport_size
        height = page.evaluate(
            "() => (document.querySelector('#App') || document.body).scrollHeight"
        )
        page.set_viewport_size({"width": size["width"], "height": min(int(height) + 40, 16000)})
        page.wait_for_timeout(300)
        path = SCREENS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        page.set_viewport_size(size)
        return path


def chart_ink(page, anchor: str) -> int | None:
    """Coloured pixels of the chart after the text `anchor` (see INK_JS)."""
    return page.evaluate(INK_JS, anchor)


def vega_charts(page) -> int:
    """Rendered Altair/Vega charts (an SVG or canvas inside a vega-embed)."""
    return page.locator(".vega-embed svg, .vega-embed canvas").count()


def field(page, label: str):
    """A marimo text or number input by its exact label: a text input has a <label>, a
    number field carries the label's HTML (`<span ...>Epochs</span>`) in aria-label."""
    number = page.locator(f'input[aria-label*=">{label}</span>"]')
    return number.or_(page.get_by_label(label, exact=True))


def set_field(watched: Watched, label: str, value: str) -> None:
    """Type `value` into a labelled input and wait for the cells that depend on it."""
    before = watched.frames
    box = field(watched.page, label)
    box.fill(value)
    box.press("Enter")
    watched.settle(since=before)


def block_network(page) -> list[str]:
    """Abort every request that is not a file:, data: or blob: URL, as a machine without
    internet would; returns the list the aborted URLs are appended to."""
    blocked: list[str] = []

    def route(r) -> None:
        if r.request.url.startswith(("file:", "data:", "blob:")):
            r.continue_()
        else:
            blocked.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    return blocked


def wait_until(page, check, timeout_s: float = 60, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met in {timeout_s} s")
        page.wait_for_timeout(200)
