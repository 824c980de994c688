from django.conf import settings
from django.db import models

from models_mgmt.models import AIModel


class RunStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    FINISHED = "finished", "Finished"
    FAILED = "failed", "Failed"


class CodegenRun(models.Model):
    """A test-generation run: an OpenAPI document in, a pytest module out (or the reason there is none)."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="codegen_runs")
    spec = models.TextField(help_text="The OpenAPI document as sent (JSON or YAML text); parsed when the run starts.")
    title = models.CharField(max_length=200, blank=True)
    options = models.JSONField(default=dict, blank=True)
    model = models.ForeignKey(AIModel, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    status = models.CharField(max_length=16, choices=RunStatus.choices, default=RunStatus.QUEUED)
    error = models.TextField(blank=True)
    plan = models.JSONField(default=list, blank=True)
    artifact = models.TextField(blank=True)
    validation = models.JSONField(default=dict, blank=True)
    answered_by = models.CharField(max_length=300, blank=True)
    trace_id = models.CharField(max_length=32, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"Run {self.pk} ({self.status})"
