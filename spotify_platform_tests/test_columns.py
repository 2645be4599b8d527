"""Arrow-backed text columns: trimmed, missing where blank, and combined element-wise."""

import numpy as np
import pandas as pd
import pyarrow as pa

from spotify_platform.core.staging.columns import (
    coalesce,
    is_missing,
    joined,
    labelled,
    large_strings,
    only_where,
    string_series,
    text,
)


def test_text_trims_and_makes_blanks_missing_and_other_values_text():
    got = text(pd.Series([" a ", "", "  ", None, np.nan, 12, True, "ü\t"], dtype=object))
    assert got.tolist()[:1] == ["a"]
    assert got.isna().tolist() == [False, True, True, True, True, False, False, False]
    assert got.tolist()[5:] == ["12", "True", "ü"]
    assert str(got.dtype) == "string"
    arrow = text(pd.Series([" x", None], dtype="string[pyarrow]", index=[5, 7]))
    assert arrow.tolist()[0] == "x" and arrow.isna().tolist() == [False, True]
    assert list(arrow.index) == [5, 7]


def test_columns_combine_element_wise_keeping_the_index():
    index = pd.Index([3, 1, 2])
    a = pd.Series(["a", None, "c"], dtype="string[pyarrow]", index=index)
    b = pd.Series(["x", "y", None], dtype="string[pyarrow]", index=index)
    assert coalesce(a, b, "-").tolist() == ["a", "y", "c"]
    assert coalesce(b, "-").tolist() == ["x", "y", "-"]
    both = joined("<", a, "|", b)
    assert both.tolist()[0] == "<a|x" and both.isna().tolist() == [False, True, True]
    assert only_where(a, np.array([True, True, False])).isna().tolist() == [False, True, True]
    assert labelled(np.array([1, 0, 1]), ["no", "yes"], index).tolist() == ["yes", "no", "yes"]
    for series in (
        coalesce(a, b),
        both,
        only_where(a, [True] * 3),
        labelled([0] * 3, ["z"], index),
    ):
        assert list(series.index) == [3, 1, 2]
    assert large_strings(a).type == pa.large_string() and large_strings("s").as_py() == "s"
    assert string_series(pa.array(["q"]), pd.Index([9])).tolist() == ["q"]
    assert [is_missing(v) for v in (None, pd.NA, float("nan"), 0, "")] == [
        True,
        True,
        True,
        False,
        False,
    ]
