"""The one error type of the serving layer: a gRPC status code and a message naming the problem.

The gRPC server returns it as the call's status, the REST server as `{"error": message}` with the
HTTP status TF Serving's REST API uses for that code.
"""
from __future__ import annotations

from typing import Optional

import grpc

HTTP_STATUS = {
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.DEADLINE_EXCEEDED: 408,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,  # 413 where the request body is too large
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.UNAVAILABLE: 503,
}


class ServingError(Exception):
    """A request the server refuses or fails: `code` (a grpc.StatusCode) is the gRPC status it
    answers, `message` names the problem, `http_status` is the REST status; None: TF Serving's
    for `code` (HTTP_STATUS), 500 for a code not there."""

    def __init__(self, code: grpc.StatusCode, message: str, http_status: Optional[int] = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.http_status = http_status or HTTP_STATUS.get(code, 500)


def invalid(message: str) -> ServingError:
    """INVALID_ARGUMENT (HTTP 400) with `message`: a request that cannot run as sent."""
    return ServingError(grpc.StatusCode.INVALID_ARGUMENT, message)


def not_found(message: str) -> ServingError:
    """NOT_FOUND (HTTP 404) with `message`: a model, version or endpoint that is not there."""
    return ServingError(grpc.StatusCode.NOT_FOUND, message)


def too_large(message: str) -> ServingError:
    """RESOURCE_EXHAUSTED with HTTP 413 (not 429) and `message`: a request over a size limit."""
    return ServingError(grpc.StatusCode.RESOURCE_EXHAUSTED, message, http_status=413)
