from django.conf import settings
from django.db import models
from django.utils import timezone

from models_mgmt.models import AIModel


class Conversation(models.Model):
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="conversations")
    title = models.CharField(max_length=200, blank=True)
    system_prompt = models.TextField(blank=True)
    model = models.ForeignKey(AIModel, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    auto_fallback = models.BooleanField(default=True)
    # Empty means the model's own default; checked in services (temperature 0-2, tokens 1-MAX_ANSWER_TOKENS).
    temperature = models.FloatField(null=True, blank=True)
    max_tokens = models.PositiveIntegerField(null=True, blank=True)
    # An automatic title may be replaced by the model's; one the user gave never is.
    title_is_auto = models.BooleanField(default=True)
    # The newest message of the branch on screen; the branch is its chain of parents.
    leaf = models.ForeignKey("Message", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated_at", "-pk"]

    def __str__(self) -> str:
        return self.title or f"Conversation {self.pk}"


class MessageRole(models.TextChoices):
    USER = "user", "User"
    ASSISTANT = "assistant", "Assistant"


class MessageStatus(models.TextChoices):
    PENDING = "pending", "Waiting for the model"
    STREAMING = "streaming", "Being written"
    COMPLETE = "complete", "Complete"
    STOPPED = "stopped", "Stopped"
    ERROR = "error", "Failed"


class Message(models.Model):
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="messages")
    # Versions of a message are siblings: an edited question or a regenerated answer has the same parent.
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.CASCADE, related_name="children")
    role = models.CharField(max_length=16, choices=MessageRole.choices)
    content = models.TextField(blank=True)
    status = models.CharField(max_length=16, choices=MessageStatus.choices, default=MessageStatus.COMPLETE)
    # Asked of: the model the user picked. Answered by: the one that wrote the text (after a fallback).
    requested_model = models.ForeignKey(AIModel, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    answered_by = models.ForeignKey(AIModel, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    answered_by_ref = models.CharField(max_length=300, blank=True)
    fallbacks = models.JSONField(default=list, blank=True)
    error = models.TextField(blank=True)
    error_code = models.CharField(max_length=40, blank=True)
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    prompt_tokens = models.PositiveIntegerField(null=True, blank=True)
    completion_tokens = models.PositiveIntegerField(null=True, blank=True)
    stop_requested = models.BooleanField(default=False)
    # Not auto_now_add: an imported conversation keeps its own timestamps.
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "pk"]

    def __str__(self) -> str:
        return f"{self.role}: {self.content[:40]}"

    @property
    def is_open(self) -> bool:
        return self.status in (MessageStatus.PENDING, MessageStatus.STREAMING)


class ChatPreference(models.Model):
    """Per-user chat state that outlives any one conversation: the model a new chat starts on."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="chat_preference")
    last_model = models.ForeignKey(AIModel, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    def __str__(self) -> str:
        return f"Chat preferences of {self.user}"
