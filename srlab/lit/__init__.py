"""LightningModules: ``SRLitModule`` for PSNR-oriented networks, ``SRGANModule`` for the GAN."""

from srlab.lit.sr_module import SRLitModule

__all__ = ["SRLitModule"]
