"""Users, roles, groups, passwords and API tokens; saved inbox filters; the
failed-login throttle."""

from __future__ import annotations

import hashlib
import random
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from order_flow.engine.actors import Actor
from order_flow.errors import ConflictError, NotFoundError, ValidationError
from order_flow.store.models import LoginFailure, SavedFilter, User, UserGroup
from order_flow.store.tables import rowcount

if TYPE_CHECKING:
    from order_flow.bootstrap import App

ROLES = ("clerk", "supervisor", "admin")
GROUPS = ("sales", "warehouse", "finance", "production", "logistics")
MIN_PASSWORD = 8
_USERNAME = re.compile(r"[a-z0-9_.-]{2,64}")


#: Saved inbox filters per user, and the length of a filter's name.
MAX_SAVED_FILTERS = 20
FILTER_NAME_MAX = 40
#: Failed logins allowed per IP address / per account within the window.
LOGIN_MAX_FAILURES_PER_IP = 30
LOGIN_MAX_FAILURES_PER_ACCOUNT = 10
LOGIN_WINDOW = timedelta(minutes=15)
#: One recorded failure in this many also deletes every expired row (the rest prune
#: only their own keys, through the index).
LOGIN_PRUNE_ONE_IN = 50


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def actor_of(user: User, acting_for: str | None = None) -> Actor:
    return Actor(user.username, user.role, user.group_names, user.id, acting_for)


class UserService:
    def __init__(self, app: App) -> None:
        self.app = app
        self.method = app.settings.password_hash
        # Compared against when the user does not exist, so a login takes the same
        # time and says the same thing either way.
        self._dummy_hash = generate_password_hash("not-a-real-password", method=self.method)

    def _check(
        self, username: str, role: str, groups: Iterable[str], password: str | None
    ) -> list[str]:
        errors: dict[str, str] = {}
        if not _USERNAME.fullmatch(username or ""):
            errors["username"] = "2-64 characters: lowercase letters, digits, _ . -"
        if role not in ROLES:
            errors["role"] = f"must be one of {', '.join(ROLES)}"
        bad = sorted(set(groups) - set(GROUPS))
        if bad:
            errors["groups"] = f"unknown group(s) {', '.join(bad)}; use {', '.join(GROUPS)}"
        if password is not None and len(password) < MIN_PASSWORD:
            errors["password"] = f"at least {MIN_PASSWORD} characters"
        if errors:
            raise ValidationError(errors)
        return sorted(set(groups))

    def create(
        self,
        username: str,
        role: str = "clerk",
        groups: Iterable[str] = ("sales",),
        password: str | None = None,
        display_name: str = "",
        locale: str = "zh_CN",
    ) -> User:
        group_list = self._check(username, role, groups, password)
        with self.app.engine.session_factory.begin() as s:
            if s.scalar(select(User.id).where(User.username == username)) is not None:
                raise ValidationError({"username": f"'{username}' is taken"})
            user = User(
                username=username,
                role=role,
                display_name=display_name or username,
                locale=locale,
                password_hash=generate_password_hash(password, method=self.method)
                if password
                else None,
            )
            user.groups = [UserGroup(group_name=g) for g in group_list]
            s.add(user)
        return user

    def get(self, username: str) -> User:
        with self.app.engine.session_factory() as s:
            user = s.scalars(select(User).where(User.username == username)).first()
            if user is None:
                raise NotFoundError(f"no user '{username}'")
            return user

    def by_id(self, user_id: int) -> User | None:
        with self.app.engine.session_factory() as s:
            return s.get(User, user_id)

    def list(self) -> list[User]:
        with self.app.engine.session_factory() as s:
            return list(s.scalars(select(User).order_by(User.username)))

    def set_password(self, username: str, password: str) -> None:
        if len(password or "") < MIN_PASSWORD:
            raise ValidationError({"password": f"at least {MIN_PASSWORD} characters"})
        with self.app.engine.session_factory.begin() as s:
            user = self._locked(s, username)
            user.password_hash = generate_password_hash(password, method=self.method)
            user.session_epoch += 1

    def set_role(self, username: str, role: str, groups: Iterable[str] | None = None) -> None:
        """Change the role (and groups); the user's open sessions end."""
        with self.app.engine.session_factory.begin() as s:
            user = self._locked(s, username)
            group_list = self._check(username, role, groups or user.group_names, None)
            user.role = role
            if groups is not None:
                user.groups = [UserGroup(group_name=g) for g in group_list]
            user.session_epoch += 1

    def disable(self, username: str) -> None:
        with self.app.engine.session_factory.begin() as s:
            user = self._locked(s, username)
            user.active = False
            user.token_hash = None
            user.session_epoch += 1

    def end_sessions(self, user_id: int) -> None:
        """Invalidate every session cookie of the user (logout everywhere)."""
        with self.app.engine.session_factory.begin() as s:
            user = s.get(User, user_id)
            if user is not None:
                user.session_epoch += 1

    def issue_token(self, username: str) -> str:
        """A new API token (shown once; only its digest is stored)."""
        token = "oft_" + secrets.token_urlsafe(32)
        with self.app.engine.session_factory.begin() as s:
            self._locked(s, username).token_hash = token_digest(token)
        return token

    def check_password(self, username: str, password: str) -> User | None:
        with self.app.engine.session_factory() as s:
            user = s.scalars(select(User).where(User.username == username)).first()
            if user is None or not user.active or not user.password_hash:
                check_password_hash(self._dummy_hash, password or "")
                return None
            return user if check_password_hash(user.password_hash, password or "") else None

    def by_token(self, token: str) -> User | None:
        if not token:
            return None
        with self.app.engine.session_factory() as s:
            user = s.scalars(select(User).where(User.token_hash == token_digest(token))).first()
            return user if user is not None and user.active else None

    # -- saved inbox filters (the web layer decides what a query may hold) --------------

    def saved_filters(self, user_id: int) -> dict[str, dict[str, str]]:
        """The user's saved filters, name -> query, by name."""
        with self.app.engine.session_factory() as s:
            rows = s.execute(
                select(SavedFilter.name, SavedFilter.query)
                .where(SavedFilter.user_id == user_id)
                .order_by(SavedFilter.name)
            )
            return {r.name: {str(k): str(v) for k, v in r.query.items()} for r in rows}

    def save_filter(self, user_id: int, name: str, query: Mapping[str, str]) -> None:
        """Save (or overwrite) a named filter; at most MAX_SAVED_FILTERS per user."""
        name = (name or "").strip()
        if not name:
            raise ValidationError({"name": "required"})
        if len(name) > FILTER_NAME_MAX:
            raise ValidationError({"name": f"at most {FILTER_NAME_MAX} characters"})
        body = {str(k): str(v) for k, v in query.items()}
        try:
            with self.app.engine.session_factory.begin() as s:
                found = s.scalars(
                    select(SavedFilter).where(
                        SavedFilter.user_id == user_id, SavedFilter.name == name
                    )
                ).first()
                if found is not None:
                    found.query = body
                    return
                count = s.scalar(
                    select(func.count())
                    .select_from(SavedFilter)
                    .where(SavedFilter.user_id == user_id)
                )
                if (count or 0) >= MAX_SAVED_FILTERS:
                    raise ValidationError({"name": f"at most {MAX_SAVED_FILTERS} saved filters"})
                s.add(SavedFilter(user_id=user_id, name=name, query=body))
        except IntegrityError as exc:  # the same name saved at the same moment elsewhere
            raise ConflictError(f"filter '{name}' was saved meanwhile") from exc

    def delete_filter(self, user_id: int, name: str) -> bool:
        with self.app.engine.session_factory.begin() as s:
            gone = delete(SavedFilter).where(
                SavedFilter.user_id == user_id, SavedFilter.name == name
            )
            return rowcount(s.execute(gone)) > 0

    @staticmethod
    def _locked(s: Session, username: str) -> User:
        user = s.scalars(select(User).where(User.username == username).with_for_update()).first()
        if user is None:
            raise NotFoundError(f"no user '{username}'")
        return user


@dataclass(frozen=True)
class LoginThrottle:
    """A sliding window of failed logins per IP and per account, kept in the database
    (``login_failures``) so that every web process counts alike.

    Two processes checking at the same instant may each let one more attempt through;
    the window still holds within a handful of attempts.
    """

    app: App
    per_ip: int = LOGIN_MAX_FAILURES_PER_IP
    per_account: int = LOGIN_MAX_FAILURES_PER_ACCOUNT
    window: timedelta = LOGIN_WINDOW

    @staticmethod
    def keys(ip: str, username: str) -> tuple[str, str]:
        return f"ip:{ip}"[:128], f"user:{username}"[:128]

    def blocked(self, ip: str, username: str) -> bool:
        """True when the address or the account has used up its failures."""
        ip_key, user_key = self.keys(ip, username)
        since = self.app.engine.clock() - self.window
        with self.app.engine.session_factory() as s:
            return (
                _recent(s, ip_key, since, self.per_ip) >= self.per_ip
                or _recent(s, user_key, since, self.per_account) >= self.per_account
            )

    def failed(self, ip: str, username: str) -> None:
        """Count one failure against both keys; prune expired rows on the way."""
        now = self.app.engine.clock()
        keys = self.keys(ip, username)
        with self.app.engine.session_factory.begin() as s:
            expired = LoginFailure.at <= now - self.window
            if random.randrange(LOGIN_PRUNE_ONE_IN) == 0:  # a cheap coin toss, not security
                s.execute(delete(LoginFailure).where(expired))
            else:
                s.execute(delete(LoginFailure).where(LoginFailure.key.in_(keys), expired))
            s.add_all([LoginFailure(key=key, at=now) for key in keys])

    def succeeded(self, username: str) -> None:
        """A good password clears the account's failures (not the address's)."""
        _ip, user_key = self.keys("", username)
        with self.app.engine.session_factory.begin() as s:
            s.execute(delete(LoginFailure).where(LoginFailure.key == user_key))


def _recent(s: Session, key: str, since: datetime, cap: int) -> int:
    """Failures of ``key`` after ``since``, counted up to ``cap`` (index range scan)."""
    rows = (
        select(LoginFailure.id)
        .where(LoginFailure.key == key, LoginFailure.at > since)
        .limit(cap)
        .subquery()
    )
    return int(s.scalar(select(func.count()).select_from(rows)) or 0)
