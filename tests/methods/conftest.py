import pytest

from .helpers import setup


@pytest.fixture(scope="module")
def llava():
    """(model, inputs, info) of the tiny LLaVA, built once per test module."""
    return setup("llava")
