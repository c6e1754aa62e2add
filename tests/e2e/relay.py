"""A TCP relay on loopback that a test can cut and restore: a database that goes away."""

from __future__ import annotations

import contextlib
import socket
import threading

from tests.e2e.service import free_port


class TcpRelay:
    """Forwards ``127.0.0.1:<port>`` to ``target``; starts cut (nothing listens).

    :meth:`cut` stops listening and drops every live connection (the server seems
    gone: connections are refused); :meth:`restore` listens again on the same port.
    """

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        self.forwarded_bytes = 0  # client -> target, since the start

    def restore(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        with self._lock:  # a connection being accepted now is dropped by _accept itself
            listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
        with self._lock:
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            self._sockets.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:  # cut
                return
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self._lock:
                if self._listener is not listener:  # cut while connecting: drop it too
                    client.close()
                    upstream.close()
                    return
                self._sockets.update((client, upstream))
            for source, sink, count in ((client, upstream, True), (upstream, client, False)):
                threading.Thread(target=self._pump, args=(source, sink, count), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, count: bool) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
                if count:
                    self.forwarded_bytes += len(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)
