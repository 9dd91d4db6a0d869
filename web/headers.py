"""Security headers on every response: the API's JSON and the console page alike.

The API answers JSON that no browser should render or frame; the console is one page with its
own script and styles (no inline code), which loads audio from, and PUTs upload parts to, the S3
endpoint clients reach. The policy names exactly those origins.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Flask, Response

from hark.settings import Settings

API_POLICY = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""


def console_policy(settings: Settings) -> str:
    s3 = _origin(settings.s3_public_endpoint or settings.s3_endpoint)
    return "; ".join(
        (
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data:",
            f"media-src 'self' {s3}".rstrip(),
            f"connect-src 'self' {s3}".rstrip(),
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        )
    )


def register_security_headers(app: Flask, settings: Settings) -> None:
    console = console_policy(settings)

    @app.after_request
    def _headers(response: Response) -> Response:
        html = response.mimetype == "text/html"
        response.headers.setdefault("Content-Security-Policy", console if html else API_POLICY)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        return response
