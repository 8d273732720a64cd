"""Picture of a saetm report: the page title plus chosen sections, as one PNG.

    python examples/screenshot.py examples/out/over_time.html docs/images/over_time.png \
        --sections topics-over-time,topics-by-class

How the images in docs/images were made. Needs a Chromium (``apt-get install
chromium``) and Pillow. Section ids are the report's anchors: notes, topics,
top-words, topic-map, topics-over-time, topics-by-class, topic-hierarchy,
documents, settings.
"""

from __future__ import annotations

import argparse
import html
import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

WIDTH = 1400
TITLE_HEIGHT = 116  # the h1 and the "made with" line; the contents box is left out
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--hide-scrollbars", "--virtual-time-budget=8000"]
# Reports where each section sits once the charts are drawn.
PROBE = """<script>window.addEventListener("load", function () { setTimeout(function () {
  var r = [].map.call(document.querySelectorAll("section"), function (s) {
    var b = s.getBoundingClientRect(); return [s.id, b.top + window.scrollY, b.height]; });
  document.documentElement.setAttribute("data-pos", JSON.stringify(r));
  document.documentElement.setAttribute("data-h", document.body.scrollHeight); }, 300); });</script></body>"""


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("report")
    p.add_argument("out")
    p.add_argument("--sections", default="topics-over-time,topics-by-class")
    args = p.parse_args()

    from PIL import Image

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("needs chromium: apt-get install -y chromium")
    report = Path(args.report).resolve()
    tmp = Path(tempfile.mkdtemp())
    probe = tmp / "probe.html"
    probe.write_text(report.read_text(encoding="utf-8").replace("</body>", PROBE), encoding="utf-8")
    dom = subprocess.run([chromium, *FLAGS, f"--user-data-dir={tmp / 'a'}", f"--window-size={WIDTH},1800",
                          "--dump-dom", probe.as_uri()], capture_output=True, text=True, timeout=180).stdout
    root = re.search(r"<html[^>]*>", dom).group(0)
    where = {name: (int(top), int(h)) for name, top, h in
             json.loads(html.unescape(re.search(r'data-pos="([^"]*)"', root).group(1)))}
    height = int(re.search(r'data-h="(\d+)"', root).group(1))
    full = tmp / "full.png"
    subprocess.run([chromium, *FLAGS, f"--user-data-dir={tmp / 'b'}", f"--window-size={WIDTH},{height}",
                    f"--screenshot={full}", report.as_uri()], capture_output=True, timeout=180)
    page = Image.open(full)
    parts = [page.crop((0, 0, WIDTH, TITLE_HEIGHT))]
    for name in args.sections.split(","):
        if name not in where:
            raise SystemExit(f"the report has no section {name!r}; it has {', '.join(where)}")
        top, h = where[name]
        parts.append(page.crop((0, top - 8, WIDTH, top + h + 8)))
    canvas = Image.new("RGB", (WIDTH, sum(part.height for part in parts)), (250, 251, 252))
    y = 0
    for part in parts:
        canvas.paste(part, (0, y))
        y += part.height
    canvas.save(args.out, optimize=True)
    shutil.rmtree(tmp, ignore_errors=True)
    print(f"{args.out}: {canvas.size[0]}×{canvas.size[1]}")


if __name__ == "__main__":
    main()
