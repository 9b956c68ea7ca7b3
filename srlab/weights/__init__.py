"""Trained weights that ship with srlab: one deploy folder (:mod:`srlab.deploy`) per network, named
``<architecture>_x<scale>``, found by :func:`srlab.inference.list_deployed`; ``python -m srlab.weights``
(:mod:`srlab.weights.export`) makes one from a training checkpoint and its evaluation. See README.md here.
"""
