"""How fast a report.html opens in headless Chromium, and how fast its search box answers.

For each page: its size, then per run the wall time of ``chromium --headless --dump-dom``
(browser start to exit), the page's own time from navigation to its load event (every
script run, every figure drawn), the points drawn on the map, and the time the search box
takes to restyle the map for one word. Networking is off, as in tests/chromium.py.

    .venv/bin/python scripts/studies/report_load_bench.py OUT/report/report.html [...] [--runs 3] [--word great]
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

_PROBE = """<script>
window.addEventListener("load", function () {
  var loaded = performance.now();
  var box = document.getElementById("n2d-search");
  var started = performance.now();
  box.value = %s;
  box.dispatchEvent(new Event("input"));
  var searched = performance.now() - started;
  var probe = document.createElement("pre");
  probe.id = "n2d-timing";
  probe.textContent = JSON.stringify({
    load_ms: loaded, search_ms: searched,
    points: document.querySelectorAll("#n2d-map .scatterlayer path.point").length,
    note: document.getElementById("n2d-search-note").textContent,
  });
  document.body.appendChild(probe);
});
</script>"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pages", nargs="+", type=Path)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--word", default="great")
    args = parser.parse_args()
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        raise SystemExit("no Chromium: apt-get install chromium")
    version = subprocess.run([browser, "--version"], capture_output=True, text=True).stdout.strip()
    print(f"{version}; CPU: {_cpu_model()}; {time.strftime('%Y-%m-%d')}")
    print("| page | MB | map points | wall s (browser start to exit) | load event ms | search ms |")
    print("|---|---|---|---|---|---|")
    for page in args.pages:
        with tempfile.TemporaryDirectory() as work:
            probed = Path(work) / "probed.html"
            probed.write_text(page.read_text(encoding="utf-8").replace("</body>", _PROBE % json.dumps(args.word) + "</body>"))
            walls, loads, searches, points = [], [], [], None
            for _ in range(args.runs):
                started = time.perf_counter()
                dom = subprocess.run(
                    [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--host-resolver-rules=MAP * ~NOTFOUND", "--proxy-server=http://127.0.0.1:9", "--dump-dom", probed.as_uri()],
                    capture_output=True, text=True, timeout=300, check=True,
                ).stdout
                walls.append(time.perf_counter() - started)
                found = re.search(r'<pre id="n2d-timing">(.*?)</pre>', dom, flags=re.DOTALL)
                if not found:
                    raise SystemExit(f"{page}: the probe did not run")
                timing = json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&"))
                loads.append(timing["load_ms"])
                searches.append(timing["search_ms"])
                points = timing["points"]
        print(
            f"| {page} | {page.stat().st_size / 1e6:.1f} | {points} | {_spread(walls, 2)} | {_spread(loads, 0)} | {_spread(searches, 0)} |"
        )


def _spread(values: list[float], digits: int) -> str:
    return ", ".join(f"{v:.{digits}f}" for v in values)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


if __name__ == "__main__":
    main()
