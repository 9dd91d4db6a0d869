"""The gunicorn worker the API runs under: gunicorn's threaded worker with deadlines on the client.

Why not the sync worker: one sync worker serves one connection at a time, and blocks in `recv` for
as long as the client likes; two clients that send headers and then dribble a body took the whole
API down. The threaded worker (`gthread`) parks idle keep-alive connections in a poller and gives a
connection a thread only once it sends something, so many open connections cost no threads. What
it does not bound is a client that, once it has a thread, sends slowly. This worker adds:

- a header deadline: a request's line and headers must arrive within `header_timeout_s` of the
  first byte, or the connection is closed (slowloris);
- an idle deadline on every later read and write (`idle_timeout_s`): a body that stalls, or a client
  that stops reading its response, releases the thread;
- close-after-response: a request the app refused without reading its body (bad key, body too
  large) asks for the connection to be closed instead of gunicorn draining the unread body;
- closing in the pool thread: gunicorn lingers up to 2 s for a closing client's FIN on its main
  loop, so clients that never close stalled everything else; here the linger is LINGER_S in the
  thread that served the request.

Authentication happens before any body is read (web/auth.py), so a client without a key costs one
header read. A buffering proxy in front (nginx, a cloud load balancer) adds further protection and
is welcome, but the API does not depend on one.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from gunicorn import util
from gunicorn.http.errors import NoMoreData
from gunicorn.workers.gthread import ThreadWorker

from hark.settings import Settings

# How long a closing connection waits for the client's FIN after our response (see handle): long
# enough for a client that reads its answer and closes, short enough that many that do not hold
# few threads.
LINGER_S = 0.25


class GuardedSocket:
    """A client socket whose blocking reads and writes have deadlines (see the module docstring).

    gunicorn switches the socket between blocking (in a worker thread) and non-blocking (in its
    poller) with `setblocking`; here "blocking" means "blocking for at most the idle timeout"."""

    def __init__(self, sock: socket.socket, header_timeout_s: float, idle_timeout_s: float) -> None:
        self._sock = sock
        self.header_timeout_s, self.idle_timeout_s = header_timeout_s, idle_timeout_s
        # While set, every read waits at most until then (the headers; a bounded drain).
        self.deadline: float | None = None
        self.close_after_response = False

    def setblocking(self, flag: bool) -> None:
        if self._sock.fileno() == -1:
            return  # closed in the pool thread already (see GuardedThreadWorker.handle)
        if flag:
            self._sock.settimeout(self.idle_timeout_s)
        else:
            self._sock.setblocking(False)

    def begin_request(self) -> None:
        self.deadline = time.monotonic() + self.header_timeout_s
        self.close_after_response = False

    def headers_read(self) -> None:
        self.deadline = None

    def recv(self, size: int, *flags: int) -> bytes:
        if self.deadline is None or self._sock.gettimeout() == 0.0:
            return self._sock.recv(size, *flags)
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise NoMoreData()
        self._sock.settimeout(min(self.idle_timeout_s, remaining))
        try:
            return self._sock.recv(size, *flags)
        except TimeoutError:
            # gunicorn treats NoMoreData as a client that went away: the connection closes quietly
            # (a timeout would be logged with a traceback per slow client, a log an attacker fills).
            raise NoMoreData() from None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


class GuardedThreadWorker(ThreadWorker):
    """gunicorn's gthread worker with GuardedSocket connections."""

    def init_process(self) -> None:
        settings = Settings.from_env()
        self.header_timeout_s, self.idle_timeout_s = settings.web_header_timeout_s, settings.web_idle_timeout_s
        super().init_process()

    def load_wsgi(self) -> None:
        super().load_wsgi()
        app: Any = getattr(self, "wsgi")  # noqa: B009 - set by gunicorn's load_wsgi, untyped

        def announcing_close(environ: dict[str, Any], start_response: Any) -> Any:
            def start(status: str, headers: Any, exc_info: Any = None) -> Any:
                # A response after which the connection closes (its body was not read) says so in
                # its headers, or a keep-alive client sends its next request into the closing socket.
                sock = environ.get("gunicorn.socket")
                response = getattr(start_response, "__self__", None)
                if isinstance(sock, GuardedSocket) and sock.close_after_response and response is not None:
                    response.force_close()
                return start_response(status, headers, exc_info)

            return app(environ, start)

        self.wsgi = announcing_close

    def enqueue_req(self, conn: Any) -> None:
        if not isinstance(conn.sock, GuardedSocket):
            conn.sock = GuardedSocket(conn.sock, self.header_timeout_s, self.idle_timeout_s)
        super().enqueue_req(conn)

    def handle(self, conn: Any) -> Any:
        conn.sock.begin_request()
        keep = super().handle(conn)
        if keep is False:
            # gunicorn closes a finished connection "gracefully" (half-close, then wait up to 2 s
            # for the client's FIN so unread request bytes do not reset the response) on its main
            # thread, which also accepts and dispatches every other connection: 25 refused clients
            # that never close stalled the whole worker for 50 s. Done here, the wait costs one
            # pool thread for at most LINGER_S; gunicorn's own close then finds it closed.
            util.close_graceful(conn.sock, timeout=LINGER_S)
        return keep

    def handle_request(self, req: Any, conn: Any) -> Any:
        conn.sock.headers_read()
        return super().handle_request(req, conn)

    def _keepalive_after(self, conn: Any, keepalive: Any) -> Any:
        if conn.sock.close_after_response:
            return False
        return super()._keepalive_after(conn, keepalive)


@contextmanager
def read_deadline(environ: dict[str, Any], seconds: float) -> Iterator[None]:
    """Reads of this request's body inside the block end by `seconds` from now (TimeoutError)."""
    sock = environ.get("gunicorn.socket")
    if not isinstance(sock, GuardedSocket):
        yield
        return
    sock.deadline = time.monotonic() + seconds
    try:
        yield
    finally:
        sock.deadline = None
        sock.setblocking(True)


def close_after_response(environ: dict[str, Any]) -> None:
    """Ask the server to close this connection once the response is sent (its body was not read).
    A no-op under servers other than GuardedThreadWorker (the Flask test client)."""
    sock = environ.get("gunicorn.socket")
    if isinstance(sock, GuardedSocket):
        sock.close_after_response = True
