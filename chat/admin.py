from django.contrib import admin

from chat.models import ChatPreference, Conversation, Message


class MessageInline(admin.TabularInline):
    model = Message
    extra = 0
    fields = ["parent", "role", "status", "content", "answered_by_ref", "latency_ms"]
    readonly_fields = fields


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    list_display = ["title", "owner", "updated_at"]
    inlines = [MessageInline]


@admin.register(ChatPreference)
class ChatPreferenceAdmin(admin.ModelAdmin):
    list_display = ["user", "last_model"]
