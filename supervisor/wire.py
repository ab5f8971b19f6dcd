"""The channel between the supervisor and one worker: length-prefixed marshal frames.

multiprocessing's ``Connection`` builds a selector for every ``poll()``, reads a header and
a body in two system calls and pickles every message; at thousands of jobs a second that
was most of the supervisor's time outside SQL. Here one non-blocking ``recv`` takes
everything a worker has sent so far and the frames are cut from the buffer.

Messages are tuples of str, int, float, bool, None and lists of those, exchanged between
a process and its own fork (one interpreter, one marshal format), which is exactly what
``marshal`` encodes — several times faster than pickle for such values.
"""

from __future__ import annotations

import marshal
import socket
import struct

_HEADER = struct.Struct("!I")
_READ_SIZE = 1 << 16


class Wire:
    """One end of a stream socket pair carrying whole messages."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = bytearray()
        self.outbox = bytearray()  # queued by send_nowait, not yet taken by the socket
        self.closed = False
        self.eof = False  # the other end closed (it exited, or is exiting)

    @classmethod
    def pair(cls) -> tuple[Wire, Wire]:
        left, right = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        return cls(left), cls(right)

    def fileno(self) -> int:
        return self.sock.fileno()

    def send(self, message: tuple) -> None:
        """Send, waiting while the socket is full (the worker's side: its supervisor
        always reads)."""
        data = marshal.dumps(message)
        self.sock.sendall(_HEADER.pack(len(data)) + data)

    def send_all(self, messages: list[tuple]) -> None:
        """Send several messages in one write (a job's last log chunk with its outcome:
        one wake-up of the supervisor, not two)."""
        out = bytearray()
        for message in messages:
            data = marshal.dumps(message)
            out += _HEADER.pack(len(data))
            out += data
        self.sock.sendall(out)

    def send_nowait(self, message: tuple) -> bool:
        """Queue a message and send what the socket takes now (the supervisor's side: a
        worker deep in a long job reads nothing, and a large prefetched job must not stop
        the loop that enforces that job's timeout). True when all of it went; otherwise
        ``flush`` the rest once the socket is writable."""
        data = marshal.dumps(message)
        self.outbox += _HEADER.pack(len(data))
        self.outbox += data
        return self.flush()

    def flush(self) -> bool:
        """Send what is queued without waiting; True when nothing is left."""
        outbox = self.outbox
        while outbox:
            try:
                sent = self.sock.send(outbox, socket.MSG_DONTWAIT)
            except (BlockingIOError, InterruptedError):
                return False
            del outbox[:sent]
        return True

    def _next_frame(self) -> tuple | None:
        if not self._has_frame():
            return None
        buffer = self.buffer
        end = 4 + _HEADER.unpack_from(buffer)[0]
        message = marshal.loads(bytes(buffer[4:end]))
        del buffer[:end]
        return message

    def _fill(self, *, block: bool) -> int:
        """Read what is there (or wait for something); how many bytes came (0: none)."""
        try:
            chunk = self.sock.recv(_READ_SIZE, 0 if block else socket.MSG_DONTWAIT)
        except (BlockingIOError, InterruptedError):
            return 0
        if not chunk:
            self.eof = True
            return 0
        self.buffer += chunk
        return len(chunk)

    def read_ready(self) -> list[tuple]:
        """Every whole message that has arrived, without waiting (the supervisor's side)."""
        while self._fill(block=False) == _READ_SIZE:
            pass  # a short read took everything there was: no second call to learn that
        messages = []
        while (message := self._next_frame()) is not None:
            messages.append(message)
        return messages

    def poll(self) -> bool:
        """Is a whole message waiting? True at end of file too, so ``recv`` raises."""
        if self._has_frame():
            return True
        while self._fill(block=False):
            if self._has_frame():
                return True
        return self.eof

    def _has_frame(self) -> bool:
        buffer = self.buffer
        return len(buffer) >= 4 and len(buffer) >= 4 + _HEADER.unpack_from(buffer)[0]

    def recv(self) -> tuple:
        """The next message, waiting for it (the worker's side); EOFError once closed."""
        while True:
            message = self._next_frame()
            if message is not None:
                return message
            if self.eof or not self._fill(block=True) and self.eof:
                raise EOFError("the other end closed the channel")

    def close(self) -> None:
        self.outbox.clear()
        if not self.closed:
            self.closed = True
            self.sock.close()
