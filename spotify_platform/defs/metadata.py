"""What each asset's page in the Dagster UI says about it, from the same models that validate
its rows: columns with types and descriptions, the table it lives in, who owns it, and where in
the repository's docs/ its definition is.

Applied to every asset of the code location in `definitions.py`, so the asset modules keep to
what an asset computes.
"""

import pandera.pandas as pa
from dagster import (
    AssetSpec,
    TableColumn,
    TableColumnConstraints,
    TableSchema,
)

from spotify_platform.core.contracts import schemas
from spotify_platform.core.contracts.tables import TABLE_DEFS

OWNERS = ["team:data-platform"]
# Lake assets with a contract of their own: their Parquet files hold these columns.
LAKE_MODELS: dict[tuple[str, ...], type[pa.DataFrameModel]] = {
    ("lake", "staging_streams"): schemas.StagingStreams,
    ("lake", "quarantined_streams"): schemas.Quarantine,
}
LAYERS = {"lake": "lake", "warehouse": "warehouse"}


def column_schema(model: type[pa.DataFrameModel]) -> TableSchema:
    """The model's columns as Dagster's table schema: name, dtype, description, nullability."""
    return TableSchema(
        columns=[
            TableColumn(
                name=name,
                type=str(column.dtype),
                description=column.description,
                constraints=TableColumnConstraints(
                    nullable=bool(column.nullable), unique=bool(column.unique)
                ),
            )
            for name, column in model.to_schema().columns.items()
        ]
    )


def definition(path: tuple[str, ...]) -> str:
    """The docs page (and section) that defines the asset's data."""
    if path[0] == "warehouse" and path[-1].startswith("kpi_"):
        return f"docs/kpis.md#{path[-1]}"
    if path[0] == "warehouse":
        return "docs/warehouse.md"
    if path[-1] == "dashboard":
        return "docs/kpis.md#the-dashboard"
    return "docs/lake.md"


def describe(spec: AssetSpec) -> AssetSpec:
    """`spec` with its column schema, table name, owners and layer tag where they apply."""
    metadata: dict[str, object] = {}
    path = tuple(spec.key.path)
    if path[0] == "warehouse" and path[-1] in TABLE_DEFS:
        metadata["dagster/column_schema"] = column_schema(TABLE_DEFS[path[-1]].model)
        metadata["dagster/table_name"] = path[-1]
    elif path in LAKE_MODELS:
        metadata["dagster/column_schema"] = column_schema(LAKE_MODELS[path])
    metadata["definition"] = definition(path)
    tags = {"layer": LAYERS[path[0]]} if path[0] in LAYERS else {}
    return spec.merge_attributes(metadata=metadata, owners=OWNERS, tags=tags)
