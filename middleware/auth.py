"""API keys: hashed at rest, mapped to a tenant and a role, reloaded when their file changes.

A caller sends ``authorization: Bearer <key>`` (or ``x-api-key: <key>``). The
service keeps only SHA-256 digests of keys: keys are 256-bit random tokens
(:func:`new_key`), so a plain digest cannot be brute-forced, and a leaked key file
gives nobody a working key. Comparison is constant-time.

Key file (TOML; ``api_keys_file``)::

    [[keys]]
    name = "acme-pipeline"     # shown in logs, never the key
    sha256 = "9f86d08..."      # ragpress keys new --tenant acme --role writer
    tenant = "acme"
    role = "writer"            # reader | writer | admin

Inline keys (``api_keys``, e.g. from ``RAGPRESS_API_KEYS``):
``"<sha256>:<tenant>:<role>;<sha256>:<tenant>:<role>"``.

Roles: ``reader`` compresses, generates, retrieves and reads its own usage;
``writer`` also indexes; ``admin`` also reads every tenant's usage and the
metrics/dashboard port. A keyed caller's tenant is its key's: the
``x-ragpress-tenant`` header is ignored.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import secrets
import threading
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping

from middleware.errors import InvalidArgument, PermissionDenied, Unauthenticated
from middleware.settings import Settings

log = logging.getLogger("ragpress.auth")

READER = frozenset({"Compress", "SelectDemonstrations", "Generate", "GenerateStream", "Retrieve", "GetUsage"})
ROLES: dict[str, frozenset[str]] = {
    "reader": READER,
    "writer": READER | {"Index"},
    "admin": READER | {"Index"},
}
# What only admins may do beyond RPCs: every tenant's usage, the metrics port.
ADMIN = "admin"
KEY_PREFIX = "rp_"


@dataclass(frozen=True)
class Principal:
    """Who a key belongs to."""

    name: str
    tenant: str
    role: str

    def allows(self, rpc: str) -> bool:
        return rpc in ROLES[self.role]

    @property
    def admin(self) -> bool:
        return self.role == ADMIN


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def new_key() -> tuple[str, str]:
    """A fresh random key and its digest (store the digest, hand out the key once)."""
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    return key, hash_key(key)


def _principal(name: str, digest: str, tenant: str, role: str, where: str) -> tuple[str, Principal]:
    from retrievers.base import check_name  # the tenant is also a folder name of collections

    digest = digest.strip().lower()
    if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise InvalidArgument(f"{where}: sha256 must be 64 hex digits (ragpress keys new makes one)")
    if role not in ROLES:
        raise InvalidArgument(f"{where}: role must be one of {sorted(ROLES)}, got {role!r}")
    check_name(f"{where}: tenant", tenant)
    return digest, Principal(name, tenant, role)


def parse_file(text: str, where: str) -> dict[str, Principal]:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InvalidArgument(f"{where} is not valid TOML: {exc}") from exc
    out: dict[str, Principal] = {}
    for i, entry in enumerate(data.get("keys", [])):
        if not isinstance(entry, Mapping):
            raise InvalidArgument(f"{where}: keys[{i}] must be a table")
        missing = [k for k in ("sha256", "tenant", "role") if k not in entry]
        if missing:
            raise InvalidArgument(f"{where}: keys[{i}] lacks {missing}")
        name = str(entry.get("name") or f"keys[{i}]")
        digest, principal = _principal(name, str(entry["sha256"]), str(entry["tenant"]), str(entry["role"]),
                                       f"{where} keys[{i}]")
        out[digest] = principal
    return out


def parse_inline(spec: str) -> dict[str, Principal]:
    out: dict[str, Principal] = {}
    for i, item in enumerate(filter(None, (s.strip() for s in spec.split(";")))):
        parts = item.split(":")
        if len(parts) != 3:
            raise InvalidArgument(f"setting api_keys entry {i}: expected <sha256>:<tenant>:<role>")
        digest, principal = _principal(f"inline[{i}]", *parts, where=f"setting api_keys entry {i}")
        out[digest] = principal
    return out


class KeyStore:
    """The configured keys; the file is re-read when its modification time changes
    (checked at most once a second), and a bad edit keeps the previous keys."""

    CHECK_SECONDS = 1.0

    def __init__(self, path: str | Path | None = None, inline: str = "") -> None:
        self.path = Path(path) if path else None
        self._inline = parse_inline(inline)
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._checked = 0.0
        self._keys: dict[str, Principal] = dict(self._inline)
        if self.path is not None:
            self._load()  # a broken file at start-up is an error, not a silent open door

    @classmethod
    def from_settings(cls, settings: Settings) -> "KeyStore":
        return cls(settings.api_keys_file or None, settings.api_keys)

    @property
    def enabled(self) -> bool:
        """True when keys are configured: every call must then carry one."""
        return self.path is not None or bool(self._inline)

    def _load(self) -> None:
        assert self.path is not None
        try:
            stat = self.path.stat()
            text = self.path.read_text(encoding="utf-8")
        except OSError as exc:
            raise InvalidArgument(f"cannot read api_keys_file {self.path}: {exc.strerror}") from exc
        keys = parse_file(text, f"api_keys_file {self.path}")
        self._keys = {**keys, **self._inline}
        self._stamp = (stat.st_mtime_ns, stat.st_size)
        log.info("loaded %d API key(s) from %s", len(keys), self.path)

    def _maybe_reload(self) -> None:
        now = time.monotonic()
        if self.path is None or now - self._checked < self.CHECK_SECONDS:
            return
        with self._lock:
            if now - self._checked < self.CHECK_SECONDS:
                return
            self._checked = now
            try:
                stat = self.path.stat()
                if (stat.st_mtime_ns, stat.st_size) != self._stamp:
                    self._load()
            except (OSError, InvalidArgument) as exc:
                log.error("keeping the previous API keys: %s", exc)

    def reload(self) -> None:
        """Re-read the key file now (tests; SIGHUP-style reloads)."""
        with self._lock:
            self._checked = time.monotonic()
            if self.path is not None:
                self._load()

    def authenticate(self, key: str | None) -> Principal:
        if not key:
            raise Unauthenticated("this server needs an API key: send metadata 'authorization: Bearer <key>'")
        self._maybe_reload()
        digest = hash_key(key)
        # Constant-time over every stored digest, so timing says nothing about which matched.
        found = None
        for stored, principal in self._keys.items():
            if hmac.compare_digest(stored, digest):
                found = principal
        if found is None:
            raise Unauthenticated("the API key is not valid (unknown or revoked)")
        return found

    def authorize(self, key: str | None, rpc: str) -> Principal:
        principal = self.authenticate(key)
        if not principal.allows(rpc):
            raise PermissionDenied(f"key {principal.name!r} (role {principal.role}) may not call {rpc}")
        return principal


def key_from(metadata: Iterable[tuple[str, str]]) -> str | None:
    """The API key in gRPC metadata or HTTP headers (lower-case names), if any."""
    for name, value in metadata:
        name = name.lower()
        if name == "authorization" and value[:7].lower() == "bearer ":
            return value[7:].strip()
        if name == "x-api-key":
            return value.strip()
    return None


def is_loopback(host: str) -> bool:
    if host in ("localhost", ""):
        return host == "localhost"
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_exposure(settings: Settings, keys: KeyStore) -> None:
    """Refuse to serve a non-loopback address without keys, unless told ``insecure``."""
    if is_loopback(settings.host) or keys.enabled or settings.insecure:
        return
    raise InvalidArgument(
        f"refusing to serve {settings.host} without authentication: configure api_keys_file (or "
        f"RAGPRESS_API_KEYS), or pass --insecure on a trusted network")
