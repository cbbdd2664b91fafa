"""The project's defs folder: Dagster component instances, one folder each (loaded by rollups/component.py
through Dagster's `ComponentTree`, the machinery of `dg.load_from_defs_folder`).

Why here, inside the package: the top level stays erp_pipelines/, erp_pipelines_tests/, workspace.yaml and
dagster.yaml. `rollups/<name>/defs.yaml` declares one daily rollup (docs/rollups.md).
"""
