"""OpenAPI 3.1 document built from the routes themselves.

Each view declares its contract with `@operation(...)` next to its route; `/v1/openapi.json` walks
Flask's URL map and emits one operation per (rule, method), so the document cannot list a route
that does not exist, and `undocumented(app)` (checked by the tests) names any route that lacks one.
Routes of blueprints this module does not own (health) are described in `EXTERNAL` by endpoint.
Schemas are the pydantic models of web/schemas.py.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Flask, current_app, jsonify
from flask.typing import ResponseReturnValue

from web.schemas import component_schemas, ref

bp = Blueprint("openapi", __name__)

# Component schemas come from the pydantic models in web/schemas.py, the same ones that validate
# requests, so the document and the checks cannot disagree.
SCHEMAS: dict[str, Any] = component_schemas()

ERRORS = {400: "bad request", 401: "missing or invalid API key", 403: "the key's scope is too small", 404: "not found"}


def operation(
    summary: str,
    *,
    responses: dict[int, str | None],
    params: tuple[dict[str, Any], ...] = (),
    body: dict[str, Any] | None = None,
    headers: tuple[dict[str, Any], ...] = (),
    auth: bool = True,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Describe a view: success `responses` map status → schema name (None: no body or not JSON);
    `params` are query parameters; auth adds the 401/403 answers every keyed route can give."""

    def attach(view: Callable[..., Any]) -> Callable[..., Any]:
        view.openapi = {  # type: ignore[attr-defined]
            "summary": summary,
            "responses": responses,
            "params": params,
            "body": body,
            "headers": headers,
            "auth": auth,
        }
        return view

    return attach


def json_body(model: str) -> dict[str, Any]:
    """A JSON request body described by one of web/schemas.py's published models."""
    return {"required": True, "content": {"application/json": {"schema": ref(model)}}}


def query(name: str, schema: dict[str, Any], description: str = "") -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


def header(name: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": "header", "required": False, "schema": {"type": "string"}, "description": description}


def _external(summary: str, responses: dict[int, str | None], auth: bool = False) -> dict[str, Any]:
    return {"summary": summary, "responses": responses, "params": (), "body": None, "headers": (), "auth": auth}


# Routes of other modules, by endpoint; an entry whose route is not registered is left out.
EXTERNAL: dict[str, dict[str, Any]] = {
    "health.healthz": _external("Liveness and readiness", {200: "Health", 503: "Health"}),
    "metrics.metrics": _external("Prometheus metrics (text format)", {200: None}),
    "console.index": _external("Redirect to the web console", {302: None, 200: None}),
    "console.console": _external("The web console (HTML)", {200: None}),
    "media.job_media": _external("A short-lived presigned URL of the job's original recording", {200: None}, auth=True),
}


def _spec_of(app: Flask, endpoint: str) -> dict[str, Any] | None:
    view = app.view_functions.get(endpoint)
    return getattr(view, "openapi", None) or EXTERNAL.get(endpoint)


def _rules(app: Flask) -> list[Any]:
    return [r for r in app.url_map.iter_rules() if r.endpoint != "static"]


def undocumented(app: Flask) -> list[str]:
    return sorted(r.rule for r in _rules(app) if _spec_of(app, r.endpoint) is None)


def _response(status: int, schema: str | None) -> dict[str, Any]:
    entry: dict[str, Any] = {"description": "error" if schema == "Error" else "success"}
    if schema:
        entry["content"] = {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}}
    return entry


def build_spec(app: Flask) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for rule in _rules(app):
        info = _spec_of(app, rule.endpoint)
        if info is None:
            continue
        path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule.rule)
        params = (
            [
                {"name": arg, "in": "path", "required": True, "schema": {"type": "string"}}
                for arg in sorted(rule.arguments)
            ]
            + list(info["params"])
            + list(info["headers"])
        )
        responses = {str(k): _response(k, v) for k, v in info["responses"].items()}
        for status, text in ERRORS.items():
            if info["auth"] or status in (400, 404):
                responses.setdefault(str(status), {**_response(status, "Error"), "description": text})
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            op: dict[str, Any] = {
                "operationId": f"{rule.endpoint}.{method.lower()}",
                "summary": info["summary"],
                "parameters": params,
                "responses": responses,
            }
            if info["body"]:
                op["requestBody"] = info["body"]
            if not info["auth"]:
                op["security"] = []
            paths.setdefault(path, {})[method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": "Hark API", "version": "1"},
        "paths": paths,
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
    }


@bp.get("/v1/openapi.json")
@operation("This document", responses={200: None}, auth=False)
def openapi_json() -> ResponseReturnValue:
    return jsonify(build_spec(current_app))
