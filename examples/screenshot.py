"""Screenshots of a built catalog, taken in Debian's chromium the way a reader sees it (verify.js included).

    python examples/screenshot.py SITE_DIR OUT_DIR [--card models/NAME/VERSION/] [--query "ram_gb=16&..."]

Serves SITE_DIR on 127.0.0.1 (a secure context, so WebCrypto runs), waits until the card page's
verification status settles and the buyer query has answered, and writes one screen of each page at a
laptop's width (1280 x 800: ``NAME.png``) and a phone's (390 x 800: ``NAME-390.png``) into OUT_DIR, for
NAME in ``SHOTS``: the card page's first screen (the label), its per-slice tables, scorecard and local-cost
sections, the home page, the catalog and the buyer query. Exits non-zero if the card page does not say
"verified" at either width.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import shutil
import sys
import threading
from pathlib import Path
from typing import Any

WIDTHS = {"": 1280, "-390": 390}
"""File-name suffix -> viewport width; every shot is one 800 px high screen."""

SHOTS = ("card", "slices", "scorecard", "cost", "home", "catalog", "buyer")
"""The pages taken, in this order (the README lists the same names)."""


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def main() -> int:
    """Serve, open each page, screenshot it."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("site", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--card", help="card page path, e.g. models/NAME/VERSION/ (default: the first)")
    parser.add_argument("--query", default="ram_gb=16&task=capitals-mc&commercial=1&priority=retention")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    card = args.card or next(
        str(p.parent.relative_to(args.site)) + "/" for p in sorted(args.site.glob("models/*/*/index.html"))
    )
    handler = functools.partial(_Quiet, directory=str(args.site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    args.out.mkdir(parents=True, exist_ok=True)
    chromium = shutil.which("chromium")
    if chromium is None:
        print("chromium is not installed: apt-get install -y chromium (or run `make setup`)", file=sys.stderr)
        return 2
    states = []
    with sync_playwright() as pw:
        flags = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
        browser = pw.chromium.launch(executable_path=chromium, args=flags)
        for suffix, width in WIDTHS.items():
            page = browser.new_page(viewport={"width": width, "height": 800})
            states.append(_shoot(page, base, card, args.query, args.out, suffix))
            page.close()
        browser.close()
    server.shutdown()
    names = ", ".join(f"{name}{suffix}" for name in SHOTS for suffix in WIDTHS)
    print(f"{card}: {'/'.join(states)}; screenshots in {args.out}/ ({names} .png)")
    return 0 if all(state == "verified" for state in states) else 1


def _shoot(page: Any, base: str, card: str, query: str, out: Path, suffix: str) -> str:
    """Every shot of ``SHOTS`` at this page's width; returns the card's verification state."""
    page.goto(f"{base}/{card}")
    page.wait_for_selector(".rc-status:not([data-state=pending])")
    state = str(page.get_attribute(".rc-status", "data-state"))
    page.screenshot(path=str(out / f"card{suffix}.png"))
    for section, name in (
        ("quantitative-analyses", "slices"),
        ("distillation-scorecard", "scorecard"),
        ("local-cost", "cost"),
    ):
        page.goto(f"{base}/{card}#{section}")
        page.wait_for_timeout(300)
        page.screenshot(path=str(out / f"{name}{suffix}.png"))
    page.goto(f"{base}/")
    page.screenshot(path=str(out / f"home{suffix}.png"))
    page.goto(f"{base}/models/")
    page.screenshot(path=str(out / f"catalog{suffix}.png"))
    page.goto(f"{base}/buyer/?{query}")
    page.wait_for_selector("[data-rc-app][data-ready=true]")
    page.screenshot(path=str(out / f"buyer{suffix}.png"))
    return state


if __name__ == "__main__":
    sys.exit(main())
