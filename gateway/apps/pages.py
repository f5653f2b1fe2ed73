"""What an instance origin serves besides the app's bytes: types, the session script, CSP.

Pure functions (no HTTP): the instance-origin middleware (`gateway.origin`) uses them.
Decision 0018 explains the content security policy.
"""

from __future__ import annotations

import json
import re
from mimetypes import MimeTypes
from typing import Final

# The types apps need, fixed here: the system's mime.types differs between machines.
_TYPES: Final = {
    ".html": "text/html",
    ".htm": "text/html",
    ".js": "text/javascript",
    ".mjs": "text/javascript",
    ".css": "text/css",
    ".json": "application/json",
    ".map": "application/json",
    ".webmanifest": "application/manifest+json",
    ".txt": "text/plain",
    ".csv": "text/csv",
    ".xml": "application/xml",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".avif": "image/avif",
    ".ico": "image/vnd.microsoft.icon",
    ".woff": "font/woff",
    ".woff2": "font/woff2",
    ".ttf": "font/ttf",
    ".otf": "font/otf",
    ".wasm": "application/wasm",
    ".pdf": "application/pdf",
    ".mp4": "video/mp4",
    ".webm": "video/webm",
    ".mp3": "audio/mpeg",
}
# Python's built-in table only (a MimeTypes instance reads no system file).
_BUILT_IN: Final = MimeTypes()
_TEXT: Final = ("text/", "application/json", "application/xml", "image/svg+xml")
HTML: Final = "text/html"

_HEAD: Final = re.compile(rb"<head(?:\s[^>]*)?>", re.IGNORECASE)
_HTML: Final = re.compile(rb"<html(?:\s[^>]*)?>", re.IGNORECASE)
_DOCTYPE: Final = re.compile(rb"\A(?:\xef\xbb\xbf)?\s*<!doctype[^>]*>", re.IGNORECASE)
_SCRIPT_TAG: Final = re.compile(rb"<script(?=[\s>])(?![^>]*\snonce=)", re.IGNORECASE)

UNAUTHENTICATED_PAGE: Final = b"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Open the app from the gateway</title></head>
<body><h1>Open the app from the gateway</h1>
<p>This page belongs to an app, and your browser has no session for it here, or it
has expired. Open the app again from the gateway (its link on the gateway, or a new launch
link) to sign in to it.</p></body></html>
"""
NOT_FOUND_PAGE: Final = b"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Not found</title></head>
<body><h1>Not found</h1><p>The app has no such file.</p></body></html>
"""


def content_type(path: str) -> str:
    """The `Content-Type` of an app file, by its name (UTF-8 for text)."""
    dot = path.rfind(".")
    extension = path[dot:].lower() if dot > path.rfind("/") else ""
    kind = _TYPES.get(extension) or _BUILT_IN.guess_type(path)[0] or "application/octet-stream"
    return f"{kind}; charset=utf-8" if kind.startswith(_TEXT) else kind


def inject_session(page: bytes, session_id: str, nonce: str) -> bytes:
    """The page with `window.__RYUU_SID__` set first thing, and `nonce` on its scripts.

    The script goes right after `<head>`, else after `<html>`, else after the doctype
    (before it would switch the page to quirks mode), else first. The page's own
    `<script>` tags get the nonce too: they are the app author's, whom the origin trusts;
    scripts injected into the page later do not.
    """
    script = b'<script nonce="%s">window.__RYUU_SID__ = %s;</script>' % (
        nonce.encode(),
        json.dumps(session_id).encode(),
    )
    page = _SCRIPT_TAG.sub(b'<script nonce="' + nonce.encode() + b'"', page)
    for anchor in (_HEAD, _HTML, _DOCTYPE):
        match = anchor.search(page)
        if match:
            return page[: match.end()] + script + page[match.end() :]
    return script + page


def content_security_policy(nonce: str) -> str:
    """The policy of an app's pages (decision 0018).

    Scripts: the app's own files, nonce-bearing inline ones (the session script, the
    page's own), and any https origin, because apps load libraries from CDNs. No
    `unsafe-inline` or `unsafe-eval` for scripts: markup injected at run time cannot run
    code. Styles may be inline (widely used, far less dangerous). No plugins, no `<base>`
    to elsewhere, forms post only to the instance, and only the instance may frame it.
    """
    return "; ".join(
        (
            "default-src 'self'",
            f"script-src 'self' 'nonce-{nonce}' https:",
            "style-src 'self' 'unsafe-inline' https:",
            "img-src 'self' data: blob: https:",
            "font-src 'self' data: https:",
            "connect-src 'self' https:",
            "media-src 'self' data: blob: https:",
            "worker-src 'self' blob:",
            "object-src 'none'",
            "base-uri 'self'",
            "form-action 'self'",
            "frame-ancestors 'self'",
        )
    )


# The policy of the gateway's own pages on an instance origin (the 401 and 404 pages).
PLAIN_PAGE_POLICY: Final = "default-src 'none'; base-uri 'none'; form-action 'none'"
