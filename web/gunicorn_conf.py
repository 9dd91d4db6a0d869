"""gunicorn settings for the API, the same in compose, k8s, the image and the tests:
`gunicorn -c python:web.gunicorn_conf 'web:create_app()'` (flags given after -c override these).

Threaded workers with client deadlines (web/serving.py). Each worker process serves `threads`
requests at once; connections that are idle (keep-alive) or have sent nothing yet hold no thread.
Client deadlines are settings: HARK_WEB_HEADER_TIMEOUT_S, HARK_WEB_IDLE_TIMEOUT_S.
"""

from __future__ import annotations

import os

bind = "0.0.0.0:8000"
# WEB_CONCURRENCY is the usual name for it; anything else: GUNICORN_CMD_ARGS="--threads 64".
workers = int(os.environ.get("WEB_CONCURRENCY", "4"))
worker_class = "web.serving.GuardedThreadWorker"
# A thread waiting on a slow client costs a stack, not CPU: enough of them that a few dozen slow
# clients (each held at most the header deadline) leave threads for everyone else.
threads = 32
# Open connections per worker process; past it the worker stops accepting until some close.
worker_connections = 1000
# The arbiter's heartbeat: the threaded worker's main loop beats while threads work, so this only
# replaces a wedged process; a long upload is not a wedged process.
timeout = 60
graceful_timeout = 30
keepalive = 5
# Request line and headers are bounded in size (gunicorn's defaults, stated for the record).
limit_request_line = 4094
limit_request_fields = 100
limit_request_field_size = 8190
