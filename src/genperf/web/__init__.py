"""The dashboard: one static page, served by the API at ``/``, that reads the API itself.

There is no build step: ``index.html``, the CSS and the JavaScript modules under ``static/``
are served as they are, with Chart.js vendored under ``static/vendor/``. The page holds no
data of its own; it calls the ``/api/v1/performance`` endpoints from the browser with the
user's token (kept in ``sessionStorage`` for the session), so every access rule of the API
applies to it unchanged. The page itself needs no token: it is the same for everyone.

Only files that exist in the package at start-up are served (a fixed table, so no path a
client sends can reach outside it), each with a strict Content-Security-Policy: scripts,
styles and requests from this server only, no inline script, no framing.

::

    app.include_router(web_router())
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse
from starlette.exceptions import HTTPException

WEB_DIR = Path(__file__).resolve().parent
INDEX_HTML = WEB_DIR / "index.html"
STATIC_DIR = WEB_DIR / "static"
STATIC_PREFIX = "/static"

MEDIA_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".md": "text/plain; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
}

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    )
)

SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    # Revalidate every time (cheap: the ETag answers 304), so an upgrade shows at once.
    "Cache-Control": "no-cache",
}


def static_files(root: Path = STATIC_DIR) -> dict[str, tuple[Path, str]]:
    """Every servable file under ``root``: relative POSIX path -> (file, media type)."""
    table: dict[str, tuple[Path, str]] = {}
    for path in sorted(root.rglob("*")):
        media_type = MEDIA_TYPES.get(path.suffix.lower())
        if media_type is not None and path.is_file():
            table[path.relative_to(root).as_posix()] = (path, media_type)
    return table


def web_router() -> APIRouter:
    """The dashboard's routes: ``GET /`` (the page) and ``GET /static/<file>``.

    They are left out of the OpenAPI document: they are a client of the API, not part of it.
    """
    router = APIRouter(include_in_schema=False)
    files = static_files()

    @router.api_route("/", methods=["GET", "HEAD"])
    def index() -> FileResponse:
        return FileResponse(
            INDEX_HTML, media_type="text/html; charset=utf-8", headers=SECURITY_HEADERS
        )

    @router.api_route(STATIC_PREFIX + "/{name:path}", methods=["GET", "HEAD"])
    def static(name: str) -> FileResponse:
        entry = files.get(name)
        if entry is None:
            raise HTTPException(404, "no such file")
        path, media_type = entry
        return FileResponse(path, media_type=media_type, headers=SECURITY_HEADERS)

    return router


__all__ = ["CONTENT_SECURITY_POLICY", "STATIC_PREFIX", "web_router"]
