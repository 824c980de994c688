"""The prices the app ships with: list prices in USD per million tokens for well-known cloud models, as
read from each provider's public pricing page on the date given. Prices change; these are a starting
point that staff edit in the admin (Usage › Prices), not a promise. Batch, cached-input and long-context
tiers are left out: each figure is the standard tier for a prompt of ordinary length. Local models (LM
Studio, Ollama, llama.cpp) have no row and cost 0 unless staff add one.

Loaded by the data migration usage/migrations/0002_default_prices.py; a later edit by staff is kept
(the migration only adds rows that are missing)."""

from __future__ import annotations

OPENAI = "https://openai.com/api/pricing/"
ANTHROPIC = "https://www.anthropic.com/pricing#api"
GEMINI = "https://ai.google.dev/gemini-api/docs/pricing"
MISTRAL = "https://mistral.ai/pricing#api-pricing"
AS_OF = "2025-06-01"  # the date these figures were read; they are as of that date, not today

# (provider kind, model id, input USD / 1M tokens, output USD / 1M tokens, source)
DEFAULT_PRICES: list[tuple[str, str, str, str, str]] = [
    ("openai", "gpt-4o", "2.50", "10.00", OPENAI),
    ("openai", "gpt-4o-mini", "0.15", "0.60", OPENAI),
    ("openai", "gpt-4.1", "2.00", "8.00", OPENAI),
    ("openai", "gpt-4.1-mini", "0.40", "1.60", OPENAI),
    ("openai", "gpt-4.1-nano", "0.10", "0.40", OPENAI),
    ("openai", "o3-mini", "1.10", "4.40", OPENAI),
    ("openai", "o4-mini", "1.10", "4.40", OPENAI),
    ("anthropic", "claude-3-5-haiku-latest", "0.80", "4.00", ANTHROPIC),
    ("anthropic", "claude-3-haiku-20240307", "0.25", "1.25", ANTHROPIC),
    ("anthropic", "claude-3-7-sonnet-latest", "3.00", "15.00", ANTHROPIC),
    ("anthropic", "claude-sonnet-4-0", "3.00", "15.00", ANTHROPIC),
    ("anthropic", "claude-opus-4-0", "15.00", "75.00", ANTHROPIC),
    ("google", "gemini-2.0-flash", "0.10", "0.40", GEMINI),
    ("google", "gemini-2.0-flash-lite", "0.075", "0.30", GEMINI),
    ("google", "gemini-1.5-flash", "0.075", "0.30", GEMINI),
    ("google", "gemini-1.5-pro", "1.25", "5.00", GEMINI),
    ("google", "gemini-2.5-pro", "1.25", "10.00", GEMINI),
    ("mistral", "mistral-large-latest", "2.00", "6.00", MISTRAL),
    ("mistral", "mistral-small-latest", "0.10", "0.30", MISTRAL),
    ("mistral", "codestral-latest", "0.30", "0.90", MISTRAL),
]
