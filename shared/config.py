"""Settings from ``HANDOFF_*`` environment variables, read once per process, typed, and failing
fast with the variable's name. Every field is documented in ``deploy/handoff.env.example``.

Each secret (:data:`SECRETS`) may instead be read from a file named by ``HANDOFF_<NAME>_FILE``
(Docker and Compose ``secrets:`` mount them under ``/run/secrets``), so it never sits in the
process environment."""

from __future__ import annotations

import ipaddress
import os
import re
import secrets
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Literal

import msgspec
from sqlalchemy.engine import make_url

from shared.keys import Keyring

PREFIX = "HANDOFF_"
# Settings that may come from a file instead (``HANDOFF_SECRET_KEY_FILE=/run/secrets/secret_key``).
SECRETS = ("secret_key", "secret_keys", "smtp_password", "directory_db_password", "referrals_db_password")
FILE_SUFFIX = "_FILE"


class ConfigError(Exception):
    """A ``HANDOFF_*`` variable is missing or malformed; the message names it."""


# Settings that were replaced, and what replaced them: set, they stop the process with a message
# saying what to set instead, rather than being ignored (a deadline silently back to its default).
REPLACED = {
    "HANDOFF_OFFER_DAYS_URGENT": (
        "HANDOFF_OFFER_DAYS_URGENT was replaced by HANDOFF_OFFER_HOURS_URGENT: urgent offers now "
        "expire after clock hours (decimals allowed, default 4), not business days. Remove it and "
        "set HANDOFF_OFFER_HOURS_URGENT if 4 hours does not suit (see deploy/handoff.env.example)"
    ),
}


class Settings(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """Every setting of every Handoff process. Field ``x`` is read from ``HANDOFF_X``."""

    data_dir: str = "data"
    redis_url: str = "redis://127.0.0.1:6379/0"
    directory_db_url: str = ""
    referrals_db_url: str = ""
    # A PostgreSQL password kept apart from its URL (from a secret file), used when the URL has none.
    directory_db_password: str = ""
    referrals_db_password: str = ""
    # Each engine (one per web process or worker) holds up to pool size + overflow connections.
    db_pool_size: int = 10
    db_max_overflow: int = 10
    # PgBouncer in transaction mode between the processes and PostgreSQL: no prepared-statement
    # cache, no per-connection server settings.
    db_pgbouncer: bool = False
    secret_key: str = ""
    # Earlier secret keys, comma separated: they still verify what they signed (see shared.keys).
    secret_keys: str = ""

    host: str = "127.0.0.1"
    directory_port: int = 8001
    referrals_port: int = 8002
    # Public base URLs: what a partner's email link and the dev banner point at.
    directory_url: str = ""
    referrals_url: str = ""

    smtp_host: str = "127.0.0.1"
    smtp_port: int = 1025
    smtp_security: Literal["none", "starttls", "tls"] = "none"
    smtp_username: str = ""
    smtp_password: str = ""
    smtp_timeout_seconds: float = 10.0
    # A PEM file of CA certificates to trust for the SMTP server instead of the system's (a
    # private relay's own CA). Empty: the system's trust store.
    smtp_ca_file: str = ""
    # Provider limit: messages per minute for this SMTP account, shared by every notifier worker
    # (a token bucket in Redis). 0: no limit.
    smtp_rate_per_minute: int = 0
    mail_from: str = "Handoff <handoff@localhost>"
    mail_reply_to: str = ""

    # Staff pages of both services share one login cookie; set a parent domain (".clinic.example")
    # when they are served from different hosts. Empty: the host that set it (ports share cookies).
    session_cookie_domain: str = ""

    clinic_name: str = "Handoff Demo Clinic"
    clinic_timezone: str = "America/New_York"
    # The clinic's contact, printed on the client's handout.
    clinic_phone: str = ""
    clinic_address: str = ""
    clinic_website: str = ""
    # The clinic's contact email, published as the curator of its public directory (Open Referral
    # HSDS `assurer_email`). Never a partner's address.
    clinic_email: str = ""
    # The clinic's logo (an https:// URL or a path on the services) and accent colour (#rgb or
    # #rrggbb), shown on the public page and the staff pages. Empty: no logo, the default blue.
    clinic_logo_url: str = ""
    clinic_accent_color: str = ""
    # The unit the public page measures distances in: miles (US clinics) or kilometres.
    distance_unit: Literal["mi", "km"] = "mi"
    # The state's duties to report abuse, shown to the therapist with abuse-disclosure advice.
    clinic_reporting_duties: str = (
        "Check your state's mandated-reporting rules: many states require some professionals to report "
        "suspected abuse of a child, an older adult or a dependent adult."
    )
    # Addresses (IPs or CIDRs, comma separated) of the reverse proxies whose X-Forwarded-For and
    # X-Forwarded-Proto the web services believe. Empty: none, every client is its own peer.
    trusted_proxies: str = ""
    # Who may read /metrics: client addresses (IPs or CIDRs, comma separated), or whoever sends
    # this token as a bearer token. Default: this machine only.
    metrics_allow: str = "127.0.0.1/32,::1/128"
    metrics_token: str = ""
    staff_token_ttl_minutes: int = 480
    # Requests per minute per client (see shared.ratelimit); 0 turns the limit off. Login: per
    # address and email tried. Search: anonymous public search and partner pages, per address.
    login_rate_limit: int = 10
    search_rate_limit: int = 120
    # An urgent referral is offered to this many partners at once; the first to accept takes it.
    urgent_parallel_offers: int = 3
    # Hours (decimals allowed) a partner has to answer an urgent offer: clock hours, day or night.
    offer_hours_urgent: float = 4.0
    # Business days a partner has to answer a soon or routine offer (one partner at a time).
    offer_days_soon: int = 3
    offer_days_routine: int = 5
    # Days that are not business days besides weekends: ISO dates, comma separated.
    clinic_holidays: str = ""
    # Seconds between two passes of the referrals worker's deadline sweep (reminders, expiries)
    # and of the directory worker's listing sweep (confirmations, reopening, licences).
    sweep_interval_seconds: int = 60
    # The confirmation cycle: a partner is asked to confirm its listing this many days after it
    # last did (or was added), reminded once halfway through the grace period, and flagged for the
    # admin's review when still unconfirmed after the grace period; with HANDOFF_UNLIST_UNCONFIRMED
    # it then leaves the public pages until it confirms. Decimals allowed (0.0001 days ~ 9 s).
    attestation_days: float = 180.0
    attestation_grace_days: float = 30.0
    unlist_unconfirmed: bool = False

    relay_interval_seconds: float = 0.5
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # One format for the app's, uvicorn's and RQ's logs (shared.logs): json for log collectors.
    log_format: Literal["json", "text"] = "text"
    # Seconds between two heartbeats of a worker (shared.heartbeat); its liveness check fails
    # within two of them when the worker stops beating.
    worker_heartbeat_seconds: float = 10.0

    def __post_init__(self) -> None:
        for name in ("directory_port", "referrals_port", "smtp_port"):
            port = getattr(self, name)
            if not 0 < port < 65536:
                raise msgspec.ValidationError(f"port out of range: {port} - at `$.{name}`")
        if self.smtp_rate_per_minute < 0:
            raise msgspec.ValidationError("must be 0 (no limit) or more - at `$.smtp_rate_per_minute`")
        for name in ("login_rate_limit", "search_rate_limit"):
            if getattr(self, name) < 0:
                raise msgspec.ValidationError(f"must be 0 (no limit) or more - at `$.{name}`")
        if self.clinic_email and not re.fullmatch(r"[^@\s]+@[^@\s.]+(\.[^@\s.]+)+", self.clinic_email):
            raise msgspec.ValidationError("is not an email address - at `$.clinic_email`")
        if self.clinic_accent_color and not re.fullmatch(r"#[0-9a-fA-F]{3}([0-9a-fA-F]{3})?", self.clinic_accent_color):
            raise msgspec.ValidationError("is not a colour like #0b5cad - at `$.clinic_accent_color`")
        if self.clinic_logo_url and not re.fullmatch(r"(https?://[^\s\"'<>]+|/[^\s\"'<>]*)", self.clinic_logo_url):
            raise msgspec.ValidationError("is not an http(s) URL or a path starting with / - at `$.clinic_logo_url`")
        if self.db_pool_size < 1:
            raise msgspec.ValidationError("must be 1 or more - at `$.db_pool_size`")
        if self.db_max_overflow < 0:
            raise msgspec.ValidationError("must be 0 or more - at `$.db_max_overflow`")
        if self.worker_heartbeat_seconds <= 0:
            raise msgspec.ValidationError("must be more than 0 - at `$.worker_heartbeat_seconds`")
        for name in ("attestation_days", "attestation_grace_days"):
            if not getattr(self, name) > 0:
                raise msgspec.ValidationError(f"must be more than 0 - at `$.{name}`")
        if not 1 <= self.urgent_parallel_offers <= 20:
            raise msgspec.ValidationError("must be from 1 to 20 - at `$.urgent_parallel_offers`")
        if not 0 < self.offer_hours_urgent <= 72:
            raise msgspec.ValidationError("must be more than 0 and at most 72 hours - at `$.offer_hours_urgent`")
        for name in ("offer_days_soon", "offer_days_routine"):
            if getattr(self, name) < 1:
                raise msgspec.ValidationError(f"must be 1 or more - at `$.{name}`")
        if self.sweep_interval_seconds < 1:
            raise msgspec.ValidationError("must be 1 or more - at `$.sweep_interval_seconds`")
        for name in ("trusted_proxies", "metrics_allow"):
            for item in _items(getattr(self, name)):
                try:
                    ipaddress.ip_network(item, strict=False)
                except ValueError:
                    raise msgspec.ValidationError(f"{item!r} is not an IP address or CIDR - at `$.{name}`") from None
        try:
            self.holidays  # noqa: B018 - parsed here so a bad date fails at start, naming the variable.
        except ValueError as exc:
            raise msgspec.ValidationError(f"{exc} - at `$.clinic_holidays`") from None

    @property
    def proxies(self) -> list[str]:
        """``HANDOFF_TRUSTED_PROXIES`` as a list (uvicorn's ``forwarded_allow_ips``)."""
        return _items(self.trusted_proxies)

    @property
    def metrics_networks(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        """``HANDOFF_METRICS_ALLOW`` as networks."""
        return [ipaddress.ip_network(item, strict=False) for item in _items(self.metrics_allow)]

    @property
    def holidays(self) -> frozenset[date]:
        """The clinic's holidays (``HANDOFF_CLINIC_HOLIDAYS``), not counted as business days."""
        found = set()
        for item in self.clinic_holidays.split(","):
            if item.strip():
                try:
                    found.add(date.fromisoformat(item.strip()))
                except ValueError:
                    raise ValueError(f"{item.strip()!r} is not an ISO date (YYYY-MM-DD)") from None
        return frozenset(found)

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir).resolve()

    @property
    def mail_dir(self) -> Path:
        """Where the ``handoff dev`` SMTP catcher writes each message as an ``.eml`` file."""
        return self.data_path / "mail"

    def db_url(self, service: Literal["directory", "referrals"]) -> str:
        """The service's SQLAlchemy async URL: its own SQLite file unless a URL was given."""
        given = getattr(self, f"{service}_db_url")
        if not given:
            return f"sqlite+aiosqlite:///{self.data_path / f'{service}.db'}"
        url = normalise_db_url(given)
        password = getattr(self, f"{service}_db_password")
        if password and url.startswith("postgresql"):
            parsed = make_url(url)
            if parsed.password is None:
                return parsed.set(password=password).render_as_string(hide_password=False)
        return url

    def public_url(self, service: Literal["directory", "referrals"]) -> str:
        given = getattr(self, f"{service}_url")
        if given:
            return given.rstrip("/")
        host = "localhost" if self.host in ("0.0.0.0", "127.0.0.1", "::") else self.host
        return f"http://{host}:{getattr(self, f'{service}_port')}"

    def signing_key(self) -> str:
        """``HANDOFF_SECRET_KEY``, or on a single machine a random key kept in the data dir so
        that every local process agrees on it. It never lives in the repository."""
        if self.secret_key:
            return self.secret_key
        path = self.data_path / "secret.key"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_urlsafe(48))
        return path.read_text().strip()

    def keyring(self) -> Keyring:
        """The signing key (:meth:`signing_key`) and the earlier ones of ``HANDOFF_SECRET_KEYS``."""
        return Keyring(self.signing_key(), previous=[key.strip() for key in self.secret_keys.split(",")])


def _items(value: str) -> list[str]:
    """The non-empty items of a comma-separated setting."""
    return [item.strip() for item in value.split(",") if item.strip()]


def normalise_db_url(url: str) -> str:
    """Accept the URLs people paste (``postgres://``, ``postgresql://``, ``sqlite:///``) and
    return the async driver's form."""
    for plain, async_form in (
        ("postgres://", "postgresql+asyncpg://"),
        ("postgresql://", "postgresql+asyncpg://"),
        ("sqlite:///", "sqlite+aiosqlite:///"),
    ):
        if url.startswith(plain):
            return async_form + url[len(plain) :]
    return url


def field_names() -> list[str]:
    """The environment variable of every setting, e.g. ``HANDOFF_REDIS_URL``."""
    return [PREFIX + name.upper() for name in Settings.__struct_fields__]


def file_variables() -> list[str]:
    """The variables that name a secret's file, e.g. ``HANDOFF_SECRET_KEY_FILE``."""
    return [PREFIX + name.upper() + FILE_SUFFIX for name in SECRETS]


def load_settings(environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
    """Read settings from the environment (or ``environ``). Unknown ``HANDOFF_*`` variables and
    values of the wrong type raise :class:`ConfigError` naming the variable."""
    environ = os.environ if environ is None else environ
    known = set(Settings.__struct_fields__)
    raw: dict[str, object] = {}
    for key, value in environ.items():
        if not key.startswith(PREFIX) or key.startswith(PREFIX + "TEST_"):
            continue
        if key in REPLACED:
            raise ConfigError(REPLACED[key])
        name = key[len(PREFIX) :].lower()
        if name.endswith(FILE_SUFFIX.lower()) and name[: -len(FILE_SUFFIX)] in SECRETS:
            continue
        if name not in known:
            raise ConfigError(f"{key} is not a Handoff setting (see deploy/handoff.env.example)")
        raw[name] = value
    raw.update(_secret_files(environ))
    raw.update(overrides)
    try:
        # strict=False lets "8001" become 8001 and "true" become True, as env values must.
        return msgspec.convert(raw, Settings, strict=False)
    except msgspec.ValidationError as exc:
        raise ConfigError(_name_variable(str(exc))) from None


def _secret_files(environ: Mapping[str, str]) -> dict[str, str]:
    """Each secret whose ``HANDOFF_<NAME>_FILE`` is set, read from that file (one trailing newline
    dropped, as ``echo`` and editors leave one)."""
    found = {}
    for name in SECRETS:
        variable = PREFIX + name.upper() + FILE_SUFFIX
        path = environ.get(variable)
        if not path:
            continue
        if environ.get(PREFIX + name.upper()):
            raise ConfigError(f"{variable}: set either it or {PREFIX + name.upper()}, not both")
        try:
            found[name] = Path(path).read_text(encoding="utf-8").removesuffix("\n").removesuffix("\r")
        except OSError as exc:
            raise ConfigError(f"{variable}: cannot read {path}: {exc.strerror or exc}") from None
        except UnicodeDecodeError:
            raise ConfigError(f"{variable}: {path} is not UTF-8 text") from None
    return found


def _name_variable(message: str) -> str:
    if "- at `$." in message:
        reason, _, path = message.rpartition(" - at `$.")
        return f"{PREFIX}{path.rstrip('`').upper()}: {reason}"
    return message
