"""The directory's integration tests know its fixtures (tests/integration/conftest.py) as
``settings`` and ``client``, in place of the referrals service's."""

from __future__ import annotations

import pytest
from litestar.testing import TestClient

from shared.config import Settings


@pytest.fixture
def settings(directory_settings: Settings) -> Settings:
    return directory_settings


@pytest.fixture
def client(directory: TestClient) -> TestClient:
    return directory
