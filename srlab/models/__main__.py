"""``python -m srlab.models --scale 4``: parameters and compute of every registered network.

Compute is counted with ``torch.utils.flop_counter.FlopCounterMode`` (convolutions, transposed
convolutions and matrix products; element-wise ops, activations, batch norm and the bicubic resize are
not counted) for one LR image of ``--size`` x ``--size`` pixels, reported as multiply-adds (FLOPs / 2)
per output megapixel, so that networks of different scale and input size compare directly. For the Y
networks this is per output Y megapixel. By default everything runs on the ``meta`` device: shapes and
FLOPs only, no arithmetic, so even EDSR (43 M parameters) takes a fraction of a second.
"""

from __future__ import annotations

import argparse

import torch
from torch.utils.flop_counter import FlopCounterMode

from . import build_model, model_names


def macs_per_output_mp(net: torch.nn.Module, size: int = 64, on_meta: bool = True) -> float:
    """Multiply-adds per output megapixel of ``net`` for one ``size`` x ``size`` LR input. With
    ``on_meta`` they are counted on a copy of ``net`` on the meta device (no arithmetic; ``net``
    itself is untouched), otherwise by running ``net`` where it is."""
    import copy

    device = next(net.parameters(), torch.empty(0)).device
    if on_meta and device.type != "meta":
        net, device = copy.deepcopy(net).to("meta"), torch.device("meta")
    x = torch.zeros(1, net.in_channels, size, size, device=device)
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        out = net(x)
    return counter.get_total_flops() / 2 / (out.shape[-2] * out.shape[-1]) * 1e6


def measure(name: str, scale: int, size: int, device: str = "meta") -> tuple[int, float, int, int]:
    """Return (parameters, MACs per output megapixel, in_channels, receptive_field)."""
    with torch.device(device):
        net = build_model(name, scale).eval()
    params = sum(p.numel() for p in net.parameters())
    return params, macs_per_output_mp(net, size, on_meta=device == "meta"), net.in_channels, net.receptive_field


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m srlab.models", description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=4, choices=(2, 3, 4))
    parser.add_argument("--size", type=int, default=64, help="LR input side in pixels (default 64)")
    parser.add_argument("--device", default="meta", help="'meta' (no arithmetic, default) or 'cpu'")
    args = parser.parse_args(argv)

    print(f"scale x{args.scale}, LR input {args.size}x{args.size}")
    header = f"{'network':<15}{'ch':>3}{'params':>14}{'GMAC/out-MP':>14}{'RF (LR px)':>12}"
    print(header)
    print("-" * len(header))
    for name in model_names():
        params, macs_per_mp, ch, rf = measure(name, args.scale, args.size, args.device)
        print(f"{name:<15}{ch:>3}{params:>14,}{macs_per_mp / 1e9:>14.3f}{rf:>12}")


if __name__ == "__main__":
    main()
