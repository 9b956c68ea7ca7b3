"""Data: image sources, decoded-image cache, patch datasets and the LightningDataModule."""

from srlab.data.datamodule import SRDataModule
from srlab.data.sources import ImageRecord

__all__ = ["ImageRecord", "SRDataModule"]
