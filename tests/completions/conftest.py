from collections.abc import Iterator
from contextlib import ExitStack

import pytest

from apikeys.services import apikey_create
from models_mgmt.models import AIModel
from tests.conftest import cloud_provider
from tests.fakes.anthropic import FakeAnthropic
from tests.fakes.cloud import CloudFake
from tests.fakes.gemini import FakeGemini
from tests.fakes.mistral import FakeMistral
from tests.fakes.openai import FakeOpenAI

# name, provider kind, emulator, base URL suffix (what the real provider's base URL looks like)
CLOUDS = {
    "openai": ("openai", FakeOpenAI, "/v1"),
    "anthropic": ("anthropic", FakeAnthropic, ""),
    "gemini": ("google", FakeGemini, ""),
    "mistral": ("mistral", FakeMistral, "/v1"),
}
KEY = "test-key"


class Cloud:
    def __init__(self, name: str, fake: CloudFake, model: AIModel) -> None:
        self.name, self.fake, self.model = name, fake, model


def start_cloud(stack: ExitStack, name: str, owner: object) -> Cloud:
    kind, fake_class, suffix = CLOUDS[name]
    fake = stack.enter_context(fake_class())
    provider = cloud_provider(name, kind, base_url=f"{fake.url}{suffix}")
    apikey_create(user=owner, provider=name, key=KEY)
    model = AIModel.objects.select_related("provider").get(
        pk=AIModel.objects.create(provider=provider, model_id=fake.models[0], display_name=fake.models[0]).pk
    )
    return Cloud(name, fake, model)


@pytest.fixture(params=sorted(CLOUDS))
def cloud(request: pytest.FixtureRequest, db: None, alice: object) -> Iterator[Cloud]:
    """Each cloud provider in turn, behind its emulator, with a key of alice's and one model."""
    with ExitStack() as stack:
        yield start_cloud(stack, request.param, alice)
