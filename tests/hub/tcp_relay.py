"""A TCP relay between one client and a real server that notes how the client hung up."""

from __future__ import annotations

import contextlib
import socket
import threading
from types import TracebackType


class TcpRelay:
    """Listen on a free local port; relay one connection to ``host:port`` both ways.

    ``ending`` says how the client ended its side: ``"fin"`` (an orderly shutdown or close with
    nothing left unread) or ``"reset"`` (closed with data unread, which discards what it had
    not yet sent and may make the server drop what it had not yet read).
    """

    def __init__(self, host: str, port: int) -> None:
        self._target = (host, port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.ending: str | None = None
        self._ended = threading.Event()
        self._threads: list[threading.Thread] = []
        self._sockets: list[socket.socket] = [self._listener]
        accept = threading.Thread(target=self._accept, daemon=True, name="tcp-relay")
        accept.start()
        self._threads.append(accept)

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def wait_ended(self, timeout: float) -> str | None:
        """How the client's side ended (None if it has not within ``timeout``)."""
        self._ended.wait(timeout)
        return self.ending

    def _accept(self) -> None:
        try:
            client, _ = self._listener.accept()
        except OSError:  # closed before anyone connected
            return
        server = socket.create_connection(self._target)
        self._sockets += [client, server]
        for source, sink, upstream in ((client, server, True), (server, client, False)):
            thread = threading.Thread(target=self._pump, args=(source, sink, upstream),
                                      daemon=True)
            thread.start()
            self._threads.append(thread)

    def _pump(self, source: socket.socket, sink: socket.socket, upstream: bool) -> None:
        ending = "fin"
        try:
            while data := source.recv(1 << 16):
                sink.sendall(data)
        except ConnectionResetError:
            ending = "reset"
        except OSError:
            ending = "error"
        if upstream:
            self.ending = ending
            self._ended.set()
        with contextlib.suppress(OSError):  # the other side may be gone already
            sink.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        for sock in self._sockets:
            sock.close()
        for thread in self._threads:
            thread.join(5)

    def __enter__(self) -> TcpRelay:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()
