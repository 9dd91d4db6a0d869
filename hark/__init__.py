"""Hark: shared core used by the web app and the workers (settings, database, storage, audio, exports)."""
