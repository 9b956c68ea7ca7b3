"""Shared test fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Tests never talk to W&B's servers: runs are written offline into the test's folders.
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")

# ../shared/datasets beside the project root (as in CI); tests needing it skip when it is absent.
SHARED_DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"


@pytest.fixture
def shared_datasets() -> Path:
    if not (SHARED_DATASETS / "Set5").is_dir():
        pytest.skip(f"benchmark images not found at {SHARED_DATASETS}")
    return SHARED_DATASETS
