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


class BackendStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    PLANNING = "planning", "Planning"
    GENERATING = "generating", "Generating"
    VALIDATING = "validating", "Validating"
    REPAIRING = "repairing", "Repairing"
    FINISHED = "finished", "Finished"
    FAILED = "failed", "Failed"


class BackendRun(models.Model):
    """A backend-generator run: requirements in, a FastAPI project out, validated round by round.

    `rounds` keeps every round (its files, validation and score); `best_round` points at the one kept,
    which is not necessarily the last."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="backend_runs")
    requirements = models.TextField()
    model = models.ForeignKey(AIModel, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    max_rounds = models.PositiveSmallIntegerField(default=3)
    status = models.CharField(max_length=16, choices=BackendStatus.choices, default=BackendStatus.QUEUED)
    plan = models.JSONField(null=True, blank=True)
    rounds = models.JSONField(default=list, blank=True)
    best_round = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    answered_by = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"Backend run {self.pk} ({self.status})"
