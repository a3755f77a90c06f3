"""The dbt step of ``rrief_daily`` as an astronomer-cosmos task group.

dbt runs from its own virtualenv (``ExecutionConfig(dbt_executable_path=...)``); cosmos renders
the tasks from the manifest built at install time (``make dbt-manifest``, ``LoadMode.DBT_MANIFEST``)
so the dag-processor never runs dbt; the profile comes from the Airflow Connection
``rrief_warehouse`` through cosmos' Postgres profile mapping. Two execution modes, measured in
README ("dbt in Airflow"):

- ``per_model`` (default): one task per model running ``dbt build --select <model>`` (the model
  and its tests, ``TestBehavior.BUILD``), so each model's retries and test results show in the UI;
- ``build``: one task running ``dbt build`` over the project, a few times faster on a small
  machine (each cosmos task starts dbt and parses the project).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel

from extractors.pipeline.connections import WAREHOUSE_CONN_ID

REPO_ROOT = Path(__file__).resolve().parents[2]
PROFILE_NAME, TARGET_NAME = "rrief", "warehouse"
ExecutionModeName = Literal["per_model", "build"]
FULL_REFRESH = "{{ params.dbt_full_refresh }}"  # rendered when the task runs


class DbtLayout(BaseModel):
    """Where the dbt project, its manifest and dbt are, and how the task group runs them."""

    project_dir: Path
    manifest: Path
    dbt_bin: Path
    mode: ExecutionModeName = "per_model"
    lookback_days: int = 3
    threads: int = 2

    @classmethod
    def resolve(
        cls,
        project_dir: str,
        dbt_bin: str,
        manifest: str = "",
        mode: ExecutionModeName = "per_model",
        lookback_days: int = 3,
    ) -> DbtLayout:
        """Relative paths are taken from the working directory when they exist there, else
        from the repository root (a checkout runs from anywhere)."""

        def absolute(p: str) -> Path:
            path = Path(p)
            if not path.is_absolute() and not path.exists():
                path = REPO_ROOT / p
            return path.absolute()

        project = absolute(project_dir)
        return cls(
            project_dir=project,
            manifest=absolute(manifest) if manifest else project / "target" / "manifest.json",
            dbt_bin=absolute(dbt_bin),
            mode=mode,
            lookback_days=lookback_days,
        )

    def dbt_vars(self) -> dict[str, Any]:
        return {"lookback_days": self.lookback_days}


def profile_config() -> Any:
    """dbt's profile from the ``rrief_warehouse`` Connection (read when a task runs)."""
    from cosmos import ProfileConfig
    from cosmos.profiles import PostgresUserPasswordProfileMapping

    return ProfileConfig(
        profile_name=PROFILE_NAME,
        target_name=TARGET_NAME,
        profile_mapping=PostgresUserPasswordProfileMapping(
            conn_id=WAREHOUSE_CONN_ID, profile_args={"schema": "marts", "threads": 2}
        ),
    )


def dbt_task_group(layout: DbtLayout, group_id: str = "dbt", **group_args: Any) -> Any:
    """The task group that builds the models and their tests (call inside a DAG context)."""
    if not layout.manifest.exists():
        raise FileNotFoundError(
            f"dbt manifest {layout.manifest} not found: build it with `make dbt-manifest` "
            "(RRIEF_DBT_MANIFEST names another)"
        )
    from cosmos import DbtTaskGroup, ExecutionConfig, ProjectConfig, RenderConfig
    from cosmos.constants import InvocationMode, LoadMode, TestBehavior

    execution = ExecutionConfig(
        dbt_executable_path=str(layout.dbt_bin), invocation_mode=InvocationMode.SUBPROCESS
    )
    # no packages to install; the DAG publishes one asset, rrief_marts, after the docs; the
    # run's param dbt_full_refresh rebuilds the incremental models (after a change of columns)
    operator_args = {"emit_datasets": False, "full_refresh": FULL_REFRESH}
    if layout.mode == "build":
        from airflow.sdk import TaskGroup
        from cosmos.operators.local import DbtBuildLocalOperator

        with TaskGroup(group_id=group_id, **group_args) as group:
            DbtBuildLocalOperator(
                task_id="build",
                project_dir=str(layout.project_dir),
                profile_config=profile_config(),
                dbt_executable_path=str(layout.dbt_bin),
                invocation_mode=InvocationMode.SUBPROCESS,
                vars=layout.dbt_vars(),
                install_deps=False,
                **operator_args,
            )
        return group
    return DbtTaskGroup(
        group_id=group_id,
        project_config=ProjectConfig(
            dbt_project_path=layout.project_dir,
            manifest_path=layout.manifest,
            project_name="rrief",
            dbt_vars=layout.dbt_vars(),
            install_dbt_deps=False,
        ),
        profile_config=profile_config(),
        execution_config=execution,
        render_config=RenderConfig(
            load_method=LoadMode.DBT_MANIFEST,
            test_behavior=TestBehavior.BUILD,
            # a test over two models (relationships) runs after both, as its own task
            should_detach_multiple_parents_tests=True,
            emit_datasets=False,
        ),
        operator_args=operator_args,
        **group_args,
    )
