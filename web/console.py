"""The web console: one page served by the API process itself, with its script and styles shipped in
the package (no build step, nothing fetched from a network at run time). It talks to the same /v1 API
as every other client, with the API key the user pastes in, so it can do nothing a key could not."""

from __future__ import annotations

from flask import Blueprint, redirect, render_template
from flask.typing import ResponseReturnValue

from web.context import app_settings

bp = Blueprint("console", __name__)


@bp.get("/")
def index() -> ResponseReturnValue:
    return redirect("/console", code=302)


@bp.get("/console")
def console() -> ResponseReturnValue:
    settings = app_settings()
    return render_template("console.html", direct_upload_bytes=settings.console_direct_upload_bytes)
