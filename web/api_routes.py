"""Blueprints of the job API's collection, stats, webhook and OpenAPI routes, registered together
so the app factory stays one line per concern."""

from __future__ import annotations

from flask import Flask


def register_api_routes(app: Flask) -> None:
    from web.job_actions import bp as job_actions_bp
    from web.openai_audio import bp as openai_audio_bp
    from web.openapi import bp as openapi_bp
    from web.stats import bp as stats_bp
    from web.voices import bp as voices_bp
    from web.webhooks import bp as webhooks_bp

    for blueprint in (job_actions_bp, stats_bp, webhooks_bp, voices_bp, openapi_bp, openai_audio_bp):
        app.register_blueprint(blueprint)
