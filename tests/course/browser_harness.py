"""Headless Chromium for the browser tests: open a local page offline, read back what it drew.

One Chromium run gives three things: the DOM after the page settled (``--dump-dom``) with the
result of a probe script written into it, a screenshot, and a net log. The probe is injected
into a copy of the page (the exported file stays as it is) and measures in the page itself:
what each circuitsvis view rendered, whether each image decoded, how much ink every canvas and
image holds, and any JavaScript error.

The net log is read two ways. :func:`page_requests` lists network URLs that a *document*
asked for: the page's ``initiator`` is an origin (``"null"`` for a file:// page), while
Chromium's own background traffic (sign-in, component updater, network time) has
``"not an origin"`` and cannot all be switched off by flags; that traffic is the browser's,
not the page's. :func:`packets_sent` lists events that would mean something did leave the
machine (DNS query, TCP connect, bytes sent); ``--host-resolver-rules`` maps every host to
"not found", so nothing should, not even the browser's own traffic.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

NETWORK_SCHEMES = ("http:", "https:", "ws:", "wss:", "ftp:")
PACKET_EVENTS = ("DNS_TRANSACTION", "TCP_CONNECT_ATTEMPT", "SOCKET_BYTES_SENT", "UDP_BYTES_SENT",
                 "SSL_SOCKET_BYTES_SENT", "WEBSOCKET_SENT_FRAME_HEADER")
PROBE_ID = "render-probe"

# Runs before the page's own scripts (inserted first in <head>), so it sees their errors.
# circuitsvis renders with React after the module scripts ran; chart.js then animates the
# canvases for about a second. Under --virtual-time-budget those waits cost no real time.
PROBE_JS = r"""
(function () {
  const errors = [];
  window.addEventListener("error", (e) => errors.push(String(e.message || e)));
  window.addEventListener("unhandledrejection", (e) => errors.push("unhandled rejection: " + e.reason));

  // distinct colours (4 bits a channel) and the share of pixels unlike the commonest one
  function ink(source, w, h) {
    const c = document.createElement("canvas");
    c.width = w; c.height = h;
    const ctx = c.getContext("2d");
    ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, w, h);
    ctx.drawImage(source, 0, 0, w, h);
    const px = ctx.getImageData(0, 0, w, h).data;
    const counts = new Map();
    for (let i = 0; i < px.length; i += 4) {
      const k = ((px[i] >> 4) << 8) | ((px[i + 1] >> 4) << 4) | (px[i + 2] >> 4);
      counts.set(k, (counts.get(k) || 0) + 1);
    }
    const top = Math.max(...counts.values());
    return {colours: counts.size, inked: 1 - top / (w * h)};
  }
  function size(el) {
    const r = el.getBoundingClientRect();
    return {x: r.x, y: r.y, width: r.width, height: r.height};
  }
  function measure() {
    const views = [...document.querySelectorAll('div[id^="circuits-vis-"]')].map((v) => ({
      id: v.id,
      children: v.children.length,
      rect: size(v),
      labels: [...v.querySelectorAll("h4")].map((h) => h.textContent),
      canvases: [...v.querySelectorAll("canvas")].map((c) => ({
        rect: size(c), ...(c.width && c.height ? ink(c, c.width, c.height) : {colours: 0, inked: 0}),
      })),
    }));
    const images = [...document.querySelectorAll(".jp-OutputArea-output img, .jp-RenderedMarkdown img")].map((im) => ({
      src: im.src.slice(0, 30), complete: im.complete, naturalWidth: im.naturalWidth,
      naturalHeight: im.naturalHeight,
      ...(im.naturalWidth ? ink(im, im.naturalWidth, im.naturalHeight) : {colours: 0, inked: 0}),
    }));
    return {views, images, errors, dpr: window.devicePixelRatio, text: document.body.innerText};
  }
  // The screenshot shows the top of the page, and a scrolled page screenshots blank in
  // headless Chromium: hide the cells above the first view instead.
  function bringToTop(view) {
    for (let el = view.closest(".jp-Cell"); el && el.previousElementSibling;) {
      el = el.previousElementSibling;
      el.style.display = "none";
    }
  }
  function report(result) {
    const pre = document.createElement("pre");
    pre.id = "__PROBE_ID__";
    pre.textContent = JSON.stringify(result);
    document.body.appendChild(pre);
  }
  window.addEventListener("load", () => {
    const deadline = performance.now() + 10000;
    (function poll() {
      const views = [...document.querySelectorAll('div[id^="circuits-vis-"]')];
      if (!views.every((v) => v.querySelector("canvas")) && performance.now() < deadline) {
        setTimeout(poll, 100);
        return;
      }
      setTimeout(() => {
        let result;
        try { result = measure(); } catch (e) { report({probeError: String(e), errors}); return; }
        const first = document.querySelector('div[id^="circuits-vis-"]');
        if (first) bringToTop(first);
        setTimeout(() => {
          result.firstView = first ? size(first) : null;
          report(result);
        }, 500);
      }, 2000);
    })();
  });
})();
""".replace("__PROBE_ID__", PROBE_ID)


def chromium_or_skip() -> str:
    """The Chromium executable; without one, skip (fail under CI, which installs it)."""
    exe = shutil.which("chromium") or ("/usr/bin/chromium" if os.access("/usr/bin/chromium", os.X_OK) else None)
    if exe is None:
        msg = "Chromium not found; install it with `apt-get install chromium` (Debian)"
        if os.environ.get("CI"):
            pytest.fail(f"{msg}: CI must run the browser tests")
        pytest.skip(msg)
    return exe


@dataclass
class Rendered:
    dom: str
    probe: dict | None
    screenshot: Path
    netlog: Path


def with_probe(page: Path, out: Path) -> Path:
    """A copy of ``page`` with :data:`PROBE_JS` as the first script of its <head>."""
    text = page.read_text(encoding="utf-8")
    m = re.search(r"<head[^>]*>", text, re.IGNORECASE)
    assert m, f"{page}: no <head>"
    out.write_text(text[: m.end()] + f"\n<script>{PROBE_JS}</script>\n" + text[m.end():], encoding="utf-8")
    return out


def render(page: Path, workdir: Path, *, probe: bool = True, window=(1200, 1000),
           budget_ms: int = 20000, timeout_s: int = 180) -> Rendered:
    """Open ``page`` (a local file) in headless Chromium, offline; see the module docstring."""
    exe = chromium_or_skip()
    workdir.mkdir(parents=True, exist_ok=True)
    target = with_probe(page, workdir / f"{page.stem}.probe.html") if probe else page
    shot, netlog, profile = workdir / "screenshot.png", workdir / "netlog.json", workdir / "profile"
    cmd = [
        exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={profile}", f"--log-net-log={netlog}",
        "--host-resolver-rules=MAP * ~NOTFOUND",  # safety net: no name resolves, nothing leaves
        f"--window-size={window[0]},{window[1]}", "--hide-scrollbars", "--force-device-scale-factor=1",
        f"--virtual-time-budget={budget_ms}", "--run-all-compositor-stages-before-draw",
        f"--screenshot={shot}", "--dump-dom", target.resolve().as_uri(),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, cwd=workdir)
    assert proc.returncode == 0, f"chromium exited {proc.returncode}:\n{proc.stderr[-3000:]}"
    assert shot.is_file() and netlog.is_file(), proc.stderr[-3000:]
    m = re.search(rf'<pre id="{PROBE_ID}">(.*?)</pre>', proc.stdout, re.S)
    return Rendered(proc.stdout, json.loads(html.unescape(m.group(1))) if m else None, shot, netlog)


def _events(netlog: Path):
    log = json.loads(netlog.read_text())
    names = {v: k for k, v in log["constants"]["logEventTypes"].items()}
    for e in log["events"]:
        yield names.get(e["type"], str(e["type"])), e.get("params") or {}


def page_requests(netlog: Path) -> list[str]:
    """Network URLs (http, https, ws, …) that a document requested, in order."""
    urls = []
    for name, p in _events(netlog):
        if name == "URL_REQUEST_START_JOB" and "url" in p and p.get("initiator") != "not an origin":
            if p["url"].lower().startswith(NETWORK_SCHEMES) and p["url"] not in urls:
                urls.append(p["url"])
    return urls


def packets_sent(netlog: Path) -> list[str]:
    """Net-log events that mean a DNS query, a TCP connection or bytes went out."""
    return [f"{name} {json.dumps(p)[:200]}" for name, p in _events(netlog)
            if name.startswith(PACKET_EVENTS)]
