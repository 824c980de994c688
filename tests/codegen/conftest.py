from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from django.conf import settings as django_settings

from codegen.sandbox import sandbox_env_prepare
from tests.completions.conftest import Cloud, start_cloud


@pytest.fixture
def openai(db: None, alice: object, settings) -> Iterator[Cloud]:  # noqa: ANN001
    """OpenAI behind its emulator, with a key of alice's, as the default code generation model."""
    with ExitStack() as stack:
        cloud = start_cloud(stack, "openai", alice)
        settings.CODEGEN_DEFAULT_MODEL = cloud.model.ref
        yield cloud


@pytest.fixture(scope="session")
def sandbox_env() -> Path:
    """The sandbox's dedicated Python environment, built once per machine (a stamp skips it later)."""
    sandbox_env_prepare(
        env_dir=django_settings.CODEGEN_SANDBOX_ENV, requirements=django_settings.CODEGEN_SANDBOX_REQUIREMENTS
    )
    return django_settings.CODEGEN_SANDBOX_ENV
