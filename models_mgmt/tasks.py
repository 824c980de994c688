import logging
import os
import time
from typing import Any

from celery import Task, shared_task

from models_mgmt.services import model_load_claims_recover, model_load_run

# This worker process's life: with the node name it tells a claim this life holds from one an earlier
# life (killed, restarted) left behind. Set at import, before a prefork pool forks, so children share it.
WORKER_LIFE = f"{os.getpid()}-{time.time_ns()}"

logger = logging.getLogger(__name__)


def worker_name(hostname: str | None) -> str:
    return f"{hostname or 'eager'}#{WORKER_LIFE}"


# acks_late + reject_on_worker_lost: a message is acknowledged when the load ends, so a worker killed in
# the middle gives it back to the broker where Celery can; the service makes a second run harmless.
@shared_task(name="models_mgmt.load_model", bind=True, acks_late=True, reject_on_worker_lost=True)
def model_load_task(self: Task, model_id: int, options: dict | None = None) -> None:
    model_load_run(
        model_id=model_id, task_id=self.request.id, worker=worker_name(self.request.hostname), options=options
    )


def on_worker_ready(sender: Any, **kwargs: Any) -> None:
    """Celery's worker_ready: end the load claims whose task died with an earlier life of this worker."""
    ended = model_load_claims_recover(worker=worker_name(sender.hostname))
    if ended:
        logger.warning("Ended %d load claim(s) whose task stopped with its worker", ended)
