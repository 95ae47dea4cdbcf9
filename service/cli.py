"""``emodrift serve|calibration|timelines export|version``: the command-line entry point.

``serve`` without ``EMODRIFT_REDIS_URL`` starts a private redis-server (AOF on, data in
``EMODRIFT_DATA_DIR``), waits for it, hands its URL to the workers, and stops it on exit.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import logging.config
import os
import shutil
import signal
import sys
import tempfile
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from service import access, logs
from service.config import Settings, get_settings, invalid_settings, unknown_variables


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from service.embedded_redis import EmbeddedRedis

    settings = get_settings()
    refusal, warnings = preflight(settings, args.host)
    refusal = refusal or models_refusal(settings)
    for warning in [*unknown_variables(), *warnings]:
        logging.getLogger("emodrift").warning(warning)
    if refusal:
        print(f"emodrift: {refusal}", file=sys.stderr)
        return 2
    embedded: EmbeddedRedis | None = None
    if not settings.redis_url:
        embedded = EmbeddedRedis(settings.data_dir, binary=settings.redis_server_bin).start()
        # the workers read their settings from the environment, like any other deployment
        os.environ["EMODRIFT_REDIS_URL"] = embedded.url
        # a dead embedded Redis never comes back by itself: the workers' /healthz watches it (docs/configuration.md)
        assert embedded.process is not None
        os.environ["EMODRIFT_EMBEDDED_REDIS_PID"] = str(embedded.process.pid)
        logging.getLogger("emodrift").warning("no EMODRIFT_REDIS_URL: embedded Redis at %s", embedded.url)
    metrics_dir = _share_among_workers(args.workers)
    get_settings.cache_clear()
    # After a graceful shutdown uvicorn re-raises the signal that asked for it; SIGTERM's default
    # action would then kill this process before `finally` could stop the embedded Redis.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    # access logs are off by default: request paths carry user ids
    config = dict(app="service.app:create_app", factory=True, host=args.host, port=args.port,
                  workers=args.workers, log_level=args.log_level, access_log=args.access_log,
                  # asyncio.wait_for's timeout (annotated int by uvicorn): fractions of a second hold
                  timeout_graceful_shutdown=settings.shutdown_timeout_seconds,
                  limit_concurrency=settings.limit_concurrency or None,  # off by default: docs/limits.md
                  # nothing reads the client's address (rate limits are per API key, logs carry no
                  # IPs), so X-Forwarded-* need not be parsed on every request
                  proxy_headers=False, log_config=logs.log_config(settings.log_format, args.log_level))
    try:
        if args.workers > 1:
            return _supervise(uvicorn.Config(**config))
        uvicorn.run(**config)  # exits 3 itself when the start fails
    except KeyboardInterrupt:  # that re-raised SIGINT / SIGTERM: the shutdown itself was clean
        pass
    finally:
        if embedded is not None:
            embedded.stop()
        if metrics_dir:
            shutil.rmtree(metrics_dir, ignore_errors=True)
    return 0


def _supervise(config: Any) -> int:
    """uvicorn's supervisor of several workers, as ``uvicorn.run`` starts it, with the exit status it
    drops: when a worker fails to start (a model missing, a provider absent), the supervisor stops and
    returns, and ``uvicorn.run`` exited 0, so a Deployment saw "Completed" and restart-on-failure never
    restarted it. Exit 3 then (uvicorn's STARTUP_FAILURE, as one worker exits)."""
    from uvicorn.config import STARTUP_FAILURE
    from uvicorn.supervisors import Multiprocess

    supervisor = Multiprocess(config, sockets=[config.bind_socket()])
    supervisor.run()
    return STARTUP_FAILURE if any(p.exitcode == STARTUP_FAILURE for p in supervisor.processes) else 0


def _share_among_workers(workers: int) -> str | None:
    """With several workers: each one's share of the cores for onnxruntime, and a directory where their
    metrics meet (returned, to be removed at exit, when this process made it)."""
    if workers <= 1:
        return None
    # Each worker's onnxruntime takes its share of the cores unless told otherwise (N workers each
    # with a core's worth of CNN threads oversubscribe the machine). Decode threads stay as they
    # are: the kernel need not spread connections evenly over workers, and a worker with most of
    # them needs more than its share (1 decode thread each was slower: docs/performance.md).
    os.environ.setdefault("EMODRIFT_INTRA_OP_THREADS", str(max(1, available_cpus() // workers)))
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        return None
    metrics_dir = tempfile.mkdtemp(prefix="emodrift-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    return metrics_dir


def preflight(settings: Settings, host: str) -> tuple[str | None, list[str]]:
    """Before serving on ``host``: why to refuse (None: serve), and what to warn about."""
    if _is_loopback(host):
        return None, []
    if not access.configured(settings) and not settings.allow_unauthenticated:
        keys = " / ".join(access.env_name(kind) for kind in access.KINDS)
        return (f"refusing to serve {host} without API keys: set {keys}, "
                "or EMODRIFT_ALLOW_UNAUTHENTICATED=true if something else guards it"), []
    warnings = []
    if "public_url" not in settings.model_fields_set:
        warnings.append(f"EMODRIFT_PUBLIC_URL is unset: links in alerts (timeline_url) will point at "
                        f"{settings.public_url}, which receivers cannot open; set it to the address clients use")
    return None, warnings


def models_refusal(settings: Settings) -> str | None:
    """Why these settings cannot serve their models (None: they can), read before any worker starts: a
    model version that is not there, or detector settings that do not fit the manifest's calibration,
    failed in every worker's start-up with a traceback (exit 3). The sessions themselves are the workers'."""
    from service import calibration, model_repository

    temporal = [settings.temporal_model_version]  # None: the latest
    if settings.shadow_temporal_model_version is not None:
        temporal.append(settings.shadow_temporal_model_version)
    try:
        model_repository.load(settings.model_repository, settings.emotion_model, settings.emotion_model_version)
        served: int | None = None
        for role, version in zip(("served", "shadow"), temporal):
            artifact = model_repository.load(settings.model_repository, settings.temporal_model, version)
            if role == "served":
                served = artifact.version
            elif artifact.version == served:  # unpinned, the served one is the highest: the new version itself
                return (f"the shadow {artifact.tag} is the served version: with EMODRIFT_TEMPORAL_MODEL_VERSION "
                        "unset the highest is served; pin the served one (EMODRIFT_TEMPORAL_MODEL_VERSION) "
                        "before exporting a new version (docs/shadow.md)")
            try:
                calibration.served_config(artifact.manifest, settings)
            except calibration.CalibrationMissing:
                if role == "shadow":  # the operator's EMODRIFT_DRIFT_* values would move the served thresholds too
                    return (f"the shadow {artifact.tag} has no detector calibration in its manifest: calibrate it "
                            f"with `python -m benchmarks.calibrate --write --version {artifact.version}` "
                            "(docs/adaptation.md)")
                raise
            except ValueError as error:
                return f"{artifact.tag}'s detector does not fit these settings: {error} (docs/settings.md)"
    except (model_repository.ArtifactError, OSError, ValueError) as error:
        return f"cannot load the models: {error}"
    return None


CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")


def available_cpus(cpu_max: Path = CGROUP_CPU_MAX) -> int:
    """Cores this process may use: its CPU affinity, capped by a cgroup v2 quota (a container's limit)."""
    cpus = len(os.sched_getaffinity(0))
    try:
        quota, period = cpu_max.read_text().split()
        if quota != "max":
            cpus = min(cpus, max(1, int(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return cpus


def _timelines_export(args: argparse.Namespace) -> int:
    """Every user's timeline, pseudonymised, to --out (service/timelines_export.py, docs/timelines.md)."""
    from service import timelines_export as tx

    settings = get_settings()
    if not settings.redis_url:
        print("emodrift: set EMODRIFT_REDIS_URL to the Redis the service keeps its state in", file=sys.stderr)
        return 2
    try:
        key = _pseudonym_key(args, settings)
    except (tx.ExportError, OSError) as error:
        print(f"emodrift: {error}", file=sys.stderr)
        return 2
    ctrl_c = _CtrlC()
    previous = signal.signal(signal.SIGINT, ctrl_c)
    try:
        return _run_export(args, settings, key, ctrl_c)
    finally:
        signal.signal(signal.SIGINT, previous)


def _run_export(args: argparse.Namespace, settings: Settings, key: bytes | None, ctrl_c: _CtrlC) -> int:
    """The export itself, its outcome one line and the exit status (2: it could not run, 130: interrupted)."""
    import asyncio

    import redis

    from service import timelines_export as tx
    from service.app import connect_redis
    from service.state_store import StateStore

    models = _served_models(settings)

    async def run() -> tx.Summary:
        redis = connect_redis(settings)
        store = StateStore(redis, outbox=settings.outbox_stream, outbox_maxlen=settings.outbox_maxlen,
                           timeline_length=settings.timeline_length, idempotency_ttl=settings.idempotency_ttl_seconds)
        try:
            return await tx.export(redis, store, args.out, tx.Pseudonymizer(key), timeline_length=settings.timeline_length,
                                   header_extra={"served_models": models}, checkpoint_path=args.checkpoint,
                                   scan_count=args.batch_keys or tx.SCAN_COUNT, after_batch=ctrl_c.at_checkpoint)
        finally:
            await redis.aclose()

    try:
        summary = asyncio.run(run())
    except tx.ExportError as error:
        print(f"emodrift: {error}", file=sys.stderr)
        return 2
    except redis.RedisError as error:
        print(f"emodrift: the Redis at EMODRIFT_REDIS_URL did not answer ({error}): check the URL and that "
              f"Redis is running, then rerun the same command", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"emodrift: cannot write {args.out}: {error.strerror or error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"\nemodrift: interrupted; the same command continues from {args.checkpoint or str(args.out) + '.checkpoint.json'}",
              file=sys.stderr)
        return 130
    print(f"{'continued' if summary.resumed else 'wrote'} {summary.out}: {summary.users} users, {summary.posts} posts")
    return 0


class _CtrlC:
    """Ctrl-C during an export: the first stops it at its next checkpoint (the batch in hand is written and
    vouched for), a second at once. ``asyncio.run``'s own handling cancels the running task instead, and
    on Python 3.11 that cancellation is lost when it lands in redis-py's write of a command (its
    ``asyncio.wait_for``, which then returns the finished write): the export ran on to its end
    (docs/timelines.md). The service's own loops guard their stops the same way (a flag, a bounded wait)."""

    def __init__(self) -> None:
        self.pressed = 0

    def __call__(self, signum: int, frame: object) -> None:
        self.pressed += 1
        if self.pressed > 1:
            raise KeyboardInterrupt

    def at_checkpoint(self, _checkpoint: object) -> None:
        if self.pressed:
            raise KeyboardInterrupt


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _port(text: str) -> int:
    value = _positive(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"a TCP port is at most 65535, got {value}")
    return value


def _pseudonym_key(args: argparse.Namespace, settings: Settings) -> bytes | None:
    """The export's pseudonym key: --key-file, else EMODRIFT_EXPORT_PSEUDONYM_KEY; None with --keep-ids."""
    from service import timelines_export as tx

    if args.keep_ids:
        return None
    if args.key_file is not None:
        return tx.read_key_file(args.key_file)
    if settings.export_pseudonym_key is not None:
        return settings.export_pseudonym_key.get_secret_value().encode()
    raise tx.ExportError("user ids are pseudonymised with a key: set EMODRIFT_EXPORT_PSEUDONYM_KEY or pass "
                         "--key-file (e.g. `head -c 32 /dev/urandom | base64 > pseudonym.key`), or "
                         "--keep-ids to export the real ids")


def _served_models(settings: Settings) -> dict[str, str]:
    """The emotion and temporal models the service serves (name -> tag), as the export's header names them."""
    from service import model_repository

    models = {}
    for name, version in ((settings.emotion_model, settings.emotion_model_version),
                          (settings.temporal_model, settings.temporal_model_version)):
        available = model_repository.versions(settings.model_repository, name)
        if available:
            models[name] = f"{name}:{version if version is not None else max(available)}"
    return models


def _version(_: argparse.Namespace) -> int:
    from importlib.metadata import version

    print(version("emodrift"))
    return 0


def _calibration(args: argparse.Namespace) -> int:
    """Export or import the live calibration of the served temporal model (EMODRIFT_REDIS_URL's Redis)."""
    import redis

    from service import calibration_file

    settings = get_settings()
    if not settings.redis_url:
        print("emodrift: set EMODRIFT_REDIS_URL to the service's Redis", file=sys.stderr)
        return 2
    client = redis.Redis.from_url(settings.redis_url)
    try:
        # every failure an operator can cause is one line saying what to do, never a traceback
        try:
            return _calibration_action(args, settings, client)
        except redis.RedisError as error:
            print(f"emodrift: the Redis at EMODRIFT_REDIS_URL did not answer ({error}): check the URL and "
                  "that Redis is running", file=sys.stderr)
        except calibration_file.CalibrationImportError as error:
            print(f"emodrift: {error}", file=sys.stderr)
        except OSError as error:
            print(f"emodrift: cannot {'write' if args.action == 'export' else 'read'} {args.file}: "
                  f"{error.strerror or error} (check the path, and that its directory exists)", file=sys.stderr)
        except ValueError as error:  # a file that is not text (UnicodeDecodeError)
            print(f"emodrift: {args.file} is not an `emodrift calibration export` file ({error})", file=sys.stderr)
        return 2
    finally:
        client.close()


def _calibration_action(args: argparse.Namespace, settings: Settings, client: Any) -> int:
    import json

    from service import calibration, calibration_file, model_repository

    model = args.model
    if model is None:  # the served model's, under its calibration and this environment's overrides
        artifact = model_repository.load(settings.model_repository, settings.temporal_model,
                                         settings.temporal_model_version)
        model = calibration.learned_under(artifact.tag, calibration.served_config(artifact.manifest, settings))
    if args.action == "export":
        # A name this Redis does not hold would export nothing and look like a calibration that has learned
        # nothing: a mistyped --model, or a default computed from a shell whose EMODRIFT_* settings (model
        # version, detector overrides) are not the service's; the runbook's backup must not be that.
        stored = calibration_file.stored_names(client)
        if model not in stored:
            why = ("" if args.model is not None else " (the served model's under this shell's EMODRIFT_* "
                   "settings; the service's may differ: pass --model)")
            print(f"emodrift: no live calibration named {model}{why} in this Redis; it holds "
                  f"{', '.join(stored) or 'none'} (the served one: GET /v1/model's live_calibration.name)",
                  file=sys.stderr)
            return 2
        text = json.dumps(calibration_file.export_state(client, model), indent=1)
        if args.file == "-":
            print(text)
        else:
            Path(args.file).write_text(text + "\n")
        return 0
    # validated whole before anything is written: a field of the wrong shape once stopped every replica's sync
    export = calibration_file.read_export(sys.stdin.read() if args.file == "-" else Path(args.file).read_text(), model)
    written = calibration_file.import_state(client, export)
    if export.scales is None:
        # nothing replaced the stored scales: say so, rather than claim scales that were not there
        print(f"imported {written} counters of {model}; the export holds no scales, so the scales stored "
              "before (if any) stay in force and the service solves new ones from the counts")
    else:
        print(f"imported {written} counters and the scales of {model}; set EMODRIFT_CALIBRATION_FROZEN=true "
              "to serve these scales as they are")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="emodrift", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the HTTP service (embedded Redis unless EMODRIFT_REDIS_URL is set)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=_port, default=8000)
    serve.add_argument("--workers", type=_positive, default=1, help="uvicorn worker processes")
    serve.add_argument("--log-level", default="info")
    serve.add_argument("--access-log", action=argparse.BooleanOptionalAction, default=False)
    serve.set_defaults(func=_serve)
    timelines = sub.add_parser("timelines", help="the users' timelines as data (export)")
    tsub = timelines.add_subparsers(dest="timelines_command", required=True)
    tex = tsub.add_parser(
        "export", help="write every user's derived per-post features (never images), pseudonymised, resumable",
        description="Streams every user's timeline from EMODRIFT_REDIS_URL to gzip-compressed JSON lines "
                    "(docs/timelines.md). Interrupted, it continues where it stopped when rerun with the same --out.")
    tex.add_argument("--out", type=Path, required=True, help="the file to write (e.g. timelines.jsonl.gz)")
    tex.add_argument("--key-file", type=Path, default=None,
                     help="the pseudonym key (default: EMODRIFT_EXPORT_PSEUDONYM_KEY)")
    tex.add_argument("--keep-ids", action="store_true", help="write the real user ids (no pseudonyms)")
    tex.add_argument("--checkpoint", type=Path, default=None, help="resume file (default: OUT.checkpoint.json)")
    tex.add_argument("--batch-keys", type=_positive, default=None, metavar="N",
                     help="Redis keys each SCAN examines: one batch, one gzip member, one checkpoint (default: "
                          "SCAN_COUNT in service/timelines_export.py); fewer hold less in memory and stop sooner "
                          "on Ctrl-C, more write fewer members")
    tex.set_defaults(func=_timelines_export)
    cal = sub.add_parser("calibration", help="export or import the live calibration (EMODRIFT_REDIS_URL's Redis)")
    model_help = "the calibration's name, GET /v1/model's live_calibration.name (default: the served one's)"
    cal.add_argument("--model", default=None, help=model_help)
    csub = cal.add_subparsers(dest="action", required=True)
    for action, file_help in (("export", "JSON file to write (default: stdout)"),
                              ("import", "JSON file to read (default: stdin)")):
        act = csub.add_parser(action, help=f"{action} the scales and counts as JSON (docs/live_calibration.md)")
        act.add_argument("file", nargs="?", default="-", help=file_help)
        # accepted after the action too; SUPPRESS keeps a --model given before it
        act.add_argument("--model", default=argparse.SUPPRESS, help=model_help)
        act.set_defaults(func=_calibration)
    ver = sub.add_parser("version", help="print the version")
    ver.set_defaults(func=_version)
    return parser


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = get_settings()
    except ValidationError as error:  # one line naming the variable, not pydantic's traceback naming the field
        print(f"emodrift: {invalid_settings(error)}", file=sys.stderr)
        return 2
    logging.config.dictConfig(logs.log_config(settings.log_format, getattr(args, "log_level", "info")))
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
