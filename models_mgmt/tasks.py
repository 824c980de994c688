from celery import shared_task

from models_mgmt.services import model_load_run


@shared_task(name="models_mgmt.load_model")
def model_load_task(model_id: int, options: dict | None = None) -> None:
    model_load_run(model_id=model_id, options=options)
