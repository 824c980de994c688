from django.db import models


class ProviderKind(models.TextChoices):
    LMSTUDIO = "lmstudio", "LM Studio"
    OLLAMA = "ollama", "Ollama"
    LLAMACPP = "llamacpp", "llama.cpp"
    OPENAI = "openai", "OpenAI"
    ANTHROPIC = "anthropic", "Anthropic"
    GOOGLE = "google", "Google Gemini"
    MISTRAL = "mistral", "Mistral"
    GENSPARK = "genspark", "Genspark"
    OPENAI_COMPATIBLE = "openai_compatible", "OpenAI-compatible"
