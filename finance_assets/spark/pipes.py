"""The job's Dagster Pipes side: the context when Dagster launched the process, and the figures
as a materialisation's metadata (dagster-pipes only: the cluster has no Dagster)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def session() -> Iterator[Any]:
    """The Pipes context when Dagster launched this process, else None.

    Messages go where the launcher's reader looks: S3 on EMR (the reader passes a bucket),
    stdout (EMR Serverless: CloudWatch reads the driver's stdout) or a file (local).
    """
    try:
        from dagster_pipes import PipesEnvVarParamsLoader, open_dagster_pipes
    except ImportError:
        yield None
        return
    loader = PipesEnvVarParamsLoader()
    if not loader.is_dagster_pipes_process():
        yield None
        return
    with open_dagster_pipes(message_writer=_message_writer(), params_loader=loader) as pipes:
        yield pipes


def _message_writer() -> Any:
    from dagster_pipes import PipesDefaultMessageWriter, PipesMessageWriter, PipesS3MessageWriter

    class AnyMessageWriter(PipesMessageWriter):
        @contextmanager
        def open(self, params):  # type: ignore[override]
            if "bucket" in params:
                import boto3

                writer: Any = PipesS3MessageWriter(boto3.client("s3"), interval=1)
            else:
                writer = PipesDefaultMessageWriter()
            with writer.open(params) as channel:
                yield channel

    return AnyMessageWriter()


def summary_line(asset: str, figures: dict[str, Any]) -> str:
    return (
        f"{asset} {figures['window']}: {figures.get('rows_loaded', 0)} rows loaded, "
        f"{figures.get('rows_quarantined', 0)} quarantined, "
        f"{figures.get('partitions_written', 0)} partitions written, "
        f"{figures.get('partitions_removed', 0)} removed"
    )


def metadata(figures: dict[str, Any]) -> dict[str, Any]:
    """Pipes metadata: typed where Dagster would guess wrong."""
    metadata: dict[str, Any] = {}
    for key, value in figures.items():
        if isinstance(value, dict | list):
            metadata[key] = {"raw_value": value, "type": "json"}
        elif isinstance(value, int):
            metadata[key] = {"raw_value": value, "type": "int"}
        else:
            metadata[key] = {"raw_value": str(value), "type": "text"}
    metadata["dagster/row_count"] = {"raw_value": figures.get("rows_loaded", 0), "type": "int"}
    return metadata
