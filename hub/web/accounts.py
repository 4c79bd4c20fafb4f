"""Who may sign in to the admin UI, and as whom what they do is recorded.

Two kinds of account. The hub's **administrator**: ``web.admin_user`` / ``web.admin_password``
of the settings. And every **agent** with a password of their own, set by the administrator on
the agent's page and changed by the agent on /account; an agent is recorded as the actor of
what they do (transitions, messages, assignments, triage checks) under their agent id, so the
audit says which agent did it, not "admin". An agent who is inactive, or whose password was
removed, cannot sign in.

A session is bound to the credential it was opened with (a fingerprint of the password hash,
or of the administrator's settings) and checked on every request: changing an agent's
password, removing it or deactivating the agent ends their open sessions at their next click.
A session left unused for ``IDLE_LIMIT`` ends too (a desk left signed in overnight).

Passwords are stored as salted scrypt hashes (``werkzeug.security``); a sign-in with an
unknown user name costs the same hash check as a wrong password, so response times do not
tell which agent ids exist. Guessing is throttled (:class:`SignInThrottle`): after
``PER_USER`` failures for one user name, or ``PER_ADDRESS`` from one address, within
``THROTTLE_WINDOW``, sign-ins for it are refused unchecked until the oldest failure leaves
the window.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import threading
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from hub.errors import InvalidInput
from hub.settings import WebSettings
from hub.tickets.agents import AGENT_ID, record_change
from hub.tickets.models import Agent

ADMIN, AGENT = "admin", "agent"
MIN_PASSWORD, MAX_PASSWORD = 10, 256
PER_USER, PER_ADDRESS = 5, 30  # failed sign-ins within THROTTLE_WINDOW
THROTTLE_WINDOW = timedelta(minutes=15)
IDLE_LIMIT = timedelta(hours=12)  # a session unused this long has ended
_MAX_KEYS = 10_000  # user names and addresses remembered before expired ones are swept


@dataclass(frozen=True)
class User:
    """The person signed in."""

    id: str  # the actor recorded for what they do: the admin user name or the agent id
    name: str
    role: str  # ADMIN or AGENT
    supervisor: bool = False

    @property
    def manages_agents(self) -> bool:
        """Whether they may add agents, change profiles and start or end others' shifts."""
        return self.role == ADMIN or self.supervisor

    @property
    def is_admin(self) -> bool:
        """Whether they are the hub's administrator."""
        return self.role == ADMIN


def password_problem(password: str, agent_id: str, name: str) -> str | None:
    """What is wrong with ``password`` as the agent's, or None."""
    if len(password) < MIN_PASSWORD:
        return f"a password needs at least {MIN_PASSWORD} characters, got {len(password)}"
    if len(password) > MAX_PASSWORD:
        return f"a password has at most {MAX_PASSWORD} characters, got {len(password)}"
    if password.strip().casefold() in (agent_id.casefold(), name.strip().casefold()):
        return "a password must not be the agent's id or name"
    return None


def set_password(db: Session, agent: Agent, password: str, now: datetime, *,
                 actor: str) -> None:
    """Give the agent a new password (their open sessions end), recorded as ``actor``'s
    change; ``InvalidInput`` names what is wrong with it."""
    problem = password_problem(password, agent.id, agent.name or "")
    if problem is not None:
        raise InvalidInput(problem)
    agent.password_hash = generate_password_hash(password)
    agent.password_set_at = now
    record_change(db, agent.id, actor, "password_set", {}, now)


def change_own_password(db: Session, agent: Agent, current: str, new: str, repeated: str,
                        now: datetime) -> None:
    """The agent changes their password; ``InvalidInput`` names what is wrong (the current
    password, a mismatch, or the new one)."""
    if agent.password_hash is None or not check_password_hash(agent.password_hash, current):
        raise InvalidInput("the current password is wrong")
    if new != repeated:
        raise InvalidInput("the new password and its repetition differ")
    if new == current:
        raise InvalidInput("the new password is the current one")
    set_password(db, agent, new, now, actor=agent.id)


def remove_password(db: Session, agent: Agent, now: datetime, *, actor: str) -> None:
    """Take the agent's sign-in away (their open sessions end), recorded as ``actor``'s."""
    agent.password_hash = None
    agent.password_set_at = None
    record_change(db, agent.id, actor, "password_removed", {}, now)


def check_new_agent_id(db: Session, agent_id: str, web: WebSettings) -> None:
    """Refuse (``InvalidInput``) registering an agent under the administrator's user name:
    one of them could never sign in, and the audit could not tell them apart."""
    if agent_id.casefold() == web.admin_user.casefold() and db.get(Agent, agent_id) is None:
        raise InvalidInput(f"agent id {agent_id!r} is the administrator's user name; choose "
                           "another")


def authenticate(db: Session, web: WebSettings, username: str, password: str) -> User | None:
    """The account these credentials open, or None (wrong name or password, or an agent who
    cannot sign in)."""
    # The administrator: compare both, always, so the response time does not tell which failed.
    user_ok = hmac.compare_digest(username.encode(), web.admin_user.encode())
    password_ok = hmac.compare_digest(password.encode(), web.admin_password.encode())
    if user_ok and password_ok:
        return User(web.admin_user, web.admin_user, ADMIN)
    agent = db.get(Agent, username) if AGENT_ID.match(username) else None
    if agent is None or not agent.active or agent.password_hash is None:
        check_password_hash(_decoy_hash(), password)  # the work of a wrong password
        return None
    return _agent_user(agent) if check_password_hash(agent.password_hash, password) else None


def open_session(session: Any, user: User, web: WebSettings, db: Session,
                 now: datetime) -> None:
    """Start a fresh session for ``user`` (a new one: no fixation), bound to their credential."""
    session.clear()
    session["user"] = user.id
    session["role"] = user.role
    session["credential"] = _credential(user.role, user.id, web, db)
    session["seen"] = now.timestamp()


def idle(stored: Mapping[str, Any], now: datetime) -> bool:
    """Whether the session went unused for longer than ``IDLE_LIMIT`` (or never said when it
    was used)."""
    seen = stored.get("seen")
    if isinstance(seen, bool) or not isinstance(seen, int | float):
        return True
    return now.timestamp() - seen > IDLE_LIMIT.total_seconds()


def touch(session: Any, now: datetime) -> None:
    """Note that the session was used now."""
    session["seen"] = now.timestamp()


def session_user(stored: Mapping[str, Any], web: WebSettings, db: Session) -> User | None:
    """The user a session belongs to, or None when it is signed out or no longer valid (an
    agent deactivated, a password changed or removed, the administrator's settings changed)."""
    role, user_id = stored.get("role"), stored.get("user")
    if not isinstance(user_id, str) or role not in (ADMIN, AGENT):
        return None
    credential = _credential(role, user_id, web, db)
    if credential is None or not hmac.compare_digest(str(stored.get("credential", "")),
                                                     credential):
        return None
    if role == ADMIN:
        return User(web.admin_user, web.admin_user, ADMIN)
    agent = db.get(Agent, user_id)
    return _agent_user(agent) if agent is not None else None


def _agent_user(agent: Agent) -> User:
    return User(agent.id, agent.name, AGENT, supervisor=agent.supervisor)


def _credential(role: str, user_id: str, web: WebSettings, db: Session) -> str | None:
    if role == ADMIN:
        if user_id != web.admin_user:
            return None
        return _fingerprint(f"{web.admin_user}\0{web.admin_password}")
    agent = db.get(Agent, user_id)
    if agent is None or not agent.active or agent.password_hash is None:
        return None
    return _fingerprint(agent.password_hash)


def _fingerprint(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()[:32]


@functools.cache
def _decoy_hash() -> str:
    """A hash to check a password against when the user name opens no account."""
    return generate_password_hash("no account has this password")


class SignInThrottle:
    """Failed sign-ins per user name and per address, in a sliding window (thread-safe; one
    per web app, in memory: the pages are served by one process)."""

    def __init__(self, per_user: int = PER_USER, per_address: int = PER_ADDRESS,
                 window: timedelta = THROTTLE_WINDOW) -> None:
        self._limits = {"user": per_user, "address": per_address}
        self._window = window
        self._failures: dict[tuple[str, str], deque[datetime]] = {}
        self._lock = threading.Lock()

    def wait(self, user: str, address: str, now: datetime) -> timedelta | None:
        """How long until a sign-in as ``user`` from ``address`` is checked again, or None
        when it may be checked now."""
        with self._lock:
            waits = [self._wait(key, now) for key in self._keys(user, address)]
        found = [w for w in waits if w is not None]
        return max(found) if found else None

    def failed(self, user: str, address: str, now: datetime) -> None:
        """Count a failed sign-in."""
        with self._lock:
            if len(self._failures) >= _MAX_KEYS:
                self._sweep(now)
            for key in self._keys(user, address):
                self._failures.setdefault(key, deque()).append(now)

    def succeeded(self, user: str) -> None:
        """Forget the user name's failures (the address's stay counted)."""
        with self._lock:
            self._failures.pop(("user", _user_key(user)), None)

    def _keys(self, user: str, address: str) -> list[tuple[str, str]]:
        return [("user", _user_key(user)), ("address", address)]

    def _wait(self, key: tuple[str, str], now: datetime) -> timedelta | None:
        times = self._failures.get(key)
        if not times:
            return None
        while times and times[0] <= now - self._window:
            times.popleft()
        if len(times) < self._limits[key[0]]:
            return None
        return times[0] + self._window - now

    def _sweep(self, now: datetime) -> None:
        for key in list(self._failures):
            times = self._failures[key]
            if not times or times[-1] <= now - self._window:
                del self._failures[key]


def _user_key(user: str) -> str:
    return user.strip().casefold()[:64]
