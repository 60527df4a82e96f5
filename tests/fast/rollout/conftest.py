"""A fake router for the rollout tests (``miles_args`` and ``write_jsonl`` come from the shared fixtures)."""

from __future__ import annotations

import pytest
from fake_router import FakeRouter


@pytest.fixture(scope="module")
def fake_router():
    router = FakeRouter().start()
    yield router
    router.stop()


@pytest.fixture
def router(fake_router):
    fake_router.reset()
    yield fake_router
    fake_router.reset()
