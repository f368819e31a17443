"""Real Chromium for the portal's browser tests: Debian's ``chromium`` driven by Playwright.

Playwright's own browser download cannot run here, so the browser is the distribution's
(``TAAP_TEST_CHROMIUM`` or ``chromium`` on PATH, which ``.ci/run`` installs); with ``CI=true`` a
missing browser fails the test instead of skipping it. axe-core comes from npm into
``.cache/npm-axe-core`` and is served to the page from the page's own origin, so the
Content-Security-Policy under test (``script-src 'self'``) stays on.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from kit.processes import need_service

__all__ = [
    "AXE_VERSION",
    "SCREENSHOT_DIR",
    "assert_axe_clean",
    "assert_no_horizontal_scroll",
    "axe_source",
    "chromium_executable",
    "csp_violations",
    "focused_text",
    "launch_chromium",
    "new_page",
    "screenshot",
]

ROOT = Path(__file__).resolve().parents[2]
AXE_VERSION = "4.10.3"
AXE_CACHE = ROOT / ".cache" / "npm-axe-core"
SCREENSHOT_DIR = Path(os.environ.get("TAAP_PORTAL_SCREENSHOTS", ROOT / "docs" / "portal"))
# The path axe.min.js is served at, under the page's own origin (see assert_axe_clean).
AXE_PATH = "/__taap-test/axe.min.js"
# Collects every CSP violation the page reports; added before any page script runs.
_CSP_WATCH = """
window.__cspViolations = [];
document.addEventListener('securitypolicyviolation', (e) => {
  window.__cspViolations.push(`${e.violatedDirective} ${e.blockedURI}`);
});
"""


def chromium_executable() -> str:
    """The system Chromium: ``TAAP_TEST_CHROMIUM``, else ``chromium`` on PATH."""
    path = os.environ.get("TAAP_TEST_CHROMIUM") or shutil.which("chromium")
    if not path or not Path(path).exists():
        need_service("chromium", "not installed (.ci/run installs Debian's chromium)")
    assert path
    return path


@contextmanager
def launch_chromium() -> Iterator[Any]:
    """A headless Chromium (Playwright ``Browser``); closed on exit."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:  # pragma: no cover - a dev extra
        need_service("playwright", f"not importable: {exc}")
        raise
    executable = chromium_executable()
    args = ["--no-sandbox"] if os.geteuid() == 0 else []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, args=args, headless=True)
        try:
            yield browser
        finally:
            browser.close()


def new_page(browser: Any, *, width: int = 1280, height: int = 800, **options: Any) -> Any:
    """A page in a fresh context (own cookies, downloads accepted) that records CSP violations
    and console errors (``page.console_errors``)."""
    context = browser.new_context(
        viewport={"width": width, "height": height}, accept_downloads=True, **options
    )
    context.add_init_script(_CSP_WATCH)
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
    page.console_errors = errors
    return page


def csp_violations(page: Any) -> list[str]:
    """Violations reported by the page's current document, plus CSP console errors."""
    reported = list(page.evaluate("window.__cspViolations || []"))
    logged = [e for e in page.console_errors if "Content Security Policy" in e]
    return reported + logged


def axe_source() -> str:
    """axe-core's ``axe.min.js``, installed once from npm."""
    if not shutil.which("npm"):
        need_service("node/npm", "not on PATH (axe-core comes from npm)")
    package = AXE_CACHE / "node_modules" / "axe-core"
    script = package / "axe.min.js"
    if not script.exists() or _installed_version(package) != AXE_VERSION:
        AXE_CACHE.mkdir(parents=True, exist_ok=True)
        result = subprocess.run(
            [
                "npm",
                "install",
                "--no-audit",
                "--no-fund",
                "--silent",
                "--prefix",
                str(AXE_CACHE),
                f"axe-core@{AXE_VERSION}",
            ],
            capture_output=True,
            text=True,
            timeout=300,
        )
        if result.returncode != 0 or not script.exists():
            need_service("axe-core", f"npm install failed: {result.stderr[-500:]}")
    return script.read_text()


def _installed_version(package: Path) -> str | None:
    try:
        return str(json.loads((package / "package.json").read_text())["version"])
    except (OSError, ValueError, KeyError):
        return None


_AXE_RUN = """async () => {
  const result = await axe.run(document, { resultTypes: ['violations'] });
  return result.violations.map((v) => ({
    id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.slice(0, 5).map((n) => n.target.join(' ')),
  }));
}"""


def assert_axe_clean(page: Any, *, impacts: tuple[str, ...] = ("serious", "critical")) -> None:
    """Run axe-core on the page as it is now; fail listing every violation of ``impacts``.

    axe.min.js is fulfilled by Playwright at ``AXE_PATH`` on the page's own origin and added
    as a ``<script src>``, which ``script-src 'self'`` allows: the page keeps its real CSP.
    """
    origin = "{0.scheme}://{0.netloc}".format(urlsplit(page.url))
    source = axe_source()
    page.route(
        origin + AXE_PATH,
        lambda route: route.fulfill(status=200, content_type="application/javascript", body=source),
    )
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(url=origin + AXE_PATH)
    violations = [v for v in page.evaluate(_AXE_RUN) if v["impact"] in impacts]
    report = "\n".join(
        f"- [{v['impact']}] {v['id']}: {v['help']} at {', '.join(v['nodes'])}" for v in violations
    )
    assert not violations, f"axe-core found violations on {page.url}:\n{report}"


def assert_no_horizontal_scroll(page: Any) -> None:
    """The document is no wider than the viewport (nothing forces sideways scrolling)."""
    widths = page.evaluate(
        "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert widths[0] <= widths[1], f"page scrolls sideways: {widths[0]} px in {widths[1]} px"


def focused_text(page: Any) -> str:
    """Tag and text of the focused element (``A: Skip to content``)."""
    return str(
        page.evaluate(
            "(() => { const e = document.activeElement;"
            " return e ? `${e.tagName}: ${(e.innerText || e.value || '').trim()}` : '' })()"
        )
    )


def screenshot(page: Any, name: str, widths: tuple[int, ...] = (390, 1280)) -> list[Path]:
    """Full-page PNGs of the current page at each width: ``SCREENSHOT_DIR/NAME-WIDTH.png``."""
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    original = page.viewport_size
    paths = []
    for width in widths:
        page.set_viewport_size({"width": width, "height": 800})
        path = SCREENSHOT_DIR / f"{name}-{width}.png"
        page.screenshot(path=str(path), full_page=True, animations="disabled")
        paths.append(path)
    if original:
        page.set_viewport_size(original)
    return paths
