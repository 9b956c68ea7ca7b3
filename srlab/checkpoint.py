"""Rebuild a trained network from a srlab checkpoint, without Lightning or the training code.

Every srlab LightningModule keeps its generator as ``self.net`` and its Hydra config in the
checkpoint's hyper-parameters (plain containers), so ``net`` config + ``net.*`` weights are all it
takes. Loading uses ``torch.load(weights_only=True)``: a checkpoint cannot run code.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import torch
from hydra.utils import instantiate
from torch import nn


class CheckpointError(ValueError):
    """A file that is not a usable srlab checkpoint."""


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, OSError, KeyError) as err:
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint ({type(err).__name__}: {err})") from None
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt or "net" not in ckpt.get("hyper_parameters", {}):
        raise CheckpointError(f"{path}: not a srlab checkpoint (no network config and weights inside)")
    return ckpt


def net_state_dict(ckpt: dict[str, Any]) -> dict[str, torch.Tensor]:
    return {k.removeprefix("net."): v for k, v in ckpt["state_dict"].items() if k.startswith("net.")}


def load_network(path: str | Path) -> tuple[nn.Module, dict[str, Any]]:
    """The checkpoint's network in eval mode, and its hyper-parameters (``net`` config, ``name``, ...)."""
    ckpt = read_checkpoint(path)
    hparams = ckpt["hyper_parameters"]
    net = instantiate(hparams["net"])
    try:
        net.load_state_dict(net_state_dict(ckpt))
    except RuntimeError as err:
        raise CheckpointError(f"{path}: weights do not match the network config inside it: {err}") from None
    return net.eval(), hparams
