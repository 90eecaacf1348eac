"""eegwb/report_html.py: a real `marimo export html` page packed so it needs no network.

Whether the packed page renders offline is checked in a browser by
tests/browser/test_offline_reports.py; here, what the packing must guarantee."""

from __future__ import annotations

import base64
import gzip
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from eegwb.report_html import (
    PAYLOAD_ID,
    OfflineReportError,
    find_frontend,
    inline_frontend,
    make_offline,
)

NOTEBOOK = """import marimo

app = marimo.App()


@app.cell
def _():
    import marimo as mo

    mo.md("# Packed *offline*")
    return


if __name__ == "__main__":
    app.run()
"""


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("export")
    (base / "nb.py").write_text(NOTEBOOK)
    marimo = Path(sys.executable).with_name("marimo")
    subprocess.run(
        [str(marimo), "export", "html", "nb.py", "-o", "nb.html"],
        cwd=base,
        check=True,
        capture_output=True,
        timeout=120,
    )
    return base / "nb.html"


def _bundle(page: str) -> dict:
    packed = re.search(
        rf'<script type="application/gzip;base64" id="{PAYLOAD_ID}">([^<]+)</script>', page
    )
    assert packed, "no packed viewer in the page"
    return json.loads(gzip.decompress(base64.b64decode(packed.group(1))))


def test_the_plain_export_loads_its_viewer_from_a_cdn(exported: Path) -> None:
    html = exported.read_text()
    frontend = find_frontend(html)
    assert frontend.cdn_base.startswith("https://") and frontend.cdn_base in html
    assert (frontend.assets / frontend.entry).is_file()  # the same build ships in the wheel


def test_packed_page_names_no_network_resource(exported: Path) -> None:
    page = inline_frontend(exported.read_text())
    assert not re.search(r'<(script|link)\b[^>]*(src|href)="https?://', page)
    assert "Packed" in page  # the notebook's own output is still there
    bundle = _bundle(page)
    assert bundle["entry"] in bundle["modules"]
    # every module the viewer can load by a literal ./name.js, and every stylesheet
    assert len(bundle["modules"]) > 100 and len(bundle["styles"]) >= 4
    assets = find_frontend(exported.read_text()).assets
    for url, code in bundle["modules"].items():
        relative = re.findall(r"""["'`]\./([\w.\-]+\.js)["'`]""", code)
        assert not [n for n in relative if (assets / n).is_file()], f"{url}: relative import left"
        assert "import.meta.url" not in code, url
        assert "__vite__mapDeps=()=>[]" in code or "__vite__mapDeps" not in code, url
    fonts = "".join(bundle["styles"].values())
    assert "url(./" not in fonts and "data:font/woff2;base64," in fonts


def test_refuses_a_page_that_is_not_a_marimo_export(tmp_path: Path, exported: Path) -> None:
    with pytest.raises(OfflineReportError, match="no marimo frontend"):
        inline_frontend("<html><body>hello</body></html>", source="x.html")
    packed = make_offline(exported, tmp_path / "packed.html")
    with pytest.raises(OfflineReportError, match="already self-contained"):
        make_offline(packed, tmp_path / "twice.html")
    with pytest.raises(FileExistsError, match="already exists"):
        make_offline(exported, packed)
