"""Multipart uploads streamed straight into S3.

Werkzeug's form parser asks the request for a file object to write each uploaded file into. Ours
hands it an S3 multipart writer chosen by the view before the body is read, so an upload of any
size passes through the web process in part-sized pieces and never lands in memory or on disk.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import IO, Any

from flask import Request

SinkFactory = Callable[[str | None, str | None], IO[bytes]]


class StreamingRequest(Request):
    upload_sink: SinkFactory | None = None
    # Small form fields (options) stay in memory; files never do.
    max_form_memory_size = 1024 * 1024

    def _get_file_stream(
        self,
        total_content_length: int | None,
        content_type: str | None,
        filename: str | None = None,
        content_length: int | None = None,
    ) -> Any:
        if self.upload_sink is None:
            from web.errors import ApiError

            raise ApiError(400, "unexpected_file", "this endpoint does not accept file uploads")
        return self.upload_sink(filename, content_type)
