import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser


class Command(BaseCommand):
    help = "Run the ASGI web server (uvicorn) and a Celery worker together; Ctrl-C stops both."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
        parser.add_argument("--web-workers", type=int, default=int(os.environ.get("WEB_WORKERS", "1")))
        parser.add_argument("--worker-concurrency", type=int, default=int(os.environ.get("WORKER_CONCURRENCY", "4")))

    def handle(
        self, *args: object, host: str, port: int, web_workers: int, worker_concurrency: int, **options: object
    ) -> None:
        python = sys.executable
        commands = {
            "web": [
                python,
                "-m",
                "uvicorn",
                "orchestrator.asgi:application",
                "--host",
                host,
                "--port",
                str(port),
                "--workers",
                str(web_workers),
                "--lifespan",
                "off",
            ],
            # Threads, not processes: a load is a long wait on LM Studio, not CPU work.
            "worker": [
                python,
                "-m",
                "celery",
                "-A",
                "orchestrator",
                "worker",
                "--pool",
                "threads",
                "--concurrency",
                str(worker_concurrency),
                "--loglevel",
                "INFO",
            ],
        }
        # Every process writes its metrics here, so /metrics shows the worker's numbers (loads) as well.
        metrics_dir = Path(settings.VAR_DIR) / "prometheus"
        shutil.rmtree(metrics_dir, ignore_errors=True)
        metrics_dir.mkdir(parents=True)
        env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
        children = {name: subprocess.Popen(cmd, env=env) for name, cmd in commands.items()}
        self.stdout.write(f"Serving on http://{host}:{port}/ with a worker; Ctrl-C stops both.")

        stopping = False

        def stop(signum: int, frame: object) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
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
        for child in children.values():
            try:
                child.wait(timeout=15)
            except subprocess.TimeoutExpired:
                child.kill()
        sys.exit(exit_code)
