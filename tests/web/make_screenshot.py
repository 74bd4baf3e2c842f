"""Write docs/dashboard.png, the README's screenshot, with the dashboard tests' own setup:
a real server over a real SQLite store of seeded tasks, in Debian's headless Chromium.

    .venv/bin/python tests/web/make_screenshot.py [output.png]
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from web_support import chromium, running_service, take_screenshot

ROOT = Path(__file__).resolve().parents[2]


def main(argv: list[str]) -> int:
    out = Path(argv[1]) if len(argv) > 1 else ROOT / "docs" / "dashboard.png"
    with tempfile.TemporaryDirectory(prefix="genperf-screenshot-") as tmp:
        with running_service(Path(tmp)) as service, chromium() as browser:
            take_screenshot(browser, service.url, out)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
