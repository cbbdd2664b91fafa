"""The project's Definitions, the one object Dagster loads (`dagster dev -m erp_pipelines.definitions`).

Assembled by `build_defs()` (erp_pipelines/defs_factory.py) with resources from the environment; this
module holds no other Definitions object, so Dagster's CLI needs no `-a defs`.
"""

from erp_pipelines.defs_factory import build_defs

defs = build_defs()
