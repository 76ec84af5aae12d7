"""fer-serve's settings: `ServerConfig`, whose defaults are also the command line's
(server_cli.py). Light on purpose (no TensorFlow, no gRPC), so that `fer-serve --help` is quick."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Optional, Sequence

from components import contract
from serving.limits import DEFAULT_LIMITS, Limits

# TF Serving's defaults: --max_num_load_retries=5, --load_retry_interval_micros=60000000.
MAX_LOAD_RETRIES = 5
LOAD_RETRY_INTERVAL_S = 60.0


@dataclass
class ServerConfig:
    """What `FerServer` serves and how; the fields are fer-serve's flags (server_cli.py).

    `model_base_path` holds the numbered versions of the model served as `model_name`, on
    `host` (the address both front ends bind); `num_latest`, `pinned_versions` and
    `version_labels` are the version policy and labels (model_store.py); `poll_interval_s` the
    seconds between scans of the directory; `max_load_retries` and `load_retry_interval_s`
    (seconds) retry a version that failed to load, as TF Serving does; `replay_warmup` replays
    a version's warm-up requests before it takes traffic; `enable_batching` merges concurrent
    small requests into model calls of up to `max_batch_size` images, waiting at most
    `batch_timeout_ms` milliseconds; `grace_s` the seconds requests in flight get to finish
    when stopping.
    """

    model_base_path: str
    model_name: str = contract.MODEL_NAME
    host: str = "127.0.0.1"
    grpc_port: int = contract.GRPC_PORT     # 0: a free port
    rest_port: Optional[int] = contract.REST_PORT  # None: no REST server
    poll_interval_s: float = 2.0
    num_latest: int = 1
    pinned_versions: Sequence[int] = ()
    version_labels: Dict[str, int] = field(default_factory=dict)
    max_load_retries: int = MAX_LOAD_RETRIES
    load_retry_interval_s: float = LOAD_RETRY_INTERVAL_S
    limits: Limits = DEFAULT_LIMITS
    threads: int = 16  # REST workers; gRPC has a thread per open call (limits.py)
    replay_warmup: bool = True
    enable_batching: bool = False
    max_batch_size: int = 32
    batch_timeout_ms: float = 2.0
    ssl_cert: Optional[str] = None   # PEM files: gRPC and REST over TLS when both are given
    ssl_key: Optional[str] = None
    ssl_client_ca: Optional[str] = None  # PEM CA: clients must present a certificate it signed
    grace_s: float = 10.0
