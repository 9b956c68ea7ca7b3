"""The deployable form of a trained network: a folder the app loads without pickle or Lightning.

``export_deploy`` turns a srlab checkpoint into::

    <out_dir>/weights.safetensors   the network's state dict (safetensors: tensors only, no code)
    <out_dir>/config.json           how to rebuild the network: the net config (``_target_``), the
                                    architecture name, scale, colour mode ("y" | "rgb"), in_channels,
                                    params, the evaluation protocol, and the weights' sha256
    <out_dir>/metrics.json          the evaluation metrics it was chosen on (and its selection score)

and ``load_deployed`` reads it back: ``safetensors.torch.load_file`` for the weights and the config's
``_target_`` -- restricted to :mod:`srlab.models` -- for the architecture. A checkpoint is never
unpickled on the app's side. The folder is written atomically (built in a temporary sibling, then
swapped in), so a reader sees the old export or the new one, never half of one.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

WEIGHTS_FILE = "weights.safetensors"
CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.json"
FORMAT = "srlab-deploy"
FORMAT_VERSION = 1
#: ``_target_`` values a deployed config may name: the app instantiates nothing else.
ALLOWED_TARGET_PREFIX = "srlab.models."


class DeployError(ValueError):
    """A deploy folder that cannot be written or loaded."""


def _fold_pruning(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``w_orig * w_mask`` -> ``w`` for any pruning reparametrisation left in a state dict.

    srlab's pruning callback already makes masks permanent in the checkpoints it writes; this only
    guards against a checkpoint saved by other means while masks were attached.
    """
    out = dict(state)
    for key in [k for k in state if k.endswith("_orig")]:
        base = key.removesuffix("_orig")
        mask = state.get(base + "_mask")
        if mask is not None:
            out[base] = state[key] * mask
            del out[key], out[base + "_mask"]
    return out


def _check_targets(node: Any, where: str = "net") -> None:
    if isinstance(node, dict):
        target = node.get("_target_")
        if target is not None and not (isinstance(target, str) and target.startswith(ALLOWED_TARGET_PREFIX)):
            raise DeployError(f"{where}._target_ = {target!r}: a deployed network must be built by "
                              f"{ALLOWED_TARGET_PREFIX}* (refusing to instantiate anything else)")
        for key, value in node.items():
            _check_targets(value, f"{where}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            _check_targets(value, f"{where}[{i}]")


def build_network(net_cfg: dict[str, Any]) -> nn.Module:
    """Instantiate a net config whose ``_target_`` (and any nested one) lies in :mod:`srlab.models`."""
    from hydra.utils import instantiate

    if not isinstance(net_cfg, dict) or "_target_" not in net_cfg:
        raise DeployError(f"net config must be a mapping with a _target_, got {net_cfg!r}")
    _check_targets(net_cfg)
    return instantiate(net_cfg)


def _state_for_export(net: nn.Module) -> dict[str, torch.Tensor]:
    # safetensors wants contiguous tensors that share no memory; training leaves channels_last weights.
    return {k: v.detach().cpu().contiguous().clone() for k, v in net.state_dict().items()}


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _json_default(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return value.item()
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def network_from_checkpoint(ckpt_path: str | Path) -> tuple[nn.Module, dict[str, Any]]:
    """The checkpoint's network (eval mode) and hyper-parameters; pruning masks folded if present."""
    from srlab.checkpoint import CheckpointError, net_state_dict, read_checkpoint

    ckpt = read_checkpoint(ckpt_path)
    hparams = ckpt["hyper_parameters"]
    net = build_network(hparams["net"])
    try:
        net.load_state_dict(_fold_pruning(net_state_dict(ckpt)))
    except RuntimeError as err:
        raise CheckpointError(f"{ckpt_path}: weights do not match the network config inside it: {err}") from None
    return net.eval(), hparams


def deploy_config(net: nn.Module, hparams: dict[str, Any], metrics: dict[str, Any],
                  ckpt_path: str | Path) -> dict[str, Any]:
    net_cfg = hparams["net"]
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model": metrics.get("model"),
        "architecture": metrics.get("architecture") or hparams.get("name") or net_cfg.get("name"),
        "net": net_cfg,
        "scale": int(net.scale),
        "color": getattr(net, "color", "y" if net.in_channels == 1 else "rgb"),
        "in_channels": int(net.in_channels),
        "receptive_field": getattr(net, "receptive_field", None),
        "params": sum(p.numel() for p in net.parameters()),
        "protocol": metrics.get("protocol"),
        "checkpoint": str(ckpt_path),
        "weights": WEIGHTS_FILE,
        "torch": torch.__version__,
    }


def _swap_in(tmp: Path, out_dir: Path) -> None:
    """Replace ``out_dir`` by the finished ``tmp`` (same parent): two renames, old copy removed last."""
    old = None
    if out_dir.exists() or out_dir.is_symlink():
        old = out_dir.with_name(f".{out_dir.name}.old-{os.getpid()}")
        if old.exists():
            shutil.rmtree(old)
        os.replace(out_dir, old)
    try:
        os.replace(tmp, out_dir)
    except OSError:
        if old is not None:
            os.replace(old, out_dir)  # put the previous export back
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def export_deploy(ckpt_path: str | Path, metrics: dict[str, Any], out_dir: str | Path) -> Path:
    """Write ``weights.safetensors``, ``config.json`` and ``metrics.json`` for the checkpoint's network
    into ``out_dir`` (replacing a previous export atomically). Returns ``out_dir``."""
    from safetensors.torch import save_file

    out_dir = Path(out_dir)
    net, hparams = network_from_checkpoint(ckpt_path)
    config = deploy_config(net, hparams, metrics, ckpt_path)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    try:
        weights = tmp / WEIGHTS_FILE
        save_file(_state_for_export(net), str(weights), metadata={"format": FORMAT, "model": str(config["model"])})
        config["sha256"] = _sha256(weights)
        (tmp / CONFIG_FILE).write_text(json.dumps(config, indent=2, default=_json_default) + "\n")
        (tmp / METRICS_FILE).write_text(json.dumps(metrics, indent=2, default=_json_default) + "\n")
        os.chmod(tmp, 0o755)  # mkdtemp makes it 0700
        os.chmod(weights, 0o644)  # safetensors writes 0600: another user (a web server) could not read it
        _swap_in(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir


def load_deployed(path: str | Path) -> tuple[nn.Module, dict[str, Any]]:
    """``(net, config)`` from a deploy folder (or its ``config.json``): the network in eval mode on the
    CPU, built from ``config["net"]`` and loaded from ``weights.safetensors`` (checksum-verified)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    folder = path.parent if path.is_file() else path
    config_path = folder / CONFIG_FILE
    if not config_path.is_file():
        raise DeployError(f"{folder}: no {CONFIG_FILE}; not a srlab deploy folder")
    try:
        config = json.loads(config_path.read_text())
    except json.JSONDecodeError as err:
        raise DeployError(f"{config_path}: not valid JSON ({err})") from None
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise DeployError(f"{config_path}: not a {FORMAT} config")
    if config.get("format_version", 0) > FORMAT_VERSION:
        raise DeployError(f"{config_path}: format version {config['format_version']} is newer than this "
                          f"srlab reads ({FORMAT_VERSION}); update srlab")
    weights = folder / config.get("weights", WEIGHTS_FILE)
    if not weights.is_file():
        raise DeployError(f"{folder}: no {weights.name}")
    if config.get("sha256") and _sha256(weights) != config["sha256"]:
        raise DeployError(f"{weights}: sha256 does not match config.json (corrupt or replaced file)")
    try:
        state = load_file(str(weights), device="cpu")
    except (SafetensorError, OSError) as err:
        raise DeployError(f"{weights}: not readable safetensors ({err})") from None
    net = build_network(config["net"])
    try:
        net.load_state_dict(state)
    except RuntimeError as err:
        raise DeployError(f"{weights}: weights do not match the network in config.json: {err}") from None
    return net.eval(), config
