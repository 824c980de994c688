"""One-off set-up of a fresh benchmark database, run in the app's environment (VAR_DIR, *_BASE_URL):

    VAR_DIR=... OPENAI_BASE_URL=... python bench/setup_app.py --refused-url http://127.0.0.1:PORT

A staff user with a password (for the chat page) and an API token, an OpenAI key for that user (tested,
so the emulator's models are stored), an OpenAI-compatible provider whose server refuses connections
(the "refused primary" of the fallback measurement) and the LM Studio models discovered. Prints JSON."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "orchestrator.settings")

import django  # noqa: E402

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402

from accounts.services import api_token_create  # noqa: E402
from apikeys.services import apikey_create, apikey_test  # noqa: E402
from models_mgmt.models import AIModel  # noqa: E402
from models_mgmt.services import models_store_remote, models_sync  # noqa: E402
from providers.adapters import RemoteModel  # noqa: E402

USERNAME, PASSWORD = "bench", "bench-password-1"
KEY = "test-key-1234"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--refused-url", required=True)
    args = parser.parse_args()

    user = get_user_model().objects.create_user(USERNAME, password=PASSWORD, is_staff=True)
    _, token = api_token_create(user=user, name="bench")

    openai_key = apikey_create(user=user, provider="openai", key=KEY, label="bench")
    tested = apikey_test(user=user, key_id=openai_key.pk)
    if not tested.ok:
        raise SystemExit(f"The OpenAI emulator refused the key: {tested.detail}")

    refused_key = apikey_create(
        user=user, provider="openai_compatible", key=KEY, label="refused", base_url=f"{args.refused_url}/v1"
    )
    models_store_remote(
        provider=refused_key.provider, remote=[RemoteModel(id="gpt-4o-mini")], owner_id=refused_key.owner_id
    )

    synced = models_sync(user=user)
    # Only these two must answer; every other server (Ollama, llama.cpp, the "refused" one) points at
    # the refusing port on purpose.
    failed = [r for r in synced if not r.ok and r.provider in {"lmstudio", "openai"}]
    if failed:
        raise SystemExit(f"Sync failed: {failed}")

    print(
        json.dumps(
            {
                "username": USERNAME,
                "password": PASSWORD,
                "token": token,
                "model": "openai/gpt-4o-mini",
                "refused_model": f"{refused_key.provider.name}/gpt-4o-mini",
                "models": AIModel.objects.count(),
                "lmstudio_models": AIModel.objects.filter(provider__kind="lmstudio").count(),
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
