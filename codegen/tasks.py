from celery import shared_task

from codegen.backends.services import BACKEND_TASK, backend_run_execute
from codegen.services import codegen_run_execute


@shared_task(name="codegen.run")
def codegen_run_task(run_id: int) -> None:
    codegen_run_execute(run_id=run_id)


@shared_task(name=BACKEND_TASK)
def backend_run_task(run_id: int) -> None:
    backend_run_execute(run_id=run_id)
