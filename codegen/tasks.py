from celery import shared_task

from codegen.backends.pipeline import backend_run_execute
from codegen.services import codegen_run_execute


@shared_task(name="codegen.run")
def codegen_run_task(run_id: int) -> None:
    codegen_run_execute(run_id=run_id)


@shared_task(name="codegen.backend_run")
def backend_run_task(run_id: int) -> None:
    backend_run_execute(run_id=run_id)
