"""Exported marimo notebooks that open offline: marimo's frontend packed into the HTML.

`marimo export html` (0.25) writes the notebook's outputs into a page whose viewer, an
ES-module graph of ~650 files, loads from cdn.jsdelivr.net: without internet (a hospital
network, an archive, CI) the page stays white. marimo's own `--offline` exists only for
`export html-wasm`, where it downloads Pyodide. Its wheel ships the same viewer build in
`marimo/_static/assets/`, so `inline_frontend` packs that build into the export:

1. from the entry module, every module a `./name.js` literal reaches (static and dynamic
   imports: what the viewer may load when a reader clicks, not only at start) is read;
2. each module's `./name` specifiers and `import.meta.url` are made absolute, to the very
   CDN URLs the export names, and Vite's preload lists are emptied (the stylesheets they
   would fetch are inlined instead);
3. modules and stylesheets (fonts and images as data: URIs) go into one gzip + base64
   payload (~6 MB); a small script unpacks it into blob: URLs and an import map keyed by
   those CDN URLs, then imports the entry.

Anything not packed (the collaboration WebAssembly, workers of the editor) still resolves
to the CDN and works online. The autopsy's report (inline SVG) stays the simpler model;
this keeps marimo's own renderer, tables and charts included.
"""

from __future__ import annotations

import base64
import gzip
import json
import mimetypes
import re
from dataclasses import dataclass
from pathlib import Path

from eegwb.atomic import atomic_write_text
from eegwb.errors import InputError, MissingInputError

PAYLOAD_ID = "eegwb-marimo-frontend"
# The export's entry module: <script type="module" crossorigin src=".../dist/assets/index-X.js">
_ENTRY = re.compile(
    r'<script type="module"[^>]*\bsrc="(?P<base>https://[^"]+/@marimo-team/frontend@'
    r'(?P<version>[^/"]+)/dist/)assets/(?P<entry>[^"/]+\.js)"[^>]*></script>'
)
_LINK = re.compile(r"<link\b[^>]*>")
_RELATIVE = re.compile(r"""(["'`])\./([A-Za-z0-9_.\-]+)\1""")
_CSS_URL = re.compile(r"""url\(\s*(["']?)\./([A-Za-z0-9_.\-]+)\1\s*\)""")
# Vite's table of preload dependencies: `const __vite__mapDeps=(i,m=...,d=(m.f||(m.f=[...])))
# =>i.map(i=>d[i]);`. Emptied, the preload helper just runs the import.
_MAP_DEPS = re.compile(
    r"const __vite__mapDeps=\(i,m=__vite__mapDeps,d=\(m\.f\|\|\(m\.f=\[[^\]]*\]\)\)\)=>"
    r"i\.map\(i=>d\[i\]\);"
)
_DATA_URI_TYPES = {
    ".woff2": "font/woff2",
    ".png": "image/png",
    ".svg": "image/svg+xml",
    ".gif": "image/gif",
    ".jpg": "image/jpeg",
}


class OfflineReportError(InputError):
    """The export cannot be made self-contained (not a marimo export, another version)."""


@dataclass(frozen=True)
class Frontend:
    """The viewer build an export names, and where the same build lies on disk."""

    cdn_base: str  # https://cdn.jsdelivr.net/npm/@marimo-team/frontend@0.25.2/dist/
    version: str
    entry: str  # index-<hash>.js
    assets: Path  # marimo/_static/assets of the installed marimo


def marimo_assets() -> Path:
    """The installed marimo's frontend build (`marimo/_static/assets`)."""
    import marimo

    return Path(marimo.__file__).parent / "_static" / "assets"


def find_frontend(html: str, assets: Path | None = None, source: str = "<html>") -> Frontend:
    """The frontend `html` loads, checked against the build on disk."""
    import marimo

    match = _ENTRY.search(html)
    if match is None:
        raise OfflineReportError(
            f"{source}: no marimo frontend <script type=module src=...@marimo-team/frontend@"
            "...> found; is it a `marimo export html` page (or already self-contained)?"
        )
    assets = assets or marimo_assets()
    entry = match["entry"]
    if not (assets / entry).is_file():
        raise OfflineReportError(
            f"{source}: exported by marimo {match['version']}, whose viewer entry {entry} is "
            f"not in {assets} (marimo {marimo.__version__} installed); export it again here"
        )
    return Frontend(match["base"], match["version"], entry, assets)


def module_closure(frontend: Frontend) -> list[str]:
    """Every module reachable from the entry through `./name.js` literals, entry first."""
    seen, order, todo = set(), [], [frontend.entry]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        order.append(name)
        text = (frontend.assets / name).read_text(encoding="utf-8")
        todo += [
            n
            for _, n in _RELATIVE.findall(text)
            if n.endswith(".js") and n not in seen and (frontend.assets / n).is_file()
        ]
    return order


def rewrite_module(name: str, text: str, frontend: Frontend) -> str:
    """One module with absolute specifiers, its own CDN URL as `import.meta.url`, and no
    preload list (a blob: module cannot resolve `./x.js`, and preloads would go online)."""
    base = frontend.cdn_base + "assets/"
    if "__vite__mapDeps" in text:
        text, n = _MAP_DEPS.subn("const __vite__mapDeps=()=>[];", text, count=1)
        if n != 1:
            raise OfflineReportError(
                f"{frontend.assets / name}: Vite's preload table has a form this packer does "
                f"not know (marimo {frontend.version}); the export cannot be packed"
            )

    def absolute(m: re.Match) -> str:
        quote, target = m.group(1), m.group(2)
        if not (frontend.assets / target).is_file():
            return m.group(0)
        return f"{quote}{base}{target}{quote}"

    text = _RELATIVE.sub(absolute, text)
    return text.replace("import.meta.url", json.dumps(base + name))


def _data_uri(path: Path) -> str:
    kind = _DATA_URI_TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0]
    return f"data:{kind};base64,{base64.b64encode(path.read_bytes()).decode('ascii')}"


def rewrite_css(text: str, frontend: Frontend) -> str:
    """A stylesheet with its fonts and images as data: URIs; other formats of a font
    (woff, ttf: never fetched where woff2 loads) point at the CDN."""

    def inline(m: re.Match) -> str:
        path = frontend.assets / m.group(2)
        if path.suffix in _DATA_URI_TYPES and path.is_file():
            return f'url("{_data_uri(path)}")'
        return f'url("{frontend.cdn_base}assets/{m.group(2)}")'

    return _CSS_URL.sub(inline, text)


def stylesheets(html: str, modules: list[str], frontend: Frontend) -> dict[str, str]:
    """{CDN URL: CSS}: the page's stylesheets, then those the modules' preload tables
    would have added."""
    linked = re.findall(re.escape(frontend.cdn_base) + r"assets/([^\"]+\.css)", html)
    lazy = sorted(
        {
            n
            for m in modules
            for _, n in _RELATIVE.findall((frontend.assets / m).read_text(encoding="utf-8"))
            if n.endswith(".css")
        }
    )
    names = list(dict.fromkeys([*linked, *lazy]))
    return {
        f"{frontend.cdn_base}assets/{n}": rewrite_css(
            (frontend.assets / n).read_text(encoding="utf-8"), frontend
        )
        for n in names
        if (frontend.assets / n).is_file()
    }


_BOOT = """<script data-eegwb="offline">
(async () => {
  // The viewer, packed (see eegwb/report_html.py): unpack it, map its CDN URLs to blobs.
  const packed = document.getElementById("%(id)s").textContent.trim();
  const response = await fetch("data:application/gzip;base64," + packed);
  const stream = response.body.pipeThrough(new DecompressionStream("gzip"));
  const bundle = JSON.parse(await new Response(stream).text());
  for (const [url, css] of Object.entries(bundle.styles)) {
    const style = document.createElement("style");
    style.dataset.viteDevId = url;  // so marimo copies it into its outputs' shadow roots
    style.textContent = css;
    document.head.append(style);
  }
  const imports = {};
  for (const [url, code] of Object.entries(bundle.modules)) {
    imports[url] = URL.createObjectURL(new Blob([code], {type: "text/javascript"}));
  }
  const map = document.createElement("script");
  map.type = "importmap";
  map.textContent = JSON.stringify({imports});
  document.head.append(map);
  const entry = document.createElement("script");
  entry.type = "module";
  entry.textContent = "import " + JSON.stringify(bundle.entry) + ";";
  document.head.append(entry);
})().catch((error) => {
  document.body.prepend("This report could not unpack its viewer: " + error);
  throw error;
});
</script>"""


def inline_frontend(html: str, assets: Path | None = None, source: str = "<html>") -> str:
    """`html` (a `marimo export html` page) with marimo's viewer packed in: it opens with
    no network and shows every output and chart."""
    frontend = find_frontend(html, assets, source)
    modules = module_closure(frontend)
    base = frontend.cdn_base + "assets/"
    bundle = {
        "entry": base + frontend.entry,
        "modules": {
            base + m: rewrite_module(m, (frontend.assets / m).read_text(encoding="utf-8"), frontend)
            for m in modules
        },
        "styles": stylesheets(html, modules, frontend),
    }
    packed = base64.b64encode(gzip.compress(json.dumps(bundle).encode("utf-8"), 6, mtime=0))
    favicon = frontend.assets.parent / "favicon.ico"

    def keep_link(m: re.Match) -> str:
        tag = m.group(0)
        if frontend.cdn_base not in tag:
            return tag
        if 'rel="icon"' in tag and favicon.is_file():
            return f'<link rel="icon" href="{_data_uri(favicon)}" />'
        return ""  # preloads, stylesheets (packed), the manifest: nothing to fetch offline

    page = _LINK.sub(keep_link, html)
    boot = (
        f'<script type="application/gzip;base64" id="{PAYLOAD_ID}">'
        f"{packed.decode('ascii')}</script>\n{_BOOT % {'id': PAYLOAD_ID}}"
    )
    page = _ENTRY.sub(lambda _m: boot, page, count=1)
    # The payload is one base64 line; it goes where the entry script was, in <head>.
    if frontend.cdn_base in page.replace(packed.decode("ascii"), ""):
        left = page.count(frontend.cdn_base)
        raise OfflineReportError(f"{source}: {left} reference(s) to {frontend.cdn_base} left")
    return page


def make_offline(exported: str | Path, out: str | Path, *, overwrite: bool = False) -> Path:
    """Read a `marimo export html` file, write its self-contained version to `out`."""
    exported = Path(exported)
    if not exported.is_file():
        raise MissingInputError(f"{exported}: no such file")
    html = exported.read_text(encoding="utf-8")
    return atomic_write_text(out, inline_frontend(html, source=str(exported)), overwrite=overwrite)
