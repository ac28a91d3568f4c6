# SPDX-License-Identifier: GPL-3.0-or-later
"""The console's static files: served without credentials, nothing else of the package."""

import re

import pytest

from kvmd.server.webui import WEB_ROOT


async def test_the_console_page_needs_no_credentials_and_loads_nothing_foreign(client):
    response = await client.get("/")
    assert response.status == 200
    assert response.content_type == "text/html"
    page = await response.text()
    assert page == (WEB_ROOT / "index.html").read_text()
    # Every script, style and image is the daemon's own.
    for ref in re.findall(r'(?:src|href)="([^"]+)"', page):
        assert ref.startswith(("/ui/", "/api/", "data:")), ref
    csp = response.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp
    assert response.headers["Cache-Control"] == "no-cache"


@pytest.mark.parametrize(
    ("name", "content_type"),
    [("main.js", "text/javascript"), ("style.css", "text/css"), ("input.js", "text/javascript")],
)
async def test_assets(client, name, content_type):
    response = await client.get(f"/ui/{name}")
    assert response.status == 200
    assert response.content_type == content_type
    assert await response.read() == (WEB_ROOT / "ui" / name).read_bytes()
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    # An unchanged file revalidates to an empty 304.
    again = await client.get(
        f"/ui/{name}", headers={"If-Modified-Since": response.headers["Last-Modified"]}
    )
    assert again.status == 304


@pytest.mark.parametrize(
    "path",
    [
        "/ui/missing.js",
        "/ui/..%2Fwebui.py",
        "/ui/%2E%2E%2Findex.html",
        "/ui/MAIN.JS",
        "/ui/main.py",
        "/ui/.hidden.js",
        "/ui/",
        "/index.html",
    ],
)
async def test_nothing_else_is_served(client, path):
    response = await client.get(path)
    assert response.status == 404
    assert "def " not in await response.text()


def test_every_module_the_console_imports_is_shipped():
    # A renamed module would leave the page half-loaded: every import names a shipped file.
    for script in (WEB_ROOT / "ui").glob("*.js"):
        for name in re.findall(r'from "\./([^"]+)"', script.read_text()):
            assert (WEB_ROOT / "ui" / name).is_file(), f"{script.name} imports {name}"
