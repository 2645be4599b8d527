"""The contracts' text dtypes answer pandera's dtype check as pandera's own string dtypes do:
text in any storage and missing values pass, anything else fails with its values named."""

import pandas as pd
import pandera.errors
import pandera.pandas as pa
import pytest
from pandera.typing import Series

from spotify_platform.core.contracts.schemas import ArrowStr, Str


class _Text(pa.DataFrameModel):
    name: Series[Str] = pa.Field(nullable=True)


class _ArrowText(pa.DataFrameModel):
    name: Series[ArrowStr] = pa.Field(nullable=True)


VALUES = ["Sigur Rós", None, "東京事変", pd.NA]


@pytest.mark.parametrize("model", [_Text, _ArrowText])
@pytest.mark.parametrize(
    "column",
    [
        pd.Series(VALUES, dtype="string[pyarrow]"),
        pd.Series(VALUES, dtype=object),
        pd.Series([None, None], dtype=object),
        pd.Series([], dtype=object),
    ],
    ids=["arrow", "objects", "all-missing", "empty"],
)
def test_text_and_missing_values_pass(model, column):
    assert model.validate(pd.DataFrame({"name": column}))["name"].equals(column)


@pytest.mark.parametrize("model", [_Text, _ArrowText])
def test_values_that_are_not_text_fail_by_name(model):
    frame = pd.DataFrame({"name": pd.Series(["a", 7, None, 2.5], dtype=object)})
    with pytest.raises(pandera.errors.SchemaErrors) as failed:
        model.validate(frame, lazy=True)
    cases = failed.value.failure_cases
    dtype_cases = cases[cases["check"].astype(str).str.startswith("dtype(")]
    assert set(dtype_cases["column"]) == {"name"}
    assert sorted(map(str, dtype_cases["failure_case"])) == ["2.5", "7"]


def test_arrow_text_is_not_any_pandas_string():
    """`ArrowStr` is Arrow storage: pandas' Python-backed strings fail as before."""
    frame = pd.DataFrame({"name": pd.Series(VALUES, dtype="string[python]")})
    with pytest.raises(pandera.errors.SchemaError, match="string\\[pyarrow\\]"):
        _ArrowText.validate(frame)
    assert _Text.validate(frame)["name"].equals(frame["name"])
