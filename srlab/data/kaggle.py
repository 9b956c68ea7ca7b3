"""Image folders from Kaggle datasets, through the official ``kagglehub`` client.

Credentials are never passed in code or config: kagglehub reads them itself, from the environment
(``KAGGLE_USERNAME`` + ``KAGGLE_KEY``, or ``KAGGLE_API_TOKEN``) or from its own config file
(``~/.kaggle/kaggle.json``, or ``$KAGGLE_CONFIG_DIR/kaggle.json``). Public datasets also download
without any. Downloads are cached by kagglehub under ``$KAGGLEHUB_CACHE`` (default
``~/.cache/kagglehub``), per dataset version, so a second call makes one small metadata request
and no download.

Endpoint: kagglehub (1.0.x) has no URL setting; ``KAGGLE_API_ENVIRONMENT`` picks one of the
fixed hosts in ``kagglesdk.kaggle_env`` (PROD = https://api.kaggle.com by default). Its requests
honour the usual ``HTTP(S)_PROXY`` variables, which is how the test points it at a local server.
"""

from __future__ import annotations

import os
from pathlib import Path

import kagglehub

__all__ = ["kaggle_dataset_path"]

# Environment variables whose values must never appear in an error message we raise.
_SECRET_ENV = ("KAGGLE_KEY", "KAGGLE_API_TOKEN")


def _redact(text: str) -> str:
    for var in _SECRET_ENV:
        secret = os.environ.get(var, "")
        if len(secret) >= 4:  # a tiny value would redact innocent text and protects nothing
            text = text.replace(secret, "***")
    return text


def _chain_mentions_secret(err: BaseException) -> bool:
    """True if ``err`` or any exception chained to it would print a secret in a traceback."""
    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if _redact(str(current)) != str(current):
            return True
        current = current.__cause__ or current.__context__
    return False


def kaggle_dataset_path(handle: str, *, force: bool = False) -> Path:
    """Download (or reuse from kagglehub's cache) Kaggle dataset ``handle``; return its folder.

    ``handle`` is ``"owner/dataset"`` or ``"owner/dataset/versions/N"``. The returned folder is the
    extracted dataset root; images may sit in sub-folders (read it recursively). ``force`` re-downloads
    even if cached. Any failure is re-raised as RuntimeError naming the handle, never a credential.
    """
    try:
        path = Path(kagglehub.dataset_download(handle, force_download=force))
    except Exception as err:  # kagglehub raises many types (HTTP, auth, ValueError...): one clear message
        detail = _redact(f"{type(err).__name__}: {err}".strip().rstrip("."))
        hint = ""
        if any(code in detail for code in ("401", "403")) or "Unauthenticated" in detail:
            hint = (
                " Set KAGGLE_USERNAME and KAGGLE_KEY (or KAGGLE_API_TOKEN) in the environment, "
                "or create ~/.kaggle/kaggle.json, and accept the dataset's terms on kaggle.com if it has any."
            )
        message = f"could not get Kaggle dataset {handle!r}: {detail}.{hint}"
        # Chain the original only when no exception in its chain quotes a secret (a server error
        # may echo the key back), because tracebacks print the whole chain.
        if _chain_mentions_secret(err):
            raise RuntimeError(message) from None
        raise RuntimeError(message) from err
    if not path.is_dir():
        raise RuntimeError(f"Kaggle dataset {handle!r} resolved to {path}, which is not a folder")
    return path
