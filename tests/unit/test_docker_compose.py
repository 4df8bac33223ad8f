"""docker-compose.yaml (the production stack) holds together without a container engine: it parses,
has every component of an Airflow 3 Celery deployment, and everything it names in the repository
(build context, Dockerfile and what it copies, bind mounts, scripts and modules its commands run)
exists; its Airflow commands are accepted by the installed Airflow's own CLI parser."""
from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import yaml

from ioc_pipeline.declaration import catalog

REPO = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((REPO / "docker-compose.yaml").read_text())
SERVICES = COMPOSE["services"]
VAR = re.compile(r"\$\{(\w+)(?:(:?[-?])([^}]*))?\}")


def env_example() -> dict[str, str]:
    values = {}
    for line in (REPO / ".env.example").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip()
    return values


def interpolate(text: str, values: dict[str, str]) -> str:
    """Compose's ${VAR}, ${VAR:-default}, ${VAR:?error} and $$, with the given values."""
    def value(m: re.Match) -> str:
        name, op, arg = m.groups()
        if op and op.endswith("-") and not values.get(name):
            return arg
        return values.get(name, "")

    return VAR.sub(value, text.replace("$$", "\0")).replace("\0", "$")


def command(service: dict) -> list[str]:
    """The service's command; of a `bash -c "A && B"`, A (an init step followed by another)."""
    cmd = service.get("command", [])
    cmd = shlex.split(cmd) if isinstance(cmd, str) else list(cmd)
    if cmd[:2] == ["bash", "-c"] and "&&" in cmd[2] and "simulator" not in cmd[2]:
        return shlex.split(cmd[2].split("&&")[0])
    return cmd


def airflow_services() -> dict[str, dict]:
    """Services running Airflow itself (the airflow CLI as command or entrypoint)."""
    return {name: s for name, s in SERVICES.items()
            if command(s)[:1] == ["airflow"] or s.get("entrypoint") == ["airflow"]}


def role(service: dict) -> str:
    cmd = command(service)
    if service.get("entrypoint") == ["airflow"]:
        cmd = ["airflow", *cmd]
    return " ".join(cmd[1:3] if cmd[1:2] == ["celery"] else cmd[1:2])


def test_every_component_of_a_celery_deployment():
    roles = {role(s): name for name, s in airflow_services().items()}
    # the init step also makes the REST sources' pools, without which their tasks never run
    assert "ioc_pipeline.orchestration.pools" in " ".join(SERVICES[roles["db"]]["command"])
    for component in ("api-server", "scheduler", "dag-processor", "triggerer", "celery worker", "db"):
        assert component in roles, f"no Airflow service runs `airflow {component}`"
        assert not SERVICES[roles[component]].get("profiles"), f"{component} must start by default"
    images = {name: s.get("image", "") for name, s in SERVICES.items()}
    assert images["redis"].startswith("redis:") and images["postgres"].startswith("postgres:")
    assert images["warehouse"].startswith("postgres:"), "the warehouse is a PostgreSQL of its own"
    assert SERVICES["warehouse"]["volumes"] != SERVICES["postgres"]["volumes"]
    assert SERVICES["simulator"]["profiles"] == ["simulator"]
    assert SERVICES["sector-db"]["profiles"] == ["simulator"]


def test_airflow_services_share_executor_jwt_secret_and_databases():
    services = airflow_services()
    envs = {name: s["environment"] for name, s in services.items()}
    assert len(services) >= 6
    for name, env in envs.items():
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor", name
    for key in ("AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW__API__SECRET_KEY", "AIRFLOW__CORE__FERNET_KEY",
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "AIRFLOW__CELERY__BROKER_URL",
                "AIRFLOW__CELERY__RESULT_BACKEND", "AIRFLOW__CORE__EXECUTION_API_SERVER_URL"):
        assert len({env[key] for env in envs.values()}) == 1, f"{key} differs between Airflow services"
    jwt = next(iter(envs.values()))["AIRFLOW__API_AUTH__JWT_SECRET"]
    assert VAR.fullmatch(jwt) and ":?" in jwt, "the JWT secret comes from .env and is required"
    exec_api = next(iter(envs.values()))["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"]
    api = next(n for n, s in services.items() if role(s) == "api-server")
    assert exec_api == f"http://{api}:8080/execution/"
    assert "${AIRFLOW_API_PORT:-8080}:8080" in SERVICES[api]["ports"]   # host port from .env


def test_secrets_come_from_env_file_and_none_is_committed():
    values = env_example()
    text = (REPO / "docker-compose.yaml").read_text()
    required = {m.group(1) for m in VAR.finditer(text) if m.group(2) == ":?"}
    missing = required - values.keys()
    assert not missing, f"required by docker-compose.yaml but not explained in .env.example: {missing}"
    for name in ("AIRFLOW_DB_PASSWORD", "AIRFLOW_FERNET_KEY", "AIRFLOW_JWT_SECRET", "AIRFLOW_API_SECRET_KEY",
                 "IOC_PII_KEY", "WAREHOUSE_PASSWORD", "WAREHOUSE_OWNER_PASSWORD", "WAREHOUSE_AIRFLOW_PASSWORD",
                 "SIM_TOKEN", "SECTOR_DB_PASSWORD"):
        assert name in required, f"{name} must be required (${{{name}:?...}})"
        assert values[name] == "", f".env.example must not carry a value for the secret {name}"
    assert ".env" in (REPO / ".gitignore").read_text().split()
    assert ".env" in (REPO / ".dockerignore").read_text().split()


def test_connections_point_at_the_stack_services():
    values = {**env_example(), **{k: f"x-{k.lower()}" for k, v in env_example().items() if not v}}
    env = next(iter(airflow_services().values()))["environment"]
    conns = {k.removeprefix("AIRFLOW_CONN_").lower(): json.loads(interpolate(v, values))
             for k, v in env.items() if k.startswith("AIRFLOW_CONN_")}
    needed = {s.connection for s in catalog.load().values()} | {"ioc_warehouse"}
    assert needed <= conns.keys(), f"connections without a value in the stack: {needed - conns.keys()}"
    assert conns["ioc_warehouse"]["host"] == "warehouse"
    assert conns["ioc_warehouse"]["password"] == values["WAREHOUSE_AIRFLOW_PASSWORD"]
    serve = interpolate(" ".join(command(SERVICES["simulator"])), values)
    sim_port = int(re.search(r"simulator serve .*--port (\d+)", serve).group(1))
    for conn_id, conn in conns.items():
        assert conn["host"] if conn["conn_type"] != "fs" else conn["extra"]["path"], conn_id
        if conn["conn_type"] == "http":
            assert (conn["host"], conn["port"]) == ("simulator", sim_port), conn_id
            assert conn["password"] == values["SIM_TOKEN"]
        if conn_id.startswith("sector_") and conn["conn_type"] == "postgres":
            assert conn["host"] == "sector-db" and conn["schema"] == SERVICES["sector-db"]["environment"]["POSTGRES_DB"]
        if conn["conn_type"] == "fs":
            mounts = [v.split(":")[1] for v in SERVICES["airflow-worker"]["volumes"]]
            assert conn["extra"]["path"] in mounts, "the landing folder is a volume of the workers"
    assert env["AIRFLOW_VAR_IOC_PII_KEY"] == "${IOC_PII_KEY:?set in .env}"
    assert "IOC_PROVINCE_CODE" in env


def test_builds_mounts_and_named_volumes_exist():
    declared = set(COMPOSE.get("volumes") or {})
    builds = 0
    for name, service in SERVICES.items():
        if "build" in service:
            builds += 1
            context = REPO / service["build"]["context"]
            assert context.is_dir(), name
            assert (context / service["build"].get("dockerfile", "Dockerfile")).is_file(), name
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith((".", "/")):
                assert (REPO / source).exists(), f"{name}: bind-mounted {source} is not in the repository"
            else:
                assert source in declared, f"{name}: volume {source} is not declared"
        for dep in service.get("depends_on", {}):
            assert dep in SERVICES, f"{name} depends on unknown service {dep}"
    assert builds >= 7


def test_dockerfile_installs_the_pinned_files_and_copies_what_exists():
    text = (REPO / "Dockerfile").read_text()
    lines = [ln.strip() for ln in text.splitlines()]
    # the base is a build argument whose default is the registry's Python image
    base = next(ln.split("=", 1)[1] for ln in lines if ln.startswith("ARG BASE_IMAGE="))
    assert base.startswith(("python:3.11", "apache/airflow:3.3.2-python3.11"))
    assert all(ln.split()[1] == "${BASE_IMAGE}" for ln in lines if ln.startswith("FROM "))
    assert "--require-hashes --no-deps -r /tmp/requirements.lock" in text
    copied = [src for ln in lines if ln.startswith("COPY ") and "--from=" not in ln for src in ln.split()[1:-1]]
    for src in copied:
        assert (REPO / src).exists(), f"Dockerfile copies {src}, which is not in the repository"
    for needed in ("dags/", "plugins/", "include/", "simulator/", "scripts/", "requirements.lock"):
        assert needed in copied
    ignored = (REPO / ".dockerignore").read_text().split()
    assert not any(src.rstrip("/") in ignored for src in copied), "the Dockerfile copies an ignored path"


def test_commands_name_scripts_and_modules_of_the_repository():
    for name, service in SERVICES.items():
        words = shlex.split(" ".join(command(service)).replace("&&", " "))
        for i, word in enumerate(words):
            if word == "-m" and i + 1 < len(words):
                module = words[i + 1].replace(".", "/")
                assert (REPO / module / "__main__.py").exists() or (REPO / f"{module}.py").exists(), (name, module)
            if word.endswith((".py", ".sh")):
                assert (REPO / word).exists(), (name, word)
    sim = " ".join(command(SERVICES["simulator"]))
    assert "-m simulator generate" in sim and "-m simulator serve" in sim
    assert sim.index("generate") < sim.index("serve")


def test_airflow_commands_are_accepted_by_the_installed_airflow(tmp_path):
    """Each Airflow service's arguments go through Airflow's CLI parser with the stack's executor
    (the `celery` commands exist only with the Celery provider and CeleryExecutor)."""
    argvs = []
    for service in airflow_services().values():
        cmd = command(service)
        argvs.append(cmd if service.get("entrypoint") != ["airflow"] else ["airflow", *cmd])
    code = ("import json, sys\nfrom airflow.cli import cli_parser\n"
            "for argv in json.loads(sys.argv[1]):\n    cli_parser.get_parser().parse_args(argv[1:])\n")
    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path), "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
           "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
    proc = subprocess.run([sys.executable, "-c", code, json.dumps(argvs)], env=env, capture_output=True, text=True,
                          timeout=180)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_debian_override_points_every_service_at_images_from_debian_packages():
    """docker-compose.debian.yaml (no registry): every image of the stack comes from
    docker/debian_images.sh or is built on its Python image without an index."""
    override = yaml.safe_load((REPO / "docker-compose.debian.yaml").read_text())["services"]
    script = (REPO / "docker" / "debian_images.sh").read_text()
    assert set(override) <= set(SERVICES)
    for name, service in SERVICES.items():
        assert name in override, f"{name} keeps its registry image under docker-compose.debian.yaml"
        if "build" in service:
            args = override[name]["build"]["args"]
            assert args == {"BASE_IMAGE": "ioc-debian/python:3.11", "PIP_INDEX": "--no-index"}, name
            assert override[name]["build"]["context"] == service["build"]["context"], name
        else:
            image = override[name]["image"]
            assert image.startswith("ioc-debian/"), name
            assert (REPO / "docker" / "debian" / f"{image.split('/')[1].split(':')[0]}.Dockerfile").is_file(), name
            assert image.removeprefix("ioc-debian/") in script, name   # the image the script builds
    assert "debootstrap" in script and "docker import" in script


def _conn(service: dict, conn_id: str, values: dict[str, str]) -> dict:
    return json.loads(interpolate(service["environment"][f"AIRFLOW_CONN_{conn_id.upper()}"], values))


def _init_sql() -> str:
    lines = (REPO / "docker" / "warehouse-roles.sh").read_text().splitlines()
    return "\n".join(ln for ln in lines if not ln.lstrip().startswith("#"))


def test_airflow_warehouse_login_is_not_a_superuser():
    """Airflow logs in to the warehouse as ioc_airflow (IN ROLE ioc_loader), made by the warehouse's
    init script without SUPERUSER, CREATEDB or CREATEROLE; the superuser (POSTGRES_USER) and the owner
    are no Airflow service's, nor their passwords."""
    values = {k: f"x-{k.lower()}" for k in env_example()}
    superuser = SERVICES["warehouse"]["environment"]["POSTGRES_USER"]
    mounts = [v for v in SERVICES["warehouse"]["volumes"] if "/docker-entrypoint-initdb.d/" in v]
    assert mounts and mounts[0].split(":")[0] == "./docker/warehouse-roles.sh", \
        "the warehouse makes its logins at first start (docker/warehouse-roles.sh in /docker-entrypoint-initdb.d)"
    create = {m.group(1): m.group(2) for m in re.finditer(r"CREATE ROLE (\w+)([^;]*);", _init_sql())}
    owner = _conn(SERVICES["warehouse-migrate"], "ioc_warehouse_owner", values)["login"]
    assert owner in create and "NOSUPERUSER" in create[owner], "the owner is a login of its own, not a superuser"
    assert owner != superuser
    for name, service in airflow_services().items():
        env = service["environment"]
        login = _conn(service, "ioc_warehouse", values)["login"]
        assert login not in (superuser, owner), f"{name}: Airflow's warehouse login is the superuser or the owner"
        assert login in create, f"{name}: {login} is not made by docker/warehouse-roles.sh"
        attrs = create[login].upper()
        assert "IN ROLE IOC_LOADER" in attrs and not re.search(r"(?<!NO)(SUPERUSER|CREATEDB|CREATEROLE)", attrs), attrs
        text = json.dumps(env)
        for secret in ("WAREHOUSE_PASSWORD:", "WAREHOUSE_OWNER_PASSWORD"):
            assert secret not in text, f"{name} holds {secret.rstrip(':')}"
        assert "AIRFLOW_CONN_IOC_WAREHOUSE_OWNER" not in env, f"{name} holds the owner's connection"
    assert "ioc_loader" in create and "LOGIN" not in create["ioc_loader"].replace("NOLOGIN", "")


def test_an_init_service_migrates_the_warehouse_before_the_dags_run():
    """warehouse-migrate (one-shot, the pipeline image) applies the migrations as the owner once the
    warehouse is up; every Airflow service, and the IOC page's login maker, waits for its success."""
    values = {k: f"x-{k.lower()}" for k in env_example()}
    migrate = SERVICES["warehouse-migrate"]
    assert command(migrate) == ["python", "scripts/pipeline.py", "migrate"]
    assert migrate["image"] == SERVICES["airflow-worker"]["image"] and "build" in migrate
    assert migrate.get("restart") == "no" and not migrate.get("profiles")
    assert migrate["depends_on"] == {"warehouse": {"condition": "service_healthy"}}
    owner = _conn(migrate, "ioc_warehouse_owner", values)
    assert (owner["host"], owner["schema"]) == ("warehouse", SERVICES["warehouse"]["environment"]["POSTGRES_DB"])
    assert owner["password"] == values["WAREHOUSE_OWNER_PASSWORD"]
    assert "AIRFLOW_CONN_IOC_WAREHOUSE" not in migrate["environment"], "migrate logs in as the owner only"
    for name, service in {**airflow_services(), "ioc-web-login": SERVICES["ioc-web-login"]}.items():
        assert service["depends_on"].get("warehouse-migrate") == {"condition": "service_completed_successfully"}, \
            f"{name} does not wait for warehouse-migrate to complete"
    assert _conn(SERVICES["ioc-web-login"], "ioc_warehouse_owner", values)["login"] == owner["login"]
