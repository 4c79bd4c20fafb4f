"""A TCP relay between one client and a real server that notes how the client hung up."""

from __future__ import annotations

import contextlib
import errno
import socket
import threading
import time
from types import TracebackType


class TcpRelay:
    """Listen on a free local port; relay one connection to ``host:port`` both ways.

    :meth:`wait_ended` says how the client ended the connection: ``"fin"`` (an orderly
    shutdown or close with nothing left unread) or ``"reset"`` (closed with data unread, at
    once or after a shutdown, which discards what it had not yet sent and may make the
    server drop what it had not yet read).
    """

    def __init__(self, host: str, port: int) -> None:
        self._target = (host, port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._reset = False  # the client reset the connection
        self._lock = threading.Lock()
        self._pumps: list[threading.Thread] = []
        self._connected = threading.Event()
        self._client: socket.socket | None = None  # the accepted connection
        self._sockets: list[socket.socket] = [self._listener]
        self._accepting = threading.Thread(target=self._accept, daemon=True, name="tcp-relay")
        self._accepting.start()

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def wait_ended(self, timeout: float) -> str | None:
        """Once both directions have ended: "fin" or "reset"; None if not within ``timeout``."""
        deadline = time.monotonic() + timeout
        if not self._connected.wait(timeout):
            return None
        for pump in self._pumps:
            pump.join(max(deadline - time.monotonic(), 0))
            if pump.is_alive():
                return None
        # a reset nothing read or wrote after it is still pending on the socket
        assert self._client is not None
        if self._client.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == errno.ECONNRESET:
            self._reset = True
        return "reset" if self._reset else "fin"

    def _accept(self) -> None:
        try:
            client, _ = self._listener.accept()
        except OSError:  # closed before anyone connected
            return
        server = socket.create_connection(self._target)
        self._client = client
        self._sockets += [client, server]
        self._pumps = [threading.Thread(target=self._pump, args=(a, b, a is client), daemon=True)
                       for a, b in ((client, server), (server, client))]
        for pump in self._pumps:
            pump.start()
        self._connected.set()

    def _pump(self, source: socket.socket, sink: socket.socket, from_client: bool) -> None:
        """Copy one direction until it ends; note a reset the client caused on either side."""
        while True:
            try:
                data = source.recv(1 << 16)
            except OSError as err:
                self._note(err, client_side=from_client)
                break
            if not data:
                break
            try:
                sink.sendall(data)
            except OSError as err:
                self._note(err, client_side=not from_client)
                break
        with contextlib.suppress(OSError):  # the other side may be gone already
            sink.shutdown(socket.SHUT_WR)

    def _note(self, err: OSError, *, client_side: bool) -> None:
        if client_side and isinstance(err, ConnectionResetError | BrokenPipeError):
            with self._lock:
                self._reset = True

    def close(self) -> None:
        for sock in self._sockets:
            sock.close()
        self._accepting.join(5)
        for pump in self._pumps:
            pump.join(5)

    def __enter__(self) -> TcpRelay:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()
