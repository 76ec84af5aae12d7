"""What one request, one connection and the whole server may cost fer-serve: each bound checked
before the work it bounds, each named in its error with the flag that changes it.

Defaults fit FER use: 48 px faces sent in batches of up to a few dozen, an occasional phone
photo. The flags are fer-serve's (server_cli.py builds them from this table).
"""
from __future__ import annotations

from dataclasses import dataclass

INT64_MAX = 2**63 - 1


@dataclass(frozen=True)
class Limits:
    """fer-serve's bounds, one field per flag of FLAGS (the comments give each one's unit and
    scope); `listen_backlog` is the REST socket's listen queue and has no flag."""

    # Per request.
    max_request_bytes: int = 4 << 20          # gRPC message / REST body
    max_images_per_request: int = 256         # the batch dimension of any input
    max_pixels_per_image: int = 4096 * 4096   # read from the image header before decoding
    max_decoded_bytes_per_request: int = 64 << 20  # width x height x channels x frames, summed
    rest_api_timeout_ms: int = 30_000         # a REST request's deadline (TF Serving's default)
    # Per server.
    max_concurrent_requests: int = 64         # requests being run (both APIs together)
    max_connections: int = 1024               # open REST connections; open gRPC calls
    read_timeout_s: float = 30.0              # a REST request's head and body, from its first byte
    idle_timeout_s: float = 30.0              # a keep-alive REST connection with no request
    listen_backlog: int = 1024

    @property
    def max_buffered_body_bytes(self) -> int:
        """REST bodies being received at once: enough for every admitted request to be in
        transfer, so a flood of slow uploads cannot hold more memory than that."""
        return self.max_concurrent_requests * self.max_request_bytes


# flag -> (field, type, help); the one table fer-serve's options and error messages share.
FLAGS = {
    "--max-request-bytes": ("max_request_bytes", int,
                            "largest gRPC message or REST body (bigger: RESOURCE_EXHAUSTED/413)"),
    "--max-images-per-request": ("max_images_per_request", int,
                                 "largest batch in one request"),
    "--max-pixels-per-image": ("max_pixels_per_image", int,
                               "width x height of one image, read from its header"),
    "--max-decoded-bytes-per-request": ("max_decoded_bytes_per_request", int,
                                        "decoded size of a request's images, summed"),
    "--rest-api-timeout-ms": ("rest_api_timeout_ms", int,
                              "deadline of a REST request once read (as TF Serving's flag)"),
    "--max-concurrent-requests": ("max_concurrent_requests", int,
                                  "requests run at once, gRPC and REST together; more: "
                                  "RESOURCE_EXHAUSTED/429"),
    "--max-connections": ("max_connections", int,
                          "open REST connections, and gRPC calls open at once"),
    "--read-timeout": ("read_timeout_s", float,
                       "seconds to receive a REST request's head and body"),
    "--idle-timeout": ("idle_timeout_s", float,
                       "seconds an idle keep-alive REST connection stays open"),
}


def flag_of(field_name: str) -> str:
    """The fer-serve flag that sets the Limits field `field_name` (e.g. "max_request_bytes" ->
    "--max-request-bytes"), for error messages; StopIteration for a field without one."""
    return next(flag for flag, (name, _, _) in FLAGS.items() if name == field_name)

DEFAULT_LIMITS = Limits()
