from django.conf import settings
from django.db import models


class ProviderKind(models.TextChoices):
    LMSTUDIO = "lmstudio", "LM Studio"
    OPENAI = "openai", "OpenAI"
    ANTHROPIC = "anthropic", "Anthropic"
    GOOGLE = "google", "Google Gemini"
    MISTRAL = "mistral", "Mistral"
    GENSPARK = "genspark", "Genspark"
    OPENAI_COMPATIBLE = "openai_compatible", "OpenAI-compatible"


LOCAL_KINDS = frozenset({ProviderKind.LMSTUDIO})

# Where a provider lives when its row leaves the base URL empty; read from the environment by settings.
DEFAULT_BASE_URL_SETTING = {
    ProviderKind.LMSTUDIO: "LMSTUDIO_BASE_URL",
    ProviderKind.OPENAI: "OPENAI_BASE_URL",
    ProviderKind.ANTHROPIC: "ANTHROPIC_BASE_URL",
    ProviderKind.GOOGLE: "GEMINI_BASE_URL",
    ProviderKind.MISTRAL: "MISTRAL_BASE_URL",
    ProviderKind.GENSPARK: "GENSPARK_BASE_URL",
}


class Provider(models.Model):
    kind = models.CharField(max_length=32, choices=ProviderKind.choices)
    name = models.SlugField(
        max_length=64, unique=True, help_text="First part of a model's public reference: <name>/<model id>."
    )
    base_url = models.URLField(blank=True, help_text="Empty: the default from the environment.")
    enabled = models.BooleanField(default=True)
    priority = models.IntegerField(default=0, help_text="Higher is preferred.")

    class Meta:
        ordering = ["-priority", "name"]

    def __str__(self) -> str:
        return self.name

    @property
    def is_local(self) -> bool:
        return self.kind in LOCAL_KINDS

    @property
    def effective_base_url(self) -> str:
        if self.base_url:
            return self.base_url.rstrip("/")
        setting = DEFAULT_BASE_URL_SETTING.get(ProviderKind(self.kind), "")
        return str(getattr(settings, setting, "")).rstrip("/")


class ModelSource(models.TextChoices):
    DISCOVERED = "discovered", "Discovered from the server"
    MANUAL = "manual", "Added by hand"


class LoadState(models.TextChoices):
    IDLE = "idle", "Idle"
    LOADING = "loading", "Loading"
    FAILED = "failed", "Load failed"


class AIModel(models.Model):
    provider = models.ForeignKey(Provider, on_delete=models.CASCADE, related_name="models")
    model_id = models.CharField(max_length=255, help_text="The model's id as the provider names it.")
    display_name = models.CharField(max_length=255, blank=True)
    model_type = models.CharField(max_length=32, blank=True, help_text="llm, vlm, embedding…")
    context_length = models.PositiveIntegerField(null=True, blank=True)
    size_bytes = models.BigIntegerField(null=True, blank=True)
    details = models.JSONField(default=dict, blank=True)
    active = models.BooleanField(default=True)
    priority = models.IntegerField(default=0, help_text="Higher is preferred when suggesting alternatives.")
    source = models.CharField(max_length=16, choices=ModelSource.choices, default=ModelSource.MANUAL)

    # A load runs in a worker process; its progress lives here so every process sees it.
    load_state = models.CharField(max_length=16, choices=LoadState.choices, default=LoadState.IDLE)
    load_started_at = models.DateTimeField(null=True, blank=True)
    load_error = models.TextField(blank=True)
    # Bumped when this app changes what the server holds (load finished, unload), so a cached snapshot
    # of the server taken before that moment is known to be stale.
    state_changed_at = models.DateTimeField(null=True, blank=True)

    failure_count = models.PositiveIntegerField(default=0)
    cooldown_until = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)

    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-priority", "display_name", "model_id"]
        constraints = [
            models.UniqueConstraint(fields=["provider", "model_id"], name="unique_model_per_provider"),
        ]

    def __str__(self) -> str:
        return self.ref

    @property
    def ref(self) -> str:
        return f"{self.provider.name}/{self.model_id}"

    @property
    def name(self) -> str:
        return self.display_name or self.model_id

    @property
    def is_local(self) -> bool:
        return self.provider.is_local

    @property
    def can_chat(self) -> bool:
        return "embed" not in self.model_type
