"""Settings from the environment: typed, fail fast with the variable's name."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from shared.config import ConfigError, field_names, file_variables, load_settings, normalise_db_url


def test_defaults_and_types(tmp_path: Path) -> None:
    settings = load_settings({"HANDOFF_DATA_DIR": str(tmp_path), "HANDOFF_DIRECTORY_PORT": "9001"})
    assert settings.directory_port == 9001 and settings.referrals_port == 8002
    assert settings.db_url("referrals") == f"sqlite+aiosqlite:///{tmp_path / 'referrals.db'}"
    assert settings.public_url("directory") == "http://localhost:9001"


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"HANDOFF_DIRECTORY_PORT": "eighty"}, "HANDOFF_DIRECTORY_PORT"),
        ({"HANDOFF_REFERRALS_PORT": "70000"}, "HANDOFF_REFERRALS_PORT"),
        ({"HANDOFF_SMTP_SECURITY": "ssl3"}, "HANDOFF_SMTP_SECURITY"),
        ({"HANDOFF_REDIS_ULR": "redis://x"}, "HANDOFF_REDIS_ULR"),
        ({"HANDOFF_URGENT_PARALLEL_OFFERS": "0"}, "HANDOFF_URGENT_PARALLEL_OFFERS"),
        ({"HANDOFF_OFFER_HOURS_URGENT": "0"}, "HANDOFF_OFFER_HOURS_URGENT"),
        ({"HANDOFF_OFFER_HOURS_URGENT": "four"}, "HANDOFF_OFFER_HOURS_URGENT"),
    ],
)
def test_bad_values_name_the_variable(environ: dict, named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        load_settings(environ)


def test_database_urls_are_normalised_to_async_drivers() -> None:
    assert normalise_db_url("postgres://u@h/db") == "postgresql+asyncpg://u@h/db"
    assert normalise_db_url("postgresql://u@h/db") == "postgresql+asyncpg://u@h/db"
    assert normalise_db_url("sqlite:////tmp/x.db") == "sqlite+aiosqlite:////tmp/x.db"
    assert (
        load_settings({"HANDOFF_REFERRALS_DB_URL": "postgresql://h/r"})
        .db_url("referrals")
        .startswith("postgresql+asyncpg://")
    )


def test_local_secret_key_is_generated_once_and_private(tmp_path: Path) -> None:
    settings = load_settings({"HANDOFF_DATA_DIR": str(tmp_path)})
    first = settings.signing_key()
    assert len(first) >= 40 and settings.signing_key() == first
    assert stat.S_IMODE((tmp_path / "secret.key").stat().st_mode) == 0o600
    assert load_settings({"HANDOFF_SECRET_KEY": "given"}).signing_key() == "given"


def test_every_setting_has_an_environment_name() -> None:
    assert "HANDOFF_REDIS_URL" in field_names() and "HANDOFF_SECRET_KEY" in field_names()


def test_secrets_are_read_from_their_files(tmp_path: Path) -> None:
    key, password = tmp_path / "secret_key", tmp_path / "db_password"
    key.write_text("k" * 48 + "\n")
    password.write_text("p@ss:/word")
    settings = load_settings(
        {
            "HANDOFF_SECRET_KEY_FILE": str(key),
            "HANDOFF_REFERRALS_DB_URL": "postgresql://handoff_referrals@db:5432/referrals",
            "HANDOFF_REFERRALS_DB_PASSWORD_FILE": str(password),
        }
    )
    assert settings.signing_key() == "k" * 48, "the file's trailing newline is not part of the key"
    assert settings.referrals_db_password == "p@ss:/word"
    url = make_url(settings.db_url("referrals"))
    assert (url.username, url.password, url.host, url.database) == (
        "handoff_referrals",
        "p@ss:/word",
        "db",
        "referrals",
    )


def test_a_password_in_the_url_wins_over_the_separate_one() -> None:
    settings = load_settings(
        {"HANDOFF_DIRECTORY_DB_URL": "postgresql://u:inline@h/d", "HANDOFF_DIRECTORY_DB_PASSWORD": "apart"}
    )
    assert make_url(settings.db_url("directory")).password == "inline"


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"HANDOFF_SMTP_PASSWORD_FILE": "/nonexistent/smtp_password"}, "HANDOFF_SMTP_PASSWORD_FILE"),
        ({"HANDOFF_SECRET_KEY_FILE": "/etc/hostname", "HANDOFF_SECRET_KEY": "x"}, "HANDOFF_SECRET_KEY_FILE"),
        ({"HANDOFF_REDIS_URL_FILE": "/etc/hostname"}, "HANDOFF_REDIS_URL_FILE"),
        ({"HANDOFF_DB_POOL_SIZE": "0"}, "HANDOFF_DB_POOL_SIZE"),
        ({"HANDOFF_DB_MAX_OVERFLOW": "-1"}, "HANDOFF_DB_MAX_OVERFLOW"),
    ],
)
def test_bad_secret_files_and_pools_name_the_variable(environ: dict, named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        load_settings(environ)


def test_file_variables_are_the_secrets() -> None:
    assert file_variables() == [
        "HANDOFF_SECRET_KEY_FILE",
        "HANDOFF_SECRET_KEYS_FILE",
        "HANDOFF_SMTP_PASSWORD_FILE",
        "HANDOFF_DIRECTORY_DB_PASSWORD_FILE",
        "HANDOFF_REFERRALS_DB_PASSWORD_FILE",
    ]


def test_urgent_offers_are_parallel_and_timed_in_hours() -> None:
    settings = load_settings({})
    assert (settings.urgent_parallel_offers, settings.offer_hours_urgent) == (3, 4.0)
    given = load_settings({"HANDOFF_URGENT_PARALLEL_OFFERS": "2", "HANDOFF_OFFER_HOURS_URGENT": "1.5"})
    assert (given.urgent_parallel_offers, given.offer_hours_urgent) == (2, 1.5)


def test_the_replaced_urgent_deadline_in_days_stops_the_process_naming_its_successor() -> None:
    with pytest.raises(ConfigError, match="HANDOFF_OFFER_DAYS_URGENT was replaced by HANDOFF_OFFER_HOURS_URGENT"):
        load_settings({"HANDOFF_OFFER_DAYS_URGENT": "1"})
