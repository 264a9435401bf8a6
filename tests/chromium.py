"""Open a report in headless Chromium with networking off, let its JavaScript run, and read what it drew.

Debian's ``chromium`` package (``.ci/run`` installs it when it can); tests skip, naming
the package, when no Chromium is installed. A probe script, added to a copy of the page,
waits for the page to load, types a word into the map's search box, and writes what the
page drew (points, legend entries, highlighted points) and every network request the page
made (the Resource Timing entries) into the DOM that ``--dump-dom`` prints.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

_BROWSERS = ("chromium", "chromium-browser", "google-chrome")
# No network: every host name fails to resolve, and anything else goes to a closed port.
_OFFLINE = ["--host-resolver-rules=MAP * ~NOTFOUND", "--proxy-server=http://127.0.0.1:9"]
_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run", *_OFFLINE]
PROBE_ID = "n2d-probe"

_PROBE = """<script>
window.addEventListener("load", function () {
  function view(id) {
    var div = document.getElementById(id);
    if (!div) return null;
    return {
      points: div.querySelectorAll(".scatterlayer path.point").length,
      legend: Array.prototype.map.call(div.querySelectorAll(".legendtext"), function (e) { return e.textContent; }),
    };
  }
  var before = {map: view("n2d-map"), topics: view("n2d-topics"), time: view("n2d-time")};
  var box = document.getElementById("n2d-search");
  box.value = %(word)s;
  box.dispatchEvent(new Event("input"));
  setTimeout(function () {
    var highlighted = Array.prototype.filter.call(
      document.querySelectorAll("#n2d-map .scatterlayer path.point"),
      function (p) { return parseFloat(p.style.opacity) > 0.5; }).length;
    var probe = document.createElement("pre");
    probe.id = "%(probe)s";
    probe.textContent = JSON.stringify({
      views: before,
      search: {note: document.getElementById("n2d-search-note").textContent, highlighted: highlighted},
      requests: performance.getEntriesByType("resource").map(function (e) { return e.name; }),
    });
    document.body.appendChild(probe);
  }, 200);
});
</script>"""


def chromium() -> str:
    for name in _BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    pytest.skip("no Chromium found: install Debian's chromium package (apt-get install chromium); .ci/run does when it runs as root")


def probe_report(page: Path, work: Path, search_word: str) -> tuple[dict, str]:
    """What the page at ``page`` drew once its scripts ran, and the DOM after them (HTML text)."""
    copy = work / "probed.html"
    html = page.read_text(encoding="utf-8")
    probe = _PROBE % {"word": json.dumps(search_word), "probe": PROBE_ID}
    copy.write_text(html.replace("</body>", probe + "\n</body>"), encoding="utf-8")
    result = subprocess.run(
        [chromium(), *_FLAGS, "--virtual-time-budget=20000", "--dump-dom", copy.as_uri()],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    found = re.search(rf'<pre id="{PROBE_ID}">(.*?)</pre>', result.stdout, flags=re.DOTALL)
    assert found, "the probe did not run: the page's scripts failed or did not finish"
    return json.loads(_unescape(found.group(1))), result.stdout


def screenshot(page: Path, png: Path, width: int = 1400, height: int = 2600) -> None:
    png.parent.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        [chromium(), *_FLAGS, "--hide-scrollbars", "--virtual-time-budget=20000", f"--window-size={width},{height}",
         f"--screenshot={png}", page.as_uri()],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0 and png.is_file(), result.stderr[-2000:]


def _unescape(text: str) -> str:
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", '"').replace("&amp;", "&")
