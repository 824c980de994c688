import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    try:
        return int(value) if value.strip() else default
    except ValueError:
        raise CommandError(f"{name} must be a whole number, not {value!r}") from None


class Command(BaseCommand):
    help = (
        "Run the ASGI web server (uvicorn: --web-workers processes on one socket) and --workers Celery worker "
        "processes together; Ctrl-C or SIGTERM stops them all, and so does any one of them ending."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=_env_int("PORT", 8000))
        parser.add_argument(
            "--web-workers",
            type=int,
            default=_env_int("WEB_WORKERS", 1),
            help="web server processes sharing the port (0: none, a worker-only machine)",
        )
        parser.add_argument(
            "--workers",
            type=int,
            default=_env_int("WORKERS", 1),
            help="Celery worker processes, named worker1@host, worker2@host... (0: none, a web-only machine)",
        )
        parser.add_argument(
            "--worker-concurrency",
            type=int,
            default=_env_int("WORKER_CONCURRENCY", 4),
            help="threads per Celery worker process",
        )

    def handle(
        self,
        *args: object,
        host: str,
        port: int,
        web_workers: int,
        workers: int,
        worker_concurrency: int,
        **options: object,
    ) -> None:
        if web_workers < 0 or workers < 0 or worker_concurrency < 1:
            raise CommandError("--web-workers and --workers must be 0 or more, --worker-concurrency 1 or more")
        if web_workers == 0 and workers == 0:
            raise CommandError("nothing to run: --web-workers and --workers are both 0")
        if web_workers > 1 and not settings.REDIS_URL:
            self.stderr.write(
                "Several web processes without REDIS_URL: each keeps its own cache, so rate limits and the model "
                "status cache are counted per process. Set REDIS_URL (README: Run it on a server)."
            )
        python = sys.executable
        commands: dict[str, list[str]] = {}
        if web_workers:
            # core.webserver, not `uvicorn --workers`: its socket keeps TCP_NODELAY on every connection.
            commands["web"] = [
                python,
                *("-m", "core.webserver", "--host", host, "--port", str(port), "--workers", str(web_workers)),
            ]
        for k in range(1, workers + 1):
            # Threads, not processes: a load is a long wait on LM Studio, not CPU work. A stable node name per
            # process lets a restarted worker end the load claims its earlier life left behind.
            commands[f"worker{k}"] = [
                python,
                *("-m", "celery", "-A", "orchestrator", "worker", "-n", f"worker{k}@%h"),
                *("--pool", "threads", "--concurrency", str(worker_concurrency), "--loglevel", "INFO"),
            ]
        # Every process writes its metrics here, so /metrics shows the workers' numbers (loads) as well.
        metrics_dir = Path(settings.VAR_DIR) / "prometheus"
        shutil.rmtree(metrics_dir, ignore_errors=True)
        metrics_dir.mkdir(parents=True)
        env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}

        stopping = False

        def stop(signum: int, frame: object) -> None:
            nonlocal stopping
            stopping = True

        # Before the children start, so a signal that comes while they do still stops them all.
        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        children = {name: subprocess.Popen(cmd, env=env) for name, cmd in commands.items()}
        where = f"on http://{host}:{port}/ with {web_workers} web process(es)" if web_workers else "no web server"
        self.stdout.write(f"Serving {where} and {workers} worker process(es); Ctrl-C stops them all.")

        exit_code = 0
        while not stopping:
            ended = {name: p.returncode for name, p in children.items() if p.poll() is not None}
            if ended:
                self.stderr.write(f"Stopped because a process ended: {ended}")
                exit_code = 1
                break
            time.sleep(0.5)
        for child in children.values():
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        for child in children.values():
            try:
                child.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        sys.exit(exit_code)
