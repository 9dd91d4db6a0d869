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
    if settings.browser_origins:
        app.extensions["hark.storage"].allow_browser_uploads([o.strip() for o in settings.browser_origins.split(",") if o.strip()])
    app.extensions["hark.celery"] = make_celery(settings, name="hark-web")

    from web.batches import bp as batches_bp
    from web.console import bp as console_bp
    from web.health import bp as health_bp
    from web.jobs import bp as jobs_bp
    from web.media import bp as media_bp
    from web.metrics import bp as metrics_bp
    from web.uploads import bp as uploads_bp

    app.register_blueprint(health_bp)
    app.register_blueprint(jobs_bp)
    app.register_blueprint(uploads_bp)
    app.register_blueprint(batches_bp)
    app.register_blueprint(media_bp)
    app.register_blueprint(console_bp)
    app.register_blueprint(metrics_bp)
    register_error_handlers(app)
    register_api_routes(app)
    return app
