"""Miles: RL post-training of LLMs, built from pluggy plugins.

Plugin authors need only this import::

    from miles_core import hookimpl, RewardModelSpec, FilterSpec, DynamicFilterOutput, Sample

Importing this package is cheap (no torch, Ray or transformers), so ``miles --help`` stays fast.
"""

from miles_core.data.sample import Sample, SampleStatus
from miles_core.plugins.hookspecs import hookimpl
from miles_core.plugins.types import (
    DataSourceSpec,
    DynamicFilterOutput,
    EngineSpec,
    FilterSpec,
    GenerateFunctionSpec,
    LoggerSpec,
    LossEstimatorSpec,
    ModelSpec,
    Provenance,
    RewardModelSpec,
    RolloutFunctionSpec,
    TrainBackendSpec,
)

__version__ = "0.1.0"

__all__ = [
    "hookimpl",
    "Sample",
    "SampleStatus",
    "DataSourceSpec",
    "DynamicFilterOutput",
    "EngineSpec",
    "FilterSpec",
    "GenerateFunctionSpec",
    "LoggerSpec",
    "LossEstimatorSpec",
    "ModelSpec",
    "Provenance",
    "RewardModelSpec",
    "RolloutFunctionSpec",
    "TrainBackendSpec",
    "__version__",
]
