"""Typed access to what `web.create_app` stores on the application (one place, one spelling)."""

from __future__ import annotations

from flask import current_app

from hark.settings import Settings
from hark.storage import Storage


def app_settings() -> Settings:
    """The settings the running app was created with."""
    settings: Settings = current_app.extensions["hark.settings"]
    return settings


def app_storage() -> Storage:
    """The app's object store client."""
    storage: Storage = current_app.extensions["hark.storage"]
    return storage
