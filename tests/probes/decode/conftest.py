"""The tiny DiffusionGemma-shaped configuration (``fakes.tiny_model``) as a fixture."""

from __future__ import annotations

import pytest
from fakes.tiny_model import tiny_config

from dgprofile.specs.model_config import ModelConfig


@pytest.fixture
def tiny() -> ModelConfig:
    return tiny_config()
