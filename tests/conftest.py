"""Shared pytest setup: session-scoped fixtures for the real broker, Triton and the local stack."""
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

pytest_plugins = [
    "tests.fixtures.paths",
    "tests.fixtures.triton",
    "tests.fixtures.broker",
    "tests.fixtures.stack",
]
