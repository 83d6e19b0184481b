"""deploy/Caddyfile, the edge of compose.yaml: one public origin whose paths reach the service that
serves them, /metrics never served at the edge, and a configuration Caddy itself accepts in
every TLS mode compose offers. (tests/integration/test_replicas.py sends real traffic through it.)"""

from __future__ import annotations

import fnmatch
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.support.ci import skip_or_fail

ROOT = Path(__file__).resolve().parents[2]
CADDYFILE = ROOT / "deploy" / "Caddyfile"
# The probes and docs, and the shared stylesheet and favicon (shared.templating): every service
# serves them, the same files on each, so the edge may send them to either.
OPS_PATHS = ("/health", "/ready", "/metrics", "/schema", "/assets/", "/favicon.ico")


def matcher(name: str) -> list[str]:
    """The path patterns of the Caddyfile's named matcher ``@name path ...``."""
    found = re.search(rf"^\s*@{name} path (.+)$", CADDYFILE.read_text(), re.MULTILINE)
    assert found, f"no @{name} path matcher"
    return found.group(1).split()


def matches(patterns: list[str], path: str) -> bool:
    # Caddy's path matcher: exact, or * for any characters (slashes included), case-insensitive.
    return any(fnmatch.fnmatchcase(path.lower(), pattern.lower()) for pattern in patterns)


def served_paths(service: str) -> set[str]:
    """Every path the service's app routes, parameters filled in."""
    from shared.config import Settings

    if service == "directory":
        from services.directory.web.app import create_app
    else:
        from services.referrals.web.app import create_app
    app = create_app(Settings(secret_key="k" * 48))
    return {re.sub(r"\{[^}]+\}", "x1", route.path) for route in app.routes}


# Served by both; at the one origin it is the directory's (each service's own is on its port).
SHARED_PATHS = {"/fhir/r4/metadata"}


def test_each_path_reaches_the_service_that_serves_it() -> None:
    # handle blocks are tried in the order written: referrals' FHIR resources before the directory.
    to_directory = lambda path: matches(matcher("directory"), path) and not matches(matcher("referrals_fhir"), path)  # noqa: E731
    ops = lambda path: path.startswith(OPS_PATHS)  # noqa: E731
    mine = {path for path in served_paths("directory") if not ops(path)}
    theirs = {path for path in served_paths("referrals") if not ops(path) and path not in SHARED_PATHS}
    assert mine and theirs and any(path.startswith("/fhir/") for path in theirs)
    assert sorted(path for path in mine if not to_directory(path)) == []
    assert sorted(path for path in theirs if to_directory(path)) == [], "referrals paths sent to the directory"
    text = CADDYFILE.read_text()
    assert text.index("handle @referrals_fhir") < text.index("handle @directory")


def test_metrics_are_not_served_at_the_edge() -> None:
    text = CADDYFILE.read_text()
    assert matches(matcher("metrics"), "/metrics") and matches(matcher("metrics"), "/metrics/anything")
    # handle blocks are exclusive, tried in the order written: the refusal comes before any proxy.
    assert re.search(r"^\s*handle @metrics \{\s*respond 404\s*\}", text, re.MULTILINE)
    assert text.index("handle @metrics") < text.index("handle @directory") < text.index("\thandle {")


def test_compose_runs_this_caddyfile_with_dns_upstreams() -> None:
    proxy = yaml.safe_load((ROOT / "compose.yaml").read_text())["services"]["proxy"]
    assert "./deploy/Caddyfile:/etc/caddy/Caddyfile:ro" in proxy["volumes"]
    assert set(proxy["environment"]) == {"PUBLIC_HOST", "TLS"}, "UPSTREAMS stays dns in compose"
    text = CADDYFILE.read_text()
    for service, port in (("directory", 8001), ("referrals", 8002)):
        assert re.search(rf"dynamic a {service} {port} \{{\s*refresh \d+s", text), f"{service} replicas by DNS"


def test_the_web_replicas_trust_forwarded_headers_from_the_proxy_network_only() -> None:
    import ipaddress

    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    edge = ipaddress.ip_network(compose["networks"]["edge"]["ipam"]["config"][0]["subnet"])
    proxy = ipaddress.ip_address(compose["services"]["proxy"]["networks"]["edge"]["ipv4_address"])
    assert proxy in edge
    for name in ("directory", "referrals"):
        service = compose["services"][name]
        assert "edge" in service["networks"], f"{name} must be reachable by the proxy"
        trusted = [
            ipaddress.ip_network(part.strip()) for part in service["environment"]["HANDOFF_TRUSTED_PROXIES"].split(",")
        ]
        assert trusted == [edge], f"{name} trusts {trusted}, not the edge network {edge}"
    for name, service in compose["services"].items():
        if name not in ("proxy", "directory", "referrals"):
            assert "edge" not in service.get("networks", []), (
                f"{name} is on the edge network, whose addresses are trusted"
            )


@pytest.mark.parametrize(
    "environ",
    [
        {"PUBLIC_HOST": "handoff.example-clinic.com"},
        {"PUBLIC_HOST": "handoff.example-clinic.com", "TLS": "files"},
        {"PUBLIC_HOST": "localhost", "TLS": "internal"},
        {
            "PUBLIC_HOST": "http://127.0.0.1:8080",
            "UPSTREAMS": "static",
            "DIRECTORY_UPSTREAMS": "127.0.0.1:1",
            "REFERRALS_UPSTREAMS": "127.0.0.1:2 127.0.0.1:3",
        },
    ],
    ids=["acme", "files", "internal", "static"],
)
def test_caddy_accepts_the_caddyfile(environ: dict[str, str], tmp_path: Path) -> None:
    caddy = shutil.which("caddy")
    if caddy is None:
        skip_or_fail("caddy is not installed (Debian package `caddy`; .ci/run installs it)")
    if environ.get("TLS") == "files":  # validate loads the certificate: give it one to load
        certs = tmp_path / "certs"
        certs.mkdir()
        subprocess.run(
            [
                "openssl",
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "1",
                "-subj",
                "/CN=handoff.test",
                "-keyout",
                str(certs / "key.pem"),
                "-out",
                str(certs / "cert.pem"),
            ],
            check=True,
            capture_output=True,
        )
        config = tmp_path / "Caddyfile"
        config.write_text(CADDYFILE.read_text().replace("/etc/caddy/certs", str(certs)))
    else:
        config = CADDYFILE
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path), **environ}
    done = subprocess.run(
        [caddy, "validate", "--adapter", "caddyfile", "--config", str(config)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Valid configuration" in done.stdout + done.stderr
