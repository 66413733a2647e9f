"""The `shouwang` command: run, demo, simulate."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from shouwang.logs import setup_logging

if TYPE_CHECKING:  # the CLI imports the heavy modules only in the command that needs them
    from shouwang.domain import Registry
    from shouwang.settings import Settings

log = logging.getLogger("shouwang")


def _serve_api(app, host: str, port: int) -> tuple[object, threading.Thread]:
    """Run uvicorn on a thread; return the server (to stop it) and the thread."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="off"))
    server.install_signal_handlers = lambda: None  # the CLI owns signals
    thread = threading.Thread(target=server.run, name="api", daemon=True)
    thread.start()
    return server, thread


def _wait_for_signal(stop: threading.Event) -> None:
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    while not stop.wait(0.5):
        pass


def cmd_run(args: argparse.Namespace) -> int:
    """Run the service until SIGINT/SIGTERM: ``--role all`` (default), ``ingest`` (ingest, detectors, alerts and
    the probes) or ``api`` (the HTTP API, its live state followed from the store)."""
    from api.app import create_app
    from api.routes.health import probe_app
    from ingest.broker import ensure_broker
    from shouwang.clock import ScaledClock, SystemClock
    from shouwang.metrics import registry_for
    from shouwang.registry import load_registry
    from shouwang.service import Service, StateFollower
    from shouwang.settings import Settings, insecure_settings
    from storage import open_store
    from storage.migrations import SchemaOutOfDate

    settings = Settings()
    setup_logging(settings.log_level, settings.log_format)
    role = args.role
    problems = insecure_settings(settings, broker=role != "api")
    if problems and not settings.demo_mode:
        for line in problems:
            log.error("refusing to start: %s", line)
        log.error("(or set SHOUWANG_DEMO_MODE=true on a machine nobody else can reach)")
        return 2
    if problems:
        log.warning("demo mode: running with dev-only settings (%d would be refused in production)", len(problems))
    if settings.shard_count > 1 and role == "all":
        log.error("refusing to start: with SHOUWANG_SHARD_COUNT=%d run each shard as `shouwang run --role ingest` "
                  "and the pages as `--role api` (one shard's state would show only its communities)",
                  settings.shard_count)
        return 2
    if settings.registry_file is None:
        log.error("no registry: set SHOUWANG_REGISTRY_FILE to your communities' YAML file (see README)")
        return 2
    registry = load_registry(settings.registry_file)
    if role != "api" and (missing := channel_secret_problems(settings, registry)):
        for line in missing:
            log.error("refusing to start: %s", line)
        log.error("put each secret in SHOUWANG_CHANNEL_SECRETS, a JSON object such as {\"WECOM_GRID1\": \"…\"} "
                  "(docs/deploy.md, \"Channel secrets\")")
        return 2
    clock = (ScaledClock(settings.clock_start, settings.clock_speed) if settings.clock_start is not None
             else SystemClock())
    try:
        store = open_store(settings.database_url)
    except SchemaOutOfDate as exc:
        log.error("refusing to start: %s", exc)
        return 2
    broker = None
    secret = settings.secret_key.get_secret_value()
    web = {"session_ttl_s": int(settings.session_days * 86400), "secure_cookies": settings.secure_cookies}
    if role == "api":
        worker: Service | StateFollower = StateFollower(settings, store, registry, clock)
        worker.start()
        app = create_app(store, worker.state, clock, health=worker.health, secret=secret, **web)
    else:
        broker = ensure_broker(settings.mqtt_host, settings.mqtt_port, settings.mqtt_embedded_fallback)
        worker = Service(settings, store, registry, clock)
        worker.start()
        if role == "ingest":
            app = probe_app(store, health=worker.health, liveness=worker.liveness,
                            metrics_registry=registry_for(worker))
        else:
            app = create_app(store, worker.state, clock, health=worker.health, secret=secret,
                             metrics_registry=registry_for(worker), **web)
    app.state.liveness = worker.liveness
    server, api_thread = _serve_api(app, settings.api_host, settings.api_port)
    log.info("Shouwang running (role %s): %d households, HTTP on http://%s:%s", role, len(registry.households),
             settings.api_host, settings.api_port)
    stop = threading.Event()
    _wait_for_signal(stop)
    log.info("shutting down")
    server.should_exit = True
    worker.stop()
    api_thread.join(5)
    store.close()
    if broker:
        broker.stop()
    return 0


def channel_secret_problems(settings: Settings, registry: Registry) -> list[str]:
    """References in the registry's channel URLs and SHOUWANG_WEBHOOK_URLS that this process cannot fill in."""
    from alerts.channels.secrets import unresolved

    urls = [(f"person {p.id}, channel {i}", url) for p in registry.people for i, url in enumerate(p.channels, 1)]
    urls += [(f"SHOUWANG_WEBHOOK_URLS, URL {i}", url) for i, url in enumerate(settings.webhook_urls, 1)]
    return unresolved(urls, settings.channel_secrets)


def cmd_demo(args: argparse.Namespace) -> int:
    """A simulated community end to end on an accelerated clock."""
    from shouwang.demo import run_demo

    return run_demo(args)


def cmd_simulate(args: argparse.Namespace) -> int:
    """Publish simulated meter readings to a broker."""
    from simulators.cli import run

    setup_logging("INFO")
    return run(args)


def cmd_gateway_add(args: argparse.Namespace) -> int:
    """Provision a gateway: broker credentials, ACL entry and registry entry, in one step."""
    from ingest.provision import add_gateway

    try:
        creds = add_gateway(args.community, args.gateway, passwd_file=args.passwd_file, acl_file=args.acl_file,
                            registry_file=args.registry, prefix=args.prefix)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"gateway {args.gateway} of {args.community}: username {creds.username}")
    print(f"password (shown once, give it to the installer): {creds.password}")
    print(f"topics: {args.prefix}/{args.community}/{args.gateway}/readings and .../status; "
          "reload Mosquitto (kill -HUP) to apply")
    return 0


def cmd_service_password(args: argparse.Namespace) -> int:
    """Set the service account's broker password (read-only on every topic)."""
    from ingest.provision import SERVICE_USER, set_password

    creds = set_password(args.passwd_file, SERVICE_USER)
    print(f"SHOUWANG_MQTT_USERNAME={creds.username}\nSHOUWANG_MQTT_PASSWORD={creds.password}")
    return 0


def cmd_db(args: argparse.Namespace) -> int:
    """Schema migrations: upgrade, current, revision (storage/migrations)."""
    from shouwang.settings import Settings
    from storage import migrations
    from storage.sql import make_engine

    setup_logging("INFO")
    if args.db_command == "revision":
        print(f"new revision: {migrations.new_revision(args.message)}  (read it, then commit it)")
        return 0
    engine = make_engine(args.url or Settings().database_url)
    try:
        if args.db_command == "upgrade":
            done = migrations.upgrade(engine, args.revision)
            print(f"{engine.url.render_as_string(hide_password=True)}: {done.before or 'empty'} -> {done.after}")
        else:
            with engine.connect() as conn:
                current = migrations.current_revision(conn)
            head = migrations.head_revision()
            print(f"current {current or 'none'}, newest {head}" + ("" if current == head else " (behind)"))
            return 0 if current == head else 1
    finally:
        engine.dispose()
    return 0


def cmd_env_example(args: argparse.Namespace) -> int:
    """Print .env.example: compose secrets and every setting with its default."""
    from shouwang.settings import env_example

    sys.stdout.write(env_example())
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="shouwang", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("run", help="run the service (settings from SHOUWANG_* variables / SHOUWANG_CONFIG file)")
    p.add_argument("--role", choices=("all", "ingest", "api"), default="all",
                   help="all: everything in one process; ingest: ingest + detectors + alerts (+ probes and "
                   "/metrics on the API port); api: the HTTP API only")
    p.set_defaults(func=cmd_run)
    p = sub.add_parser("demo", help="a simulated community with scripted incidents, alerts printed as they open")
    p.add_argument("--households", type=int, default=60)
    p.add_argument("--speed", type=float, default=1440.0, help="simulated seconds per wall second (1440 = a day a minute)")
    p.add_argument("--days", type=float, default=0, help="stop after this many simulated days (0 = run until Ctrl-C)")
    p.add_argument("--scenario", type=Path, default=None, help="incident script (default: the shipped demo.yaml)")
    p.add_argument("--port", type=int, default=8000, help="API port")
    p.add_argument("--mqtt-port", type=int, default=1883)
    p.add_argument("--prefix", default="shouwang/v1", help="MQTT topic prefix (vary it to run demos side by side)")
    p.add_argument("--workdir", type=Path, default=Path("var/demo"))
    p.set_defaults(func=cmd_demo)
    p = sub.add_parser("replay", help="run detectors over recorded readings in event time (CSV → alerts JSONL)")
    from simulators import replay_cli

    replay_cli.add_arguments(p)
    p.set_defaults(func=replay_cli.run)
    gw = sub.add_parser("gateway", help="provision gateways on a locked-down Mosquitto")
    gsub = gw.add_subparsers(dest="gateway_command", required=True)
    for name, func, helptext in (("add", cmd_gateway_add, "credentials + ACL + registry entry for a gateway"),
                                 ("service-password", cmd_service_password, "the service account's password")):
        g = gsub.add_parser(name, help=helptext)
        if name == "add":
            g.add_argument("community")
            g.add_argument("gateway")
            g.add_argument("--registry", type=Path, help="registry file to add the gateway to")
            g.add_argument("--acl-file", type=Path, default=Path("deploy/mosquitto/acl"))
            g.add_argument("--prefix", default="shouwang/v1")
        g.add_argument("--passwd-file", type=Path, default=Path("deploy/mosquitto/passwd"))
        g.set_defaults(func=func)
    db = sub.add_parser("db", help="database schema migrations (Alembic; see docs/deploy.md)")
    dsub = db.add_subparsers(dest="db_command", required=True)
    for name, helptext in (("upgrade", "bring the database (SHOUWANG_DATABASE_URL) to the newest schema"),
                           ("current", "print the database's revision; exit 1 when it is behind"),
                           ("revision", "autogenerate a revision from changes to storage/schema.py")):
        d = dsub.add_parser(name, help=helptext)
        if name == "revision":
            d.add_argument("-m", "--message", required=True, help="what the change is, e.g. 'add users'")
        else:
            d.add_argument("--url", help="database URL (default: SHOUWANG_DATABASE_URL)")
        if name == "upgrade":
            d.add_argument("--revision", default="head")
        d.set_defaults(func=cmd_db)
    from shouwang.cli_accounts import add_user_commands

    add_user_commands(sub)
    st = sub.add_parser("settings", help="the settings reference")
    ssub = st.add_subparsers(dest="settings_command", required=True)
    ssub.add_parser("env-example", help="print .env.example (every setting, documented)").set_defaults(
        func=cmd_env_example)
    p = sub.add_parser("simulate", help="publish simulated readings for N households over MQTT")
    from simulators.cli import add_arguments

    add_arguments(p)
    p.set_defaults(func=cmd_simulate)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
