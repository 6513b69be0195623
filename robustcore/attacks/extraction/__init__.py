"""Model extraction (stealing): copy a black-box model from its answers to queries.

Example::

    from robustcore.attacks.extraction import ModelStealing, model_api, steal
    from robustcore.data import load
    from robustcore.models import lookup, train

    ds = load("mnist5k")
    target = train("small_cnn", ds, epochs=5)
    result = steal(model_api(target), ds, ModelStealing(), budget=1000, output="label")
    result.accuracy, result.fidelity       # on the 1,000 test images
    surrogate = lookup(result.zoo_key).model  # later: a surrogate for transfer attacks
"""

from .copycat import (
    OUTPUTS,
    Cell,
    ModelStealing,
    PredictionAPI,
    StealResult,
    check_config,
    extraction_curve,
    grid_cells,
    model_api,
    query_api,
    steal,
    steal_cells,
)
from .sources import QUERY_SOURCES, describe_source, other_dataset_name, pool_size, query_pool

__all__ = [
    "OUTPUTS",
    "QUERY_SOURCES",
    "Cell",
    "ModelStealing",
    "PredictionAPI",
    "StealResult",
    "check_config",
    "describe_source",
    "extraction_curve",
    "grid_cells",
    "model_api",
    "other_dataset_name",
    "pool_size",
    "query_api",
    "query_pool",
    "steal",
    "steal_cells",
]
