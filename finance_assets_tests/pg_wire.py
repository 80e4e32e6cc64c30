"""A PostgreSQL wire-protocol recorder on loopback, for tests that must see what a driver sends.

`WireRecorder(server_url)` listens on 127.0.0.1, forwards every connection to the server of
`server_url` (TCP or a socket folder) and reads the protocol (v3) in both directions as it goes:
the statements each client sends (simple `Query` and extended `Parse`), with the transaction
status the server had last reported (`ReadyForQuery`: idle, in a transaction, failed), and the
server's notices (their SQLSTATE and message). `url` is the server's URL pointing at the
recorder, with TLS and GSS encryption off so the bytes stay readable.
"""

from __future__ import annotations

import socket
import struct
import threading
from contextlib import suppress
from dataclasses import dataclass, field
from urllib.parse import quote

import psycopg

SSL_REQUEST, GSSENC_REQUEST = 80877103, 80877104


@dataclass(frozen=True)
class Sent:
    connection: int
    statement: str
    status: str  # the server's last ReadyForQuery status before it: I, T or E


@dataclass(frozen=True)
class Notice:
    connection: int
    sqlstate: str
    message: str


@dataclass
class WireRecorder:
    server_url: str
    sent: list[Sent] = field(default_factory=list)
    notices: list[Notice] = field(default_factory=list)

    def __post_init__(self) -> None:
        info = psycopg.conninfo.conninfo_to_dict(self.server_url)
        self._info = info
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._sockets: list[socket.socket] = []
        self._closed = False
        self._accepting = threading.Thread(target=self._accept, daemon=True)
        self._accepting.start()

    @property
    def url(self) -> str:
        info = self._info
        user = quote(str(info.get("user", "postgres")))
        password = info.get("password")
        auth = f"{user}:{quote(str(password))}@" if password else f"{user}@"
        port = self._listener.getsockname()[1]
        return (
            f"postgresql://{auth}127.0.0.1:{port}/{quote(str(info.get('dbname', 'postgres')))}"
            "?sslmode=disable&gssencmode=disable"
        )

    def _upstream(self) -> socket.socket:
        host = str(self._info.get("host") or "127.0.0.1")
        port = int(self._info.get("port") or 5432)
        if host.startswith("/"):
            s = socket.socket(socket.AF_UNIX)
            s.connect(f"{host}/.s.PGSQL.{port}")
            return s
        return socket.create_connection((host, port))

    def _accept(self) -> None:
        number = 0
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            number += 1
            server = self._upstream()
            self._sockets += [client, server]
            state = {"status": "I"}
            for target in (
                lambda c=client, s=server, n=number, st=state: self._from_client(c, s, n, st),
                lambda c=client, s=server, n=number, st=state: self._from_server(s, c, n, st),
            ):
                thread = threading.Thread(target=target, daemon=True)
                thread.start()
                self._threads.append(thread)

    @staticmethod
    def _read(sock: socket.socket, size: int) -> bytes:
        data = b""
        while len(data) < size:
            chunk = sock.recv(size - len(data))
            if not chunk:
                raise EOFError
            data += chunk
        return data

    def _from_client(self, client: socket.socket, server: socket.socket, n: int, state) -> None:
        try:
            # The startup packet: a length and a protocol code, no type byte.
            head = self._read(client, 8)
            length, code = struct.unpack("!ii", head)
            if code in (SSL_REQUEST, GSSENC_REQUEST):
                raise AssertionError("the recorder's URL turns TLS and GSS encryption off")
            server.sendall(head + self._read(client, length - 8))
            while True:
                head = self._read(client, 5)
                kind, length = head[:1], struct.unpack("!i", head[1:])[0]
                body = self._read(client, length - 4)
                if kind == b"Q":
                    self._record_sent(n, body[:-1].decode(), state)
                elif kind == b"P":
                    name_end = body.index(b"\0")
                    query = body[name_end + 1 : body.index(b"\0", name_end + 1)].decode()
                    self._record_sent(n, query, state)
                server.sendall(head + body)
        except (EOFError, OSError):
            pass
        finally:
            with suppress(OSError):
                server.shutdown(socket.SHUT_WR)

    def _record_sent(self, n: int, statement: str, state) -> None:
        with self._lock:
            self.sent.append(Sent(n, statement, state["status"]))

    def _from_server(self, server: socket.socket, client: socket.socket, n: int, state) -> None:
        try:
            while True:
                head = self._read(server, 5)
                kind, length = head[:1], struct.unpack("!i", head[1:])[0]
                body = self._read(server, length - 4)
                if kind == b"Z":
                    state["status"] = body.decode()
                elif kind == b"N":
                    fields = {f[:1]: f[1:].decode() for f in body.split(b"\0") if f}
                    with self._lock:
                        self.notices.append(Notice(n, fields.get(b"C", ""), fields.get(b"M", "")))
                # Recorded before the client sees it: its next statement comes after.
                client.sendall(head + body)
        except (EOFError, OSError):
            pass
        finally:
            with suppress(OSError):
                client.shutdown(socket.SHUT_WR)

    def begins_inside_a_transaction(self) -> list[Sent]:
        """Every BEGIN (or START TRANSACTION) sent while the connection was in a transaction."""
        with self._lock:
            return [
                s
                for s in self.sent
                if s.status != "I"
                and s.statement.lstrip().upper().startswith(("BEGIN", "START TRANSACTION"))
            ]

    def close(self) -> None:
        self._closed = True
        self._listener.close()
        for s in self._sockets:
            with suppress(OSError):
                s.close()

    def __enter__(self) -> WireRecorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
