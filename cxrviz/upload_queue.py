"""Uploads waiting to be placed, held by the server per browser session, in memory only.

Why on the server: a queue kept in the page came back with every request, so one hand-made
request could carry any number of images and hold the model for minutes. Here each request
brings at most one image; a session holds at most MAX_PENDING waiting ones, places one batch
at a time, and every byte waits in this process's memory (never on disk). Sessions idle for
IDLE_SECONDS, or the least recently used beyond MAX_SESSIONS, are dropped, and all waiting
uploads together stay under MAX_PENDING_BYTES: a refusal says so in words the page shows.

A session id is a random token the page gets when it is built (`new_id`); any well-formed token
is accepted (a guessed one reaches only what its guesser put there), so several server processes
need no shared secret. Dash-free.
"""
from __future__ import annotations

import re
import secrets
import threading
import time
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass, field

from cxrviz import words
from cxrviz.data.images import MAX_UPLOAD_BYTES

MAX_PENDING = 8  # uploads one session may have waiting
MAX_SESSIONS = 64  # sessions with waiting uploads held at once (least recently used dropped)
MAX_PENDING_BYTES = 8 * MAX_UPLOAD_BYTES  # every session's waiting uploads together
IDLE_SECONDS = 30 * 60
_ID = re.compile(r"^[A-Za-z0-9_-]{22,64}$")


class NotKept(Exception):
    """An upload the server cannot hold; the message says why, in the page's words."""


class Busy(Exception):
    """This session is placing already (one placement at a time per session)."""


@dataclass
class _Session:
    pending: list = field(default_factory=list)  # [(bytes, name)]
    placing: threading.Lock = field(default_factory=threading.Lock)
    seen: float = 0.0


def too_large(name: str, nbytes: float) -> str:
    """The one wording of a refusal by size, the browser's (assets/uploads.js) and ours."""
    return (f"{name} is {nbytes / 2**20:.1f} MB; the limit is {MAX_UPLOAD_BYTES // 2**20} MB.")


def new_id() -> str:
    return secrets.token_urlsafe(16)


def valid_id(session) -> bool:
    return isinstance(session, str) and bool(_ID.match(session))


class PendingUploads:
    def __init__(self, *, max_pending: int = MAX_PENDING, max_sessions: int = MAX_SESSIONS,
                 max_bytes: int = MAX_PENDING_BYTES, idle_seconds: float = IDLE_SECONDS,
                 clock=time.monotonic):
        self.max_pending, self.max_sessions = max_pending, max_sessions
        self.max_bytes, self.idle_seconds, self.clock = max_bytes, idle_seconds, clock
        self._sessions: OrderedDict[str, _Session] = OrderedDict()
        self._lock = threading.Lock()

    def _session(self, session: str) -> _Session:
        """The session's record (created on first use), marked as just used; callers hold
        self._lock."""
        if not valid_id(session):
            raise NotKept("This page has no valid upload session: reload the page.")
        now = self.clock()
        for sid in [s for s, rec in self._sessions.items()
                    if now - rec.seen > self.idle_seconds and not rec.placing.locked()]:
            del self._sessions[sid]
        rec = self._sessions.get(session)
        if rec is None:
            while len(self._sessions) >= self.max_sessions:
                self._sessions.popitem(last=False)
            rec = self._sessions[session] = _Session()
        self._sessions.move_to_end(session)
        rec.seen = now
        return rec

    def _bytes(self) -> int:
        return sum(len(d) for rec in self._sessions.values() for d, _ in rec.pending)

    def add(self, session: str, data: bytes, name: str) -> int:
        """Keep one upload until it can be placed -> how many this session has waiting."""
        if len(data) > MAX_UPLOAD_BYTES:
            raise NotKept(too_large(name, len(data)))
        with self._lock:
            rec = self._session(session)
            if len(rec.pending) >= self.max_pending:
                raise NotKept(f"{words.plural(len(rec.pending), 'upload')} already wait to be "
                              f"placed (at most {self.max_pending}); drop {name} again once "
                              "they are on the map.")
            if self._bytes() + len(data) > self.max_bytes:
                raise NotKept("The server holds as many waiting uploads as it can right now; "
                              f"drop {name} again in a moment.")
            rec.pending.append((data, name))
            return len(rec.pending)

    def count(self, session: str) -> int:
        with self._lock:
            rec = self._sessions.get(session)
            return len(rec.pending) if rec is not None else 0

    def clear(self, session: str) -> None:
        with self._lock:
            self._sessions.pop(session, None)

    @contextmanager
    def placing(self, session: str):
        """Take this session's waiting uploads to place them, one batch per session at a
        time: yields [(bytes, name)], at most max_pending; raises Busy while another request
        of the session is placing."""
        with self._lock:
            rec = self._session(session)
            if not rec.placing.acquire(blocking=False):
                raise Busy(session)
            batch, rec.pending = rec.pending, []
        try:
            yield batch
        finally:
            rec.placing.release()
            with self._lock:
                rec.seen = self.clock()
