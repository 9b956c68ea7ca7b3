"""The evaluation's one error type, in a module of its own so that every other module of
:mod:`srlab.evaluation` can raise it without importing the package (no circular imports);
it is re-exported as ``srlab.evaluation.EvaluationError``.
"""

from __future__ import annotations


class EvaluationError(ValueError):
    """Bad input to the evaluation: nothing to evaluate, a wrong scale, an empty set folder, ..."""
