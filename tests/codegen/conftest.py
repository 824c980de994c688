from collections.abc import Iterator
from contextlib import ExitStack

import pytest

from tests.completions.conftest import Cloud, start_cloud


@pytest.fixture
def openai(db: None, alice: object, settings) -> Iterator[Cloud]:  # noqa: ANN001
    """OpenAI behind its emulator, with a key of alice's, as the default code generation model."""
    with ExitStack() as stack:
        cloud = start_cloud(stack, "openai", alice)
        settings.CODEGEN_DEFAULT_MODEL = cloud.model.ref
        yield cloud
