"""TLS for both front ends from the same PEM files: the server's certificate and key, and
optionally a CA whose signed client certificates are then required (mutual TLS)."""
from __future__ import annotations

import ssl
from typing import Optional

import grpc


def _read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def grpc_credentials(config) -> Optional[grpc.ServerCredentials]:
    """Credentials for the gRPC server of a ServerConfig; None: plaintext."""
    if not (config.ssl_cert and config.ssl_key):
        return None
    client_ca = _read(config.ssl_client_ca) if config.ssl_client_ca else None
    return grpc.ssl_server_credentials([(_read(config.ssl_key), _read(config.ssl_cert))],
                                       root_certificates=client_ca,
                                       require_client_auth=client_ca is not None)


def rest_context(config) -> Optional[ssl.SSLContext]:
    """The REST server's SSL context for a ServerConfig; None: plaintext."""
    if not (config.ssl_cert and config.ssl_key):
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(config.ssl_cert, config.ssl_key)
    if config.ssl_client_ca:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(config.ssl_client_ca)
    return context
