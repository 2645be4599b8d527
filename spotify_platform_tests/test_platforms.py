"""Raw export platform strings → device family vocabulary."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from spotify_platform.core.sources import platforms
from spotify_platform.core.sources.platforms import PLATFORMS, normalise_platform

REAL_EXAMPLES = [
    ("Android OS 12 API 31 (samsung, SM-G991B)", "android"),
    ("android", "android"),
    ("Android-tablet OS 11 API 30 (samsung, SM-T870)", "android"),
    ("Android OS 9 API 28 (Amazon, KFMUWI)", "android"),
    ("iOS 17.1 (iPhone15,2)", "ios"),
    ("ios", "ios"),
    ("iPadOS 17.2 (iPad13,4)", "ios"),
    ("Windows 10 (10.0.19045; x64)", "windows"),
    ("windows", "windows"),
    ("OS X 14.1.1 [arm 2]", "macos"),
    ("osx", "macos"),
    ("Linux [x86-64 0]", "linux"),
    ("linux", "linux"),
    ("web_player windows 10;chrome 120.0.0.0;desktop", "web"),
    ("web_player linux ;firefox 121.0;desktop", "web"),
    ("WebPlayer (websocket RFC6455)", "web"),
    ("Partner sonos_ppc Sonos;Play:5", "speaker"),
    ("Partner amazon_salmon Amazon;Echo Dot", "speaker"),
    ("Partner android_tv Sony;BRAVIA 4K", "tv"),
    ("Partner samsung_tizen Samsung;QE55Q80", "tv"),
    ("Partner webos LG;OLED55C1", "tv"),
    ("Partner amazon_fire_tv Amazon;AFTMM", "tv"),
    ("Partner google cast_tv", "cast"),
    ("cast_to_device", "cast"),
    ("chromecast", "cast"),
    ("Partner ps4 Sony;PS4", "console"),
    ("xbox one", "console"),
    ("Partner vw_mib3 Volkswagen;MIB3", "car"),
    ("Partner android_auto Google;Android Auto", "car"),
    ("carplay", "car"),
    ("Partner wear_os Google;Wear OS", "wearable"),
    ("watchos", "wearable"),
    ("Partner some_new_thing Acme;Gadget", "other"),
    ("toaster", "other"),
]


@pytest.mark.parametrize(("raw", "family"), REAL_EXAMPLES)
def test_real_examples(raw: str, family: str) -> None:
    assert normalise_platform(pd.Series([raw])).tolist() == [family]


def test_case_insensitive() -> None:
    raw = pd.Series(["ANDROID", "iOS", "OSX", "XBOX ONE", "CarPlay", "WATCHOS", "Web_Player x"])
    expected = ["android", "ios", "macos", "console", "car", "wearable", "web"]
    assert normalise_platform(raw).tolist() == expected


def test_nulls_and_blanks_are_unknown() -> None:
    raw = pd.Series([None, np.nan, "", "   ", "ios"], dtype=object)
    assert normalise_platform(raw).tolist() == ["unknown"] * 4 + ["ios"]
    string_dtype = pd.Series(["android", pd.NA], dtype="string")
    assert normalise_platform(string_dtype).tolist() == ["android", "unknown"]


def test_vocabulary_is_closed() -> None:
    raw = pd.Series([raw for raw, _ in REAL_EXAMPLES] + [None, ""])
    assert set(normalise_platform(raw)) <= set(PLATFORMS)
    assert len(PLATFORMS) == len(set(PLATFORMS)) == 14


def test_keeps_index_and_name() -> None:
    raw = pd.Series(["ios", "linux"], index=[7, 2], name="platform")
    result = normalise_platform(raw)
    assert result.index.tolist() == [7, 2]
    assert result.name == "platform"
    assert result.dtype == object


def test_classifies_each_distinct_value_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[object] = []
    real = platforms.classify_platform

    def counting(value: str | None) -> str:
        calls.append(value)
        return real(value)

    monkeypatch.setattr(platforms, "classify_platform", counting)
    raw = pd.Series(["ios", "android", None] * 10_000)
    result = normalise_platform(raw)
    assert sorted(calls) == ["android", "ios"]
    assert result.value_counts().to_dict() == {"ios": 10_000, "android": 10_000, "unknown": 10_000}
