"""Debian's chromium driven by Playwright for Python: how the layout tests look at pages.

The browser is the system's (``apt-get install chromium``; ``make test`` installs it
when it is missing and runs as root), never a Playwright download. Each session gets a
fresh profile directory; nothing reaches the network (the reports load nothing remote,
and background networking is off).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from playwright.sync_api import BrowserContext, sync_playwright

EXECUTABLE = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PHONE = 390
DESKTOP = 1280


@contextmanager
def chromium() -> Iterator[BrowserContext]:
    """A headless chromium with a fresh user-data-dir, closed afterwards."""
    if not EXECUTABLE.is_file():
        raise RuntimeError(
            f"{EXECUTABLE} not found: run `make test` as root, or apt-get install chromium"
        )
    with tempfile.TemporaryDirectory(prefix="hygiene-chromium-") as profile, sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            profile,
            executable_path=str(EXECUTABLE),
            headless=True,
            args=ARGS,
            viewport={"width": DESKTOP, "height": 900},
            offline=True,
        )
        try:
            yield context
        finally:
            context.close()


@dataclass(frozen=True)
class Layout:
    """How a page laid out at one viewport width."""

    page: str
    width: int
    scroll_width: int
    inner_width: int
    overflowing: list[str]  # elements wider than the viewport (tag.class: width)
    screenshot: Path | None

    @property
    def fits(self) -> bool:
        return self.scroll_width <= self.inner_width


# Elements whose right edge is past the viewport: what to fix when a page overflows.
_OVERFLOWING = """
() => {
  const limit = window.innerWidth;
  const out = [];
  for (const el of document.querySelectorAll('body *')) {
    const box = el.getBoundingClientRect();
    if (box.right > limit + 0.5 && out.length < 10) {
      out.push(`${el.tagName.toLowerCase()}.${el.className || ''}: ${Math.round(box.right)}px`);
    }
  }
  return out;
}
"""


def layout(
    context: BrowserContext, html: Path, width: int, screenshots: Path | None = None
) -> Layout:
    """Open ``html`` at ``width`` px; measure overflow; save a full-page screenshot."""
    page = context.new_page()
    try:
        page.set_viewport_size({"width": width, "height": 900})
        page.goto(html.resolve().as_uri(), wait_until="load")
        scroll_width, inner_width = page.evaluate(
            "[document.documentElement.scrollWidth, window.innerWidth]"
        )
        overflowing = page.evaluate(_OVERFLOWING) if scroll_width > inner_width else []
        shot = None
        if screenshots is not None:
            screenshots.mkdir(parents=True, exist_ok=True)
            shot = screenshots / f"{html.stem}-{width}.png"
            page.screenshot(path=str(shot), full_page=True)
        return Layout(html.name, width, scroll_width, inner_width, overflowing, shot)
    finally:
        page.close()


def inner_text(context: BrowserContext, html: Path, width: int = DESKTOP) -> str:
    """The page's text as the browser lays it out (``innerText``: blocks on lines)."""
    page = context.new_page()
    try:
        page.set_viewport_size({"width": width, "height": 900})
        page.goto(html.resolve().as_uri(), wait_until="load")
        return str(page.evaluate("document.body.innerText"))
    finally:
        page.close()
