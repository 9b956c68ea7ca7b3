"""Shared test fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

# ../shared/datasets beside the project root (as in CI); tests needing it skip when it is absent.
SHARED_DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"


@pytest.fixture
def shared_datasets() -> Path:
    if not (SHARED_DATASETS / "Set5").is_dir():
        pytest.skip(f"benchmark images not found at {SHARED_DATASETS}")
    return SHARED_DATASETS
