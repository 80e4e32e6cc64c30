"""A small HTTP proxy in front of moto's S3 server that answers chosen requests with S3's own
error documents (500 InternalError, 503 SlowDown) instead of forwarding them, or drops the
connection without an answer (`DROP`: S3 or the network going away mid-request): faults
injected on the wire, so boto3's and polars' retries and error handling run as they would
against AWS."""

from __future__ import annotations

import http.client
import http.server
import threading
import urllib.parse
from dataclasses import dataclass, field

# A fault's status meaning "close the connection, answer nothing".
DROP = 0

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "expect", "proxy-connection"}


@dataclass
class Fault:
    method: str
    contains: str  # a substring of the request path (bucket and key)
    status: int = 503
    code: str = "SlowDown"


@dataclass
class FaultProxy:
    upstream: str
    faults: list[Fault] = field(default_factory=list)
    seen: list[tuple[str, str, int]] = field(default_factory=list)  # method, path, status
    url: str = ""

    def fail(self, method: str, contains: str, status: int = 503, code: str = "SlowDown") -> None:
        self.faults.append(Fault(method, contains, status, code))

    def clear(self) -> None:
        self.faults.clear()

    def answered(self, method: str, contains: str, status: int) -> int:
        return sum(1 for m, p, s in self.seen if m == method and contains in p and s == status)


def _read_body(handler: http.server.BaseHTTPRequestHandler) -> bytes:
    if handler.headers.get("Transfer-Encoding", "").lower() == "chunked":
        chunks = []
        while True:
            size = int(handler.rfile.readline().split(b";")[0].strip(), 16)
            if size == 0:
                handler.rfile.readline()
                return b"".join(chunks)
            chunks.append(handler.rfile.read(size))
            handler.rfile.readline()
    length = int(handler.headers.get("Content-Length") or 0)
    return handler.rfile.read(length) if length else b""


def start_fault_proxy(upstream: str) -> tuple[FaultProxy, http.server.ThreadingHTTPServer]:
    """A proxy on a free loopback port forwarding to `upstream` (moto's URL); the caller
    shuts the server down."""
    proxy = FaultProxy(upstream)
    target = urllib.parse.urlsplit(upstream)

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def _handle(self) -> None:
            body = _read_body(self)
            for fault in list(proxy.faults):
                if fault.method == self.command and fault.contains in self.path:
                    proxy.seen.append((self.command, self.path, fault.status))
                    if fault.status == DROP:
                        # The request was read whole; the client gets no status line at all.
                        self.close_connection = True
                        return
                    document = (
                        f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{fault.code}'
                        f"</Code><Message>injected by the test proxy</Message></Error>"
                    ).encode()
                    self.send_response(fault.status)
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("Content-Length", str(len(document)))
                    self.end_headers()
                    self.wfile.write(document)
                    return
            conn = http.client.HTTPConnection(target.hostname, target.port, timeout=30)
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
            headers["Content-Length"] = str(len(body))
            try:
                conn.request(self.command, self.path, body=body, headers=headers)
                answer = conn.getresponse()
                data = answer.read()
            finally:
                conn.close()
            proxy.seen.append((self.command, self.path, answer.status))
            self.send_response(answer.status)
            for name, value in answer.getheaders():
                if name.lower() not in HOP_BY_HOP and name.lower() != "content-length":
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    proxy.url = f"http://127.0.0.1:{server.server_address[1]}"
    return proxy, server
