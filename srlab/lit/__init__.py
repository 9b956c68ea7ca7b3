"""LightningModules: ``SRLitModule`` for PSNR-oriented networks, ``SRGANModule`` for the GAN."""

from srlab.lit.sr_module import SRLitModule
from srlab.lit.srgan_module import SRGANModule

__all__ = ["SRGANModule", "SRLitModule"]
