"""The investigator console in a browser: face search to results, click to first video frame.

    python benchmarks/console_browser.py --root INDEXED_ROOT [--searches 20] [--plays 10]
        [--in-place]

INDEXED_ROOT is a storage root whose sample is indexed (``citywatch demo`` leaves one
in ./data; a ``CITYWATCH_CONSOLE_SAMPLE`` cache holds one in DIR/data). As in
benchmarks/service_load.py it is copied first (``--in-place``: used as it is; a copy's
stored footage and thumbnail paths are pointed at the copy), a Prefect server is found
or started, and `citywatch serve` runs as its own process on a loopback port. Then one
headless Debian chromium (Playwright, as the browser tests drive it) signs in as an
investigator with a random password, opens a case and, ``--searches`` times, cycling
through the sample's probe photos: submits the face search form and times

- *results*: from the click on "Search" to the results fragment in the page;
- *thumbnails*: to every thumbnail of the results loaded.

After a search, while fewer than ``--plays`` sightings have been played, it clicks one
not played before and times, in the page (``performance.now()``):

- *first frame*: from the click to the first video frame presented
  (``requestVideoFrameCallback``); the service renders the masked clip on this first play;
- *playing*: to the ``playing`` event (after the seek to ``play.lead_s`` before the sighting).

Each played sighting is then clicked once more (*again*: the clip comes from the
service's memory). Prints p50 / p95 / max per measure (ms), the load average, and JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from service_load import _percentile, serving  # noqa: E402

from citywatch.governance.users import add_user  # noqa: E402
from citywatch.sample.dataset import load_ground_truth  # noqa: E402
from citywatch.settings import Settings  # noqa: E402
from citywatch.stack.prefect_server import (  # noqa: E402
    QUIET_ENV,
    stop_prefect_server,
)
from citywatch.storage import Storage  # noqa: E402
from tests.sample_copy import relocate  # noqa: E402

CASE = "BENCH-CONSOLE-1"
WHY = "console browser benchmark on synthetic sample footage"
HOOK = """(panel) => {
  window.__bench = { t0: performance.now() };
  const seen = new MutationObserver(() => {
    const v = document.querySelector(panel + " video");
    if (!v || v.__hooked) { return; }
    v.__hooked = true;
    seen.disconnect();
    v.addEventListener("playing", () => { window.__bench.playing = performance.now(); }, { once: true });
    if (v.requestVideoFrameCallback) {
      v.requestVideoFrameCallback((now) => { window.__bench.frame = now; });
    } else {
      v.addEventListener("loadeddata", () => { window.__bench.frame = performance.now(); }, { once: true });
    }
  });
  seen.observe(document.querySelector(panel), { childList: true, subtree: true });
}"""


def _browser_page(pw):  # noqa: ANN001, ANN202 - playwright objects
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        raise SystemExit("Debian's chromium is not installed: run `bash infra/install.sh`")
    browser = pw.chromium.launch(
        executable_path=path, headless=True, args=["--no-sandbox", "--disable-dev-shm-usage"]
    )
    page = browser.new_context(timezone_id="UTC", locale="en-GB").new_page()
    page.set_viewport_size({"width": 1280, "height": 720})
    return browser, page


def _play(page, link) -> tuple[float, float]:  # noqa: ANN001
    """Click a sighting's play link; (ms to the first frame, ms to playing)."""
    page.evaluate(HOOK, "#player-panel")
    link.click()
    page.wait_for_function(
        "() => window.__bench.frame !== undefined && window.__bench.playing !== undefined", timeout=120_000
    )
    bench = page.evaluate("() => window.__bench")
    return bench["frame"] - bench["t0"], bench["playing"] - bench["t0"]


def measure(base: str, name: str, password: str, probes: list[Path], searches: int, plays: int) -> dict:
    from playwright.sync_api import sync_playwright

    times: dict[str, list[float]] = {"results": [], "thumbnails": [], "first frame": [], "playing": []}
    again: dict[str, list[float]] = {"first frame": [], "playing": []}
    played: list[str] = []
    with sync_playwright() as pw:
        browser, page = _browser_page(pw)
        try:
            page.goto(f"{base}/login")
            page.fill("input[name=name]", name)
            page.fill("input[name=password]", password)
            page.click("#signin button[type=submit]")
            page.wait_for_url(f"{base}/cases")
            page.fill("input[name=case_id]", CASE)
            page.fill("input[name=title]", "Console benchmark")
            page.fill("textarea[name=legal_basis]", WHY)
            page.click("#new-case button[type=submit]")
            page.wait_for_url(f"**/case?case={CASE}")
            page.goto(f"{base}/search/face?case={CASE}")
            for i in range(searches + 1):  # the first one warms up (models loaded, flow registered)
                page.set_input_files("#probe", str(probes[i % len(probes)]))
                page.evaluate("() => { document.querySelector('#result').innerHTML = ''; }")
                start = time.perf_counter()
                page.click("#face-form button[type=submit]")
                page.wait_for_selector("#result-count", timeout=300_000)
                rendered = time.perf_counter()
                page.wait_for_function(
                    "() => [...document.querySelectorAll('li.tile img')]"
                    ".every(i => i.complete && i.naturalWidth > 0)",
                    timeout=60_000,
                )
                loaded = time.perf_counter()
                if i == 0:
                    continue
                times["results"].append(1000 * (rendered - start))
                times["thumbnails"].append(1000 * (loaded - start))
                if len(played) >= plays:
                    continue
                links = page.locator("li.tile a[data-play]")
                for k in range(links.count()):
                    href = str(links.nth(k).get_attribute("href"))
                    if href not in played:
                        frame, playing = _play(page, links.nth(k))
                        times["first frame"].append(frame)
                        times["playing"].append(playing)
                        played.append(href)
                        frame, playing = _play(page, links.nth(k))  # again: from the service's memory
                        again["first frame"].append(frame)
                        again["playing"].append(playing)
                        break
        finally:
            browser.close()
    return {"times": times, "again": again, "plays": len(played)}


def _line(label: str, values: list[float]) -> str:
    if not values:
        return f"{label:<26} {0:>4}"
    return (
        f"{label:<26} {len(values):>4} {_percentile(values, 50):>8.0f} {_percentile(values, 95):>8.0f} "
        f"{max(values):>8.0f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--root", required=True, help="an indexed storage root (e.g. ./data after the demo)")
    parser.add_argument("--searches", type=int, default=20)
    parser.add_argument("--plays", type=int, default=10)
    parser.add_argument("--in-place", action="store_true", help="use --root itself, not a copy")
    args = parser.parse_args()
    for key, value in QUIET_ENV.items():
        os.environ.setdefault(key, value)

    source = Path(args.root).resolve()
    truth = load_ground_truth(source / "sample" / "ground_truth.json")
    work = Path(tempfile.mkdtemp(prefix="citywatch-console-bench-"))
    root = source if args.in_place else work / "data"
    if not args.in_place:
        shutil.copytree(source, root, symlinks=True)
    probes = [root / p.probe for p in truth.people if p.probe and p.in_footage]
    state = work / "state"
    own_prefect = "PREFECT_API_URL" not in os.environ
    settings = Settings(storage__root=str(root), storage__state_dir=str(state))
    if not args.in_place:
        relocate(settings)
    name, password = f"bench-investigator-{secrets.token_hex(3)}", secrets.token_urlsafe(12)
    add_user(Storage(settings), name, ["investigator"], password, "benchmark")
    load_before = os.getloadavg()
    try:
        with serving(root, state, work) as base:
            started = time.monotonic()
            result = measure(base, name, password, probes, args.searches, args.plays)
            wall = time.monotonic() - started
    finally:
        if own_prefect:
            stop_prefect_server(str(state))
        if not args.in_place:
            shutil.rmtree(work, ignore_errors=True)
    load_after = os.getloadavg()
    print(
        f"{args.searches} searches, {result['plays']} sightings played, {wall:.0f} s; load average "
        f"{load_before[0]:.1f} before, {load_after[0]:.1f} after ({os.cpu_count()} cores)"
    )
    print(f"{'measure (ms)':<26} {'n':>4} {'p50':>8} {'p95':>8} {'max':>8}")
    times, again = result["times"], result["again"]
    print(_line("search -> results", times["results"]))
    print(_line("search -> thumbnails", times["thumbnails"]))
    print(_line("click -> first frame", times["first frame"]))
    print(_line("click -> playing", times["playing"]))
    print(_line("again: click -> frame", again["first frame"]))
    print(_line("again: click -> playing", again["playing"]))
    summary = {
        label: {"n": len(v), "p50_ms": _percentile(v, 50), "p95_ms": _percentile(v, 95)}
        for group, prefix in ((times, ""), (again, "again: "))
        for label0, v in group.items()
        for label in [prefix + label0]
    }
    summary["load_average"] = {"before": load_before[0], "after": load_after[0]}  # type: ignore[assignment]
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
