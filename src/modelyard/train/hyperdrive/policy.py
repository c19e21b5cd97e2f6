"""v1's ``azureml.train.hyperdrive.policy``: where v1 notebooks import the early-termination
policies from (they live in :mod:`.policies`).

Example::

    from modelyard.train.hyperdrive.policy import BanditPolicy
"""

from __future__ import annotations

from modelyard.train.hyperdrive.policies import (
    BanditPolicy,
    EarlyTerminationPolicy,
    MedianStoppingPolicy,
    NoTerminationPolicy,
    TruncationSelectionPolicy,
)

__all__ = [
    "BanditPolicy",
    "EarlyTerminationPolicy",
    "MedianStoppingPolicy",
    "NoTerminationPolicy",
    "TruncationSelectionPolicy",
]
