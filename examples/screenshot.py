"""Picture of a saetm report: the page title plus chosen sections, as one PNG.

    python examples/screenshot.py examples/out/over_time.html docs/images/over_time.png \
        --sections topics-over-time,topics-by-class
    python examples/screenshot.py examples/out/over_time.html docs/images/report_phone.png \
        --width 390 --sections topics,top-words,topics-over-time --max-section-height 1300 --side-by-side

How the images in docs/images were made. Needs a Chromium (``apt-get install
chromium``) and Pillow. Section ids are the report's anchors: notes, topics,
top-words, images, topic-map, topics-over-time, topics-by-class, topic-hierarchy,
documents, settings. Widths under 500 px (a phone) are drawn in an iframe, because
headless Chromium keeps its window at least 500 px wide.
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

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--hide-scrollbars", "--virtual-time-budget=8000",
         "--allow-file-access-from-files"]
MIN_WINDOW = 500  # headless Chromium's narrowest window
# Reports where each section sits once the charts are drawn, and where the title block ends.
PROBE = """<script>window.addEventListener("load", function () { setTimeout(function () {
  var r = [].map.call(document.querySelectorAll("section"), function (s) {
    var b = s.getBoundingClientRect(); return [s.id, b.top + window.scrollY, b.height]; });
  var m = document.querySelector("header .meta").getBoundingClientRect();
  var out = JSON.stringify({pos: r, h: document.body.scrollHeight, title: m.bottom + window.scrollY + 12});
  document.documentElement.setAttribute("data-probe", out);
  if (window.parent !== window) window.parent.postMessage(out, "*"); }, 300); });</script></body>"""
LISTEN = ('<script>window.addEventListener("message", function (e) {'
          'document.documentElement.setAttribute("data-probe", e.data); });</script>')


def _page(tmp: Path, url: str, width: int, height: int) -> tuple[str, int]:
    """(url to load, window width): the page itself, or an iframe of ``width`` px holding it."""
    if width >= MIN_WINDOW:
        return url, width
    wrap = tmp / f"wrap-{height}.html"
    wrap.write_text(f'<html><body style="margin:0"><iframe src="{url}" style="border:0;width:{width}px;'
                    f'height:{height}px"></iframe>{LISTEN}</body></html>', encoding="utf-8")
    return wrap.as_uri(), MIN_WINDOW + 20


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("report")
    p.add_argument("out")
    p.add_argument("--sections", default="topics-over-time,topics-by-class")
    p.add_argument("--width", type=int, default=1400, help="viewport width in px (390: a phone)")
    p.add_argument("--max-section-height", type=int, default=0, help="cut each section to this many px (0: whole)")
    p.add_argument("--side-by-side", action="store_true", help="sections in columns, not one under another")
    args = p.parse_args()

    from PIL import Image

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("needs chromium: apt-get install -y chromium")
    report = Path(args.report).resolve()
    tmp = Path(tempfile.mkdtemp())
    probe = tmp / "probe.html"
    probe.write_text(report.read_text(encoding="utf-8").replace("</body>", PROBE), encoding="utf-8")
    url, window = _page(tmp, probe.as_uri(), args.width, 2000)
    dom = subprocess.run([chromium, *FLAGS, f"--user-data-dir={tmp / 'a'}", f"--window-size={window},1800",
                          "--dump-dom", url], capture_output=True, text=True, timeout=180).stdout
    root = re.search(r"<html[^>]*>", dom).group(0)
    seen = json.loads(html.unescape(re.search(r'data-probe="([^"]*)"', root).group(1)))
    where = {name: (int(top), int(h)) for name, top, h in seen["pos"]}
    height = int(seen["h"])
    full = tmp / "full.png"
    url, window = _page(tmp, report.as_uri(), args.width, height)
    subprocess.run([chromium, *FLAGS, f"--user-data-dir={tmp / 'b'}", f"--window-size={window},{height}",
                    f"--screenshot={full}", url], capture_output=True, timeout=180)
    page = Image.open(full)
    parts = [page.crop((0, 0, args.width, int(seen["title"])))]
    for name in args.sections.split(","):
        if name not in where:
            raise SystemExit(f"the report has no section {name!r}; it has {', '.join(where)}")
        top, h = where[name]
        if args.max_section_height:
            h = min(h, args.max_section_height)
        parts.append(page.crop((0, top - 8, args.width, top + h + 8)))
    if args.side_by_side:  # the title over the first column, a 16-px gap between columns
        gap, columns = 16, [[parts[0], parts[1]]] + [[part] for part in parts[2:]]
    else:
        gap, columns = 0, [parts]
    canvas = Image.new("RGB", (len(columns) * (args.width + gap) - gap,
                               max(sum(part.height for part in col) for col in columns)), (250, 251, 252))
    for i, col in enumerate(columns):
        y = 0
        for part in col:
            canvas.paste(part, (i * (args.width + gap), y))
            y += part.height
    canvas.save(args.out, optimize=True)
    shutil.rmtree(tmp, ignore_errors=True)
    print(f"{args.out}: {canvas.size[0]}×{canvas.size[1]}")


if __name__ == "__main__":
    main()
