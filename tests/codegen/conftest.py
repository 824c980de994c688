from collections.abc import Iterator
from contextlib import ExitStack

import pytest

from apikeys.services import apikey_create
from models_mgmt.models import AIModel
from tests.completions.conftest import KEY, Cloud, start_cloud
from tests.conftest import cloud_provider
from tests.fakes.backend_script import ScriptedOpenAI


@pytest.fixture
def openai(db: None, alice: object, settings) -> Iterator[Cloud]:  # noqa: ANN001
    """OpenAI behind its emulator, with a key of alice's, as the default code generation model."""
    with ExitStack() as stack:
        cloud = start_cloud(stack, "openai", alice)
        settings.CODEGEN_DEFAULT_MODEL = cloud.model.ref
        yield cloud


@pytest.fixture
def scripted(db: None, alice: object, settings) -> Iterator[ScriptedOpenAI]:  # noqa: ANN001
    """OpenAI behind the scripted emulator (answers per prompt kind), alice's key, the default model."""
    with ScriptedOpenAI() as fake:
        provider = cloud_provider("openai", "openai", base_url=f"{fake.url}/v1")
        apikey_create(user=alice, provider="openai", key=KEY)
        model = AIModel.objects.create(provider=provider, model_id=fake.models[0], display_name=fake.models[0])
        settings.CODEGEN_DEFAULT_MODEL = model.ref
        yield fake
