"""OpenAPI 3.1 document built from the routes themselves.

Each view declares its contract with `@operation(...)` next to its route; `/v1/openapi.json` walks
Flask's URL map and emits one operation per (rule, method), so the document cannot list a route
that does not exist, and `undocumented(app)` (checked by the tests) names any route that lacks one.
Routes of blueprints this module does not own (health) are described in `EXTERNAL` by endpoint.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Flask, current_app, jsonify

bp = Blueprint("openapi", __name__)

NULLABLE_STR = {"type": ["string", "null"]}
NULLABLE_NUM = {"type": ["number", "null"]}
NULLABLE_INT = {"type": ["integer", "null"]}

SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
            }
        },
    },
    "Job": {
        "type": "object",
        "required": ["id", "status", "progress", "created_at"],
        "properties": {
            "id": {"type": "string", "format": "uuid"},
            "status": {
                "enum": ["uploading", "queued", "preparing", "inferring", "reducing", "done", "failed", "cancelled"]
            },
            "stage": {"type": "string"},
            "filename": {"type": "string"},
            "bytes": NULLABLE_INT,
            "sha256": NULLABLE_STR,
            "duration_s": NULLABLE_NUM,
            "damaged_s": {"type": "number", "minimum": 0},
            "damaged_ranges": {
                "type": "array",
                "items": {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2},
            },
            "options": {"type": "object"},
            "callback_url": NULLABLE_STR,
            "progress": {
                "type": "object",
                "required": ["fraction"],
                "properties": {"fraction": {"type": "number", "minimum": 0, "maximum": 1}},
            },
            "timings": {"type": "object"},
            "error": {
                "oneOf": [
                    {"type": "null"},
                    {
                        "type": "object",
                        "required": ["code"],
                        "properties": {"code": {"type": "string"}, "message": NULLABLE_STR},
                    },
                ]
            },
            "created_at": NULLABLE_STR,
            "started_at": NULLABLE_STR,
            "finished_at": NULLABLE_STR,
            "links": {"type": "object", "additionalProperties": {"type": "string"}},
        },
    },
    "JobSummary": {
        "type": "object",
        "required": ["id", "status", "filename", "created_at", "url"],
        "properties": {
            "id": {"type": "string", "format": "uuid"},
            "status": {"type": "string"},
            "filename": {"type": "string"},
            "duration_s": NULLABLE_NUM,
            "error": {"type": ["object", "null"]},
            "created_at": {"type": "string"},
            "finished_at": NULLABLE_STR,
            "url": {"type": "string"},
        },
    },
    "JobList": {
        "type": "object",
        "required": ["jobs", "next_cursor"],
        "properties": {
            "jobs": {"type": "array", "items": {"$ref": "#/components/schemas/JobSummary"}},
            "next_cursor": NULLABLE_STR,
        },
    },
    "EmotionStats": {
        "type": "object",
        "required": ["rows"],
        "properties": {
            "rows": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["emotion", "emotion_source", "seconds", "segments"],
                    "properties": {
                        "job_id": {"type": "string"},
                        "speaker": NULLABLE_STR,
                        "grain": {"type": "string"},
                        "period_start": {"type": "string"},
                        "emotion": {"type": "string"},
                        "emotion_source": NULLABLE_STR,
                        "seconds": {"type": "number"},
                        "segments": {"type": "integer"},
                        "share": NULLABLE_NUM,
                        "jobs": {"type": "integer"},
                    },
                },
            }
        },
    },
    "SpeakerStats": {
        "type": "object",
        "required": ["rows"],
        "properties": {
            "rows": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["job_id", "speaker", "speech_s", "turns", "share"],
                    "properties": {
                        "job_id": {"type": "string"},
                        "speaker": {"type": "string"},
                        "speech_s": {"type": "number"},
                        "turns": {"type": "integer"},
                        "share": NULLABLE_NUM,
                    },
                },
            }
        },
    },
    "WebhookDeliveries": {
        "type": "object",
        "required": ["deliveries"],
        "properties": {
            "deliveries": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["id", "event", "url", "state", "attempts"],
                    "properties": {
                        "id": {"type": "integer"},
                        "event": {"type": "string"},
                        "url": {"type": "string"},
                        "state": {"enum": ["pending", "delivered", "failed"]},
                        "attempts": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["attempt", "status_code", "error", "duration_ms", "at"],
                                "properties": {
                                    "attempt": {"type": "integer"},
                                    "status_code": NULLABLE_INT,
                                    "error": NULLABLE_STR,
                                    "duration_ms": {"type": "integer"},
                                    "at": {"type": "string"},
                                },
                            },
                        },
                    },
                },
            }
        },
    },
    "WebhookSecret": {"type": "object", "required": ["secret"], "properties": {"secret": {"type": "string"}}},
    "Upload": {
        "type": "object",
        "required": ["upload_id", "job_id", "part_size", "parts", "expires_at"],
        "properties": {
            "upload_id": {"type": "string", "format": "uuid"},
            "job_id": {"type": "string", "format": "uuid"},
            "part_size": {"type": "integer"},
            "parts": {"type": "array", "items": {"type": "object", "required": ["part_number", "url"]}},
            "expires_at": {"type": "string"},
            "complete_url": {"type": "string"},
        },
    },
    "UploadStatus": {
        "type": "object",
        "required": ["upload_id", "job_id", "status", "part_size", "parts_total"],
        "properties": {
            "status": {"enum": ["open", "completed", "aborted"]},
            "uploaded": {"type": "array", "items": {"type": "object", "required": ["part_number", "etag", "size"]}},
            "parts": {"type": "array", "items": {"type": "object", "required": ["part_number", "url"]}},
        },
    },
    "Batch": {
        "type": "object",
        "required": ["id", "status", "jobs_total", "counts", "progress", "jobs"],
        "properties": {
            "id": {"type": "string", "format": "uuid"},
            "name": NULLABLE_STR,
            "status": {"enum": ["queued", "running", "done", "partial", "failed"]},
            "jobs_total": {"type": "integer"},
            "counts": {"type": "object", "additionalProperties": {"type": "integer"}},
            "progress": {"type": "object", "required": ["fraction"]},
            "jobs": {"type": "array", "items": {"type": "object", "required": ["id", "status"]}},
        },
    },
    "Health": {
        "type": "object",
        "required": ["status", "checks"],
        "properties": {"status": {"enum": ["ok", "degraded"]}, "checks": {"type": "object"}},
    },
}

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


def json_body(properties: dict[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    """A JSON request body with these properties."""
    schema = {"type": "object", "properties": properties, "required": list(required)}
    return {"required": True, "content": {"application/json": {"schema": schema}}}


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
def openapi_json():  # type: ignore[no-untyped-def]
    return jsonify(build_spec(current_app))
