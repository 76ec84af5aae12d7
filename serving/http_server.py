"""A bounded HTTP/1.1 server on asyncio: what fer-serve's REST API runs on.

One event loop holds every connection, so a slow or idle client costs a coroutine, never a
thread; requests run on the shared worker pool only once they have fully arrived and been
admitted. Every stage is bounded (serving/limits.py):

- open connections (`max_connections`; more get 503 and are closed) and the listen backlog;
- a request's head and body arrive within one deadline from the first byte (`read_timeout_s`),
  an idle keep-alive connection is closed after `idle_timeout_s`;
- the head's size and header count; the body needs a valid Content-Length (411 without one,
  400 if malformed, 413 over `max_request_bytes`); chunked bodies, and Transfer-Encoding beside
  Content-Length (a request-smuggling shape behind a proxy), are refused;
- the bytes of bodies being received at once (`max_buffered_body_bytes`);
- an error sent before the body was read (413, 411...) is followed by reading and discarding
  what the client still sends, for a bounded time and size, so that it sees the answer instead
  of a broken pipe.

Stopping closes the listening socket at once (new connections are refused), closes idle
connections, lets requests that have started arriving finish within the grace period, and
answers them with `Connection: close`.
"""
from __future__ import annotations

import asyncio
import logging
import re
import ssl
import time
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Callable, Dict, Optional, Set

from serving.limits import Limits, flag_of

log = logging.getLogger("fer_serve")

MAX_HEAD_BYTES = 64 << 10
MAX_HEADERS = 100
LINGER_S = 2.0                   # after an early error: how long to read what the client sends
LINGER_MAX_BYTES = 64 << 20
_CONTENT_LENGTH = re.compile(r"[0-9]{1,15}")
REASONS = {100: "Continue", 200: "OK", 400: "Bad Request", 404: "Not Found",
           405: "Method Not Allowed", 408: "Request Timeout", 411: "Length Required",
           413: "Payload Too Large", 417: "Expectation Failed",
           429: "Too Many Requests", 431: "Request Header Fields Too Large",
           500: "Internal Server Error", 501: "Not Implemented", 503: "Service Unavailable",
           504: "Gateway Timeout"}


@dataclass
class Request:
    """One request as read from its connection: `target` is the path and query of the request
    line, as sent; `http_version` "HTTP/1.0" or "HTTP/1.1"."""

    method: str
    target: str
    http_version: str
    headers: Dict[str, str]  # lower-case names
    body: bytes = b""
    arrived: float = 0.0     # time.monotonic() when the last byte arrived


@dataclass
class Response:
    """An answer: HTTP `status`, `body` of `content_type`, and more `headers`
    (Content-Type, Content-Length and Connection are the server's)."""

    status: int
    body: bytes
    content_type: str = "application/json"
    headers: Dict[str, str] = field(default_factory=dict)


class App:
    """What the server calls: `handle` on a worker thread, the others on the event loop."""

    def handle(self, request: Request) -> Response:
        """Runs `request`, which has fully arrived and was admitted, and returns its answer."""
        raise NotImplementedError

    def error(self, status: int, message: str, request: Optional[Request] = None) -> Response:
        """The answer to a request refused before it ran (counted in the metrics)."""
        raise NotImplementedError

    def admit(self, request: Request) -> bool:
        """Whether `request` may run now (False: 429)."""
        return True

    def release(self, request: Request) -> None:
        """Called once `handle` is done with a `request` that `admit` let run."""


class _Refused(Exception):
    def __init__(self, status: int, message: str, read_body: bool = True):
        super().__init__(message)
        self.status, self.message = status, message
        self.read_body = read_body  # False: the body is unread, the connection must close


@dataclass
class _Connection:
    task: asyncio.Task
    idle: bool = True  # waiting for the first byte of a request


class HttpServer:
    """The server of this module, answering with `app`: bounded by `limits`, running requests
    on `executor`, over TLS with `ssl_context` (None: plaintext). `start` and `stop` are
    coroutines of the event loop it serves on."""

    def __init__(self, app: App, limits: Limits, executor: Executor,
                 ssl_context: Optional[ssl.SSLContext] = None):
        self.app = app
        self.limits = limits
        self.executor = executor
        self.ssl_context = ssl_context
        self._server: Optional[asyncio.AbstractServer] = None
        self._connections: Dict[asyncio.Task, _Connection] = {}
        self._buffered_body_bytes = 0
        self._closing = False
        self.port: Optional[int] = None

    @property
    def open_connections(self) -> int:
        """The connections open now."""
        return len(self._connections)

    async def start(self, host: str, port: int) -> int:
        """Listens on `host`:`port` (0: a free port) and returns the bound port, also kept in
        `port`. Raises OSError when it cannot bind."""
        self._server = await asyncio.start_server(
            self._serve_connection, host, port, limit=MAX_HEAD_BYTES,
            backlog=self.limits.listen_backlog, ssl=self.ssl_context,
            ssl_handshake_timeout=self.limits.read_timeout_s if self.ssl_context else None)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def stop(self, grace_s: float) -> None:
        """Stops listening at once and closes idle connections; requests under way get
        `grace_s` seconds to finish and are then cancelled (waiting 1 s more for them)."""
        self._closing = True
        if self._server:
            self._server.close()  # new connections are refused from here on
        for connection in list(self._connections.values()):
            if connection.idle:
                connection.task.cancel()
        tasks: Set[asyncio.Task] = set(self._connections)
        if tasks:
            _, late = await asyncio.wait(tasks, timeout=grace_s)
            for task in late:
                task.cancel()
            if late:
                await asyncio.wait(late, timeout=1.0)

    # --- one connection ---

    async def _serve_connection(self, reader: asyncio.StreamReader,
                                writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if self._closing or len(self._connections) >= self.limits.max_connections:
            message = ("the server is stopping" if self._closing else
                       f"too many open connections ({flag_of('max_connections')})")
            await self._send_and_close(reader, writer, self.app.error(503, message), False)
            return
        connection = self._connections[task] = _Connection(task)
        try:
            while not self._closing:
                connection.idle = True
                try:
                    first = await asyncio.wait_for(reader.readexactly(1),
                                                   self.limits.idle_timeout_s)
                except (asyncio.TimeoutError, asyncio.IncompleteReadError):
                    return  # idle too long, or the client closed: nothing to answer
                connection.idle = False
                if not await self._serve_request(first, reader, writer):
                    return
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            return  # the client went away mid-request: nobody to answer
        except asyncio.CancelledError:
            return  # stopped (idle, or past the grace period)
        except Exception:  # a bug must not leave the connection hanging
            log.exception("REST connection failed")
        finally:
            del self._connections[task]
            writer.close()

    async def _serve_request(self, first: bytes, reader: asyncio.StreamReader,
                             writer: asyncio.StreamWriter) -> bool:
        """Reads, runs and answers one request; False when the connection must close."""
        deadline = time.monotonic() + self.limits.read_timeout_s
        request: Optional[Request] = None
        reserved = 0
        try:
            try:
                head = first + await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"),
                                                      self.limits.read_timeout_s)
            except asyncio.LimitOverrunError:
                raise _Refused(431, f"request head over {MAX_HEAD_BYTES} bytes",
                               read_body=False) from None
            request = _parse_head(head)
            length = _body_length(request, self.limits)
            if length > self.limits.max_buffered_body_bytes - self._buffered_body_bytes:
                raise _Refused(503, "too many request bodies in transfer; retry",
                               read_body=False)
            reserved = length
            self._buffered_body_bytes += reserved
            if length:
                expect = request.headers.get("expect", "").lower()
                if expect == "100-continue":
                    writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                elif expect:
                    raise _Refused(417, f"unsupported Expect: {expect}", read_body=False)
                request.body = await asyncio.wait_for(reader.readexactly(length),
                                                      deadline - time.monotonic())
            request.arrived = time.monotonic()
        except asyncio.TimeoutError:
            response = self.app.error(408, f"the request did not arrive within "
                                           f"{self.limits.read_timeout_s:g} s "
                                           f"({flag_of('read_timeout_s')})", request)
            await self._send_and_close(reader, writer, response, False)
            return False
        except _Refused as e:
            await self._send_and_close(reader, writer, self.app.error(e.status, e.message,
                                                                      request),
                                       linger=not e.read_body)
            return False
        finally:
            if reserved and request is not None and not request.body:
                self._buffered_body_bytes -= reserved
                reserved = 0
        try:
            keep_alive = _keep_alive(request) and not self._closing
            if not self.app.admit(request):
                from serving.service import too_many_requests  # one message, both APIs
                response = self.app.error(429, too_many_requests().message, request)
            else:
                try:
                    response = await asyncio.get_running_loop().run_in_executor(
                        self.executor, self.app.handle, request)
                finally:
                    self.app.release(request)
        finally:
            self._buffered_body_bytes -= reserved
        keep_alive = keep_alive and not self._closing
        await self._send(writer, response, keep_alive, head_only=request.method == "HEAD")
        return keep_alive

    async def _send(self, writer: asyncio.StreamWriter, response: Response, keep_alive: bool,
                    head_only: bool = False) -> None:
        lines = [f"HTTP/1.1 {response.status} {REASONS.get(response.status, 'Error')}",
                 f"Content-Type: {response.content_type}",
                 f"Content-Length: {len(response.body)}",
                 f"Connection: {'keep-alive' if keep_alive else 'close'}"]
        lines += [f"{k}: {v}" for k, v in response.headers.items()]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        if not head_only:
            writer.write(response.body)
        # A client that does not read its answer must not hold the connection for ever.
        await asyncio.wait_for(writer.drain(), self.limits.read_timeout_s)

    async def _send_and_close(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                              response: Response, linger: bool) -> None:
        try:
            await self._send(writer, response, keep_alive=False)
            if linger:  # read what the client still sends, so it reaches our answer
                end, drained = time.monotonic() + LINGER_S, 0
                while drained < LINGER_MAX_BYTES and time.monotonic() < end:
                    chunk = await asyncio.wait_for(reader.read(1 << 16), end - time.monotonic())
                    if not chunk:
                        break
                    drained += len(chunk)
        except (ConnectionError, asyncio.TimeoutError, ssl.SSLError):
            pass
        finally:
            writer.close()


def _parse_head(head: bytes) -> Request:
    try:
        text = head.decode("ascii")
    except UnicodeDecodeError:
        raise _Refused(400, "the request head is not ASCII", read_body=False) from None
    lines = text.lstrip("\r\n").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not re.fullmatch(r"HTTP/1\.[01]", parts[2]) or not parts[0].isalpha():
        raise _Refused(400, f"malformed request line {lines[0][:80]!r}", read_body=False)
    headers: Dict[str, str] = {}
    lengths = []
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip() or line[0] in " \t":
            raise _Refused(400, f"malformed header line {line[:80]!r}", read_body=False)
        name = name.lower()
        if name == "content-length":
            lengths.append(value.strip())
        headers[name] = value.strip()
    if len(headers) > MAX_HEADERS:
        raise _Refused(431, f"more than {MAX_HEADERS} headers", read_body=False)
    if len(set(lengths)) > 1:
        raise _Refused(400, "conflicting Content-Length headers", read_body=False)
    return Request(parts[0], parts[1], parts[2], headers)


def _body_length(request: Request, limits: Limits) -> int:
    headers = request.headers
    if "transfer-encoding" in headers:
        if "content-length" in headers:
            raise _Refused(400, "Transfer-Encoding and Content-Length together are refused "
                                "(ambiguous framing)", read_body=False)
        raise _Refused(411, "chunked request bodies are not accepted; send Content-Length",
                       read_body=False)
    length_text = headers.get("content-length")
    if length_text is None:
        if request.method in ("POST", "PUT", "PATCH"):
            raise _Refused(411, "a Content-Length header is required", read_body=False)
        return 0
    if not _CONTENT_LENGTH.fullmatch(length_text):
        raise _Refused(400, f"Content-Length must be a number of bytes, got "
                            f"{length_text[:40]!r}", read_body=False)
    length = int(length_text)
    if length > limits.max_request_bytes:
        raise _Refused(413, f"request body of {length} bytes is over the limit of "
                            f"{limits.max_request_bytes} bytes "
                            f"({flag_of('max_request_bytes')})", read_body=False)
    return length


def _keep_alive(request: Request) -> bool:
    connection = request.headers.get("connection", "").lower()
    if request.http_version == "HTTP/1.0":
        return connection == "keep-alive"
    return connection != "close"


Handler = Callable[[Request], Response]
