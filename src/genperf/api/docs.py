"""``/docs``: Swagger UI served from this server, never from a CDN.

FastAPI's default page loads Swagger UI from a CDN, unpinned and without integrity hashes: a
compromised CDN would run its script in the operator's browser next to the API. Here the
assets come from the ``swagger-ui-bundle-v2`` package (a pinned Swagger UI release, installed
with genperf) and the page carries a Content-Security-Policy that allows only this server's
scripts and the page's own inline start-up script (by its hash). ReDoc, CDN-only, is off.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Callable
from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse

DOCS_PATH = "/docs"
ASSETS_PATH = "/docs/assets"
_ASSETS = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "favicon-32x32.png": "image/png",
}


def _assets_dir() -> Path:
    from swagger_ui_bundle import swagger_ui_path

    return Path(str(swagger_ui_path))


def _policy(page: bytes) -> str:
    """The page's CSP: its inline scripts allowed by their SHA-256, nothing from elsewhere."""
    hashes = " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(script).digest()).decode() + "'"
        for script in re.findall(rb"<script>(.*?)</script>", page, re.S)
    )
    return (
        f"default-src 'none'; script-src 'self' {hashes}; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; "
        "frame-ancestors 'none'"
    )


def install_docs(app: FastAPI, title: str) -> None:
    """Serve Swagger UI at ``/docs`` with its assets at ``/docs/assets``."""
    assets = _assets_dir()
    page = get_swagger_ui_html(
        openapi_url=app.openapi_url or "/openapi.json",
        title=f"{title} API",
        swagger_js_url=f"{ASSETS_PATH}/swagger-ui-bundle.js",
        swagger_css_url=f"{ASSETS_PATH}/swagger-ui.css",
        swagger_favicon_url=f"{ASSETS_PATH}/favicon-32x32.png",
    ).body
    headers = {
        "Content-Security-Policy": _policy(bytes(page)),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
    }
    router = APIRouter(include_in_schema=False)

    @router.api_route(DOCS_PATH, methods=["GET", "HEAD"])
    def docs() -> HTMLResponse:
        return HTMLResponse(page, headers=headers)

    for name, media_type in _ASSETS.items():
        router.add_api_route(
            f"{ASSETS_PATH}/{name}", _file(assets / name, media_type), methods=["GET", "HEAD"]
        )
    app.include_router(router)


def _file(path: Path, media_type: str) -> Callable[[], FileResponse]:
    def asset() -> FileResponse:
        return FileResponse(
            path, media_type=media_type, headers={"X-Content-Type-Options": "nosniff"}
        )

    return asset
