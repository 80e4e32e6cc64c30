"""A stand-in HTTP server on loopback that answers slowly on purpose: the status line and
headers at once, then the body one byte every `interval` seconds (a provider, or a proxy, that
never trips a per-read timeout). Raw sockets, so nothing buffers the trickle. Other paths get a
fixed quick answer (Yahoo's cookie and crumb)."""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field


@dataclass
class Trickle:
    slow_prefix: str  # requests whose path starts with this trickle
    body: bytes
    interval: float
    quick: dict[str, tuple[str, bytes]] = field(default_factory=dict)  # path -> (type, body)
    requests: list[str] = field(default_factory=list)  # request lines, as received
    url: str = ""
    _listener: socket.socket | None = None
    _stop: threading.Event = field(default_factory=threading.Event)

    def start(self) -> Trickle:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        listener.settimeout(0.2)
        self._listener = listener
        self.url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._listener is not None:
            self._listener.close()

    def _accept(self) -> None:
        assert self._listener is not None
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return  # closed by stop()
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(10)
            try:
                while not self._stop.is_set():
                    head = b""
                    while b"\r\n\r\n" not in head:
                        data = conn.recv(4096)
                        if not data:
                            return
                        head += data
                    line = head.split(b"\r\n", 1)[0].decode("latin-1")
                    self.requests.append(line)
                    path = line.split(" ")[1]
                    for prefix, (kind, body) in self.quick.items():
                        if path.split("?")[0] == prefix:
                            conn.sendall(_head(kind, len(body)) + body)
                            break
                    else:
                        if not path.startswith(self.slow_prefix):
                            conn.sendall(_head("text/plain", 0, status="404 Not Found"))
                            continue
                        conn.sendall(_head("application/json", len(self.body)))
                        for byte in self.body:
                            if self._stop.wait(self.interval):
                                return
                            conn.sendall(bytes([byte]))
            except OSError:
                return  # the client hung up (its deadline): what the test wants


def _head(kind: str, length: int, status: str = "200 OK") -> bytes:
    return (
        f"HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {length}\r\n"
        f"Date: {time.strftime('%a, %d %b %Y %H:%M:%S GMT', time.gmtime())}\r\n\r\n"
    ).encode()
