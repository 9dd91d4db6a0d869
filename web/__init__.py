"""Hark's HTTP API: the Flask application factory."""
from __future__ import annotations

from flask import Flask

from hark.logs import configure_logging
from hark.queues import make_celery
from hark.settings import Settings
from hark.storage import Storage
from web.api_routes import register_api_routes
from web.errors import register_error_handlers
from web.streaming import StreamingRequest


def create_app(settings: Settings | None = None) -> Flask:
    """Build the app for one deployment; tests build their own against their own database/bucket."""
    settings = settings or Settings.from_env()
    configure_logging()
    app = Flask(__name__)
    app.request_class = StreamingRequest
    app.config["MAX_CONTENT_LENGTH"] = settings.max_upload_bytes
    app.extensions["hark.settings"] = settings
    app.extensions["hark.storage"] = Storage(settings)
    app.extensions["hark.celery"] = make_celery(settings, name="hark-web")

    from web.health import bp as health_bp
    from web.jobs import bp as jobs_bp

    app.register_blueprint(health_bp)
    app.register_blueprint(jobs_bp)
    register_error_handlers(app)
    register_api_routes(app)
    return app
