"""The suggested alternative looks at the cloud models alone when their tier comes first and one of them
qualifies (bench/RESULTS.md): the local server is not asked and its models are not read; otherwise the
answer is the one the whole list gives."""

import pytest
from django.core.cache import cache

from apikeys.services import apikey_create
from models_mgmt.models import AIModel
from models_mgmt.services import model_record_failure, model_suggest_alternative
from tests.conftest import cloud_provider
from tests.fakes.lmstudio import FakeLMStudio

pytestmark = pytest.mark.django_db
QWEN = "qwen/qwen2.5-7b-instruct"


@pytest.fixture
def gpts(alice: object, discovered: dict[str, AIModel]) -> tuple[AIModel, AIModel]:
    openai = cloud_provider("openai")
    apikey_create(user=alice, provider="openai", key="test-key-1234")
    return (
        AIModel.objects.create(provider=openai, model_id="gpt-4o"),
        AIModel.objects.create(provider=openai, model_id="gpt-4o-mini"),
    )


def test_a_cloud_alternative_needs_no_local_server(
    gpts: tuple[AIModel, AIModel], alice: object, lmstudio: FakeLMStudio, django_assert_max_num_queries
) -> None:  # noqa: ANN001
    cache.clear()  # no snapshot of LM Studio's models at hand
    lmstudio.reset_log()
    with django_assert_max_num_queries(2):  # the cloud models, the user's keys
        suggestion = model_suggest_alternative(model=gpts[1], user=alice)
    assert suggestion is not None and suggestion.model == gpts[0] and suggestion.tier == "external"
    assert lmstudio.requests == []


def test_without_a_cloud_candidate_the_local_tiers_answer(
    gpts: tuple[AIModel, AIModel], alice: object, charlie: object
) -> None:
    model_record_failure(model=gpts[0], reason="down", retryable=False)
    suggestion = model_suggest_alternative(model=gpts[1], user=alice)
    assert suggestion is not None and suggestion.model.model_id == QWEN and suggestion.tier == "loaded"
    suggestion = model_suggest_alternative(model=gpts[1], user=charlie)  # no key: no cloud model is usable
    assert suggestion is not None and suggestion.model.model_id == QWEN


def test_an_order_that_starts_locally_is_kept(gpts: tuple[AIModel, AIModel], alice: object, settings) -> None:  # noqa: ANN001
    settings.FALLBACK_ORDER = ["loaded", "external", "local"]
    suggestion = model_suggest_alternative(model=gpts[1], user=alice)
    assert suggestion is not None and suggestion.model.model_id == QWEN and suggestion.tier == "loaded"
