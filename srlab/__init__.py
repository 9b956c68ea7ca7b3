"""srlab: train, compare, select and deploy single-image super-resolution networks."""

__version__ = "0.1.0"
