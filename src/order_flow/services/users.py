"""Users, roles, groups, passwords and API tokens."""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Iterable
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from order_flow.engine.actors import Actor
from order_flow.errors import NotFoundError, ValidationError
from order_flow.store.models import User, UserGroup

if TYPE_CHECKING:
    from order_flow.bootstrap import App

ROLES = ("clerk", "supervisor", "admin")
GROUPS = ("sales", "warehouse", "finance", "production", "logistics")
MIN_PASSWORD = 8
_USERNAME = re.compile(r"[a-z0-9_.-]{2,64}")


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

    @staticmethod
    def _locked(s: Session, username: str) -> User:
        user = s.scalars(select(User).where(User.username == username).with_for_update()).first()
        if user is None:
            raise NotFoundError(f"no user '{username}'")
        return user
