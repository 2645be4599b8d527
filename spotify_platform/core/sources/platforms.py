"""Normalise the free-text ``platform`` field of Spotify data exports to a small vocabulary.

Exports mix app strings ("Android OS 12 API 31 (samsung, SM-G991B)"), bare names ("ios"), web
player strings and Spotify Connect partner devices ("Partner sonos_ppc Sonos;Play:5"). KPIs need
the device family only. Rules are tried in order, most specific first, because partner strings
often embed an OS name (``android_tv``, ``android_auto``) and web player strings name the
desktop OS they run on.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

UNKNOWN_PLATFORM = "unknown"
OTHER_PLATFORM = "other"

PLATFORMS: tuple[str, ...] = (
    "android",
    "ios",
    "windows",
    "macos",
    "linux",
    "web",
    "tv",
    "speaker",
    "cast",
    "car",
    "console",
    "wearable",
    OTHER_PLATFORM,
    UNKNOWN_PLATFORM,
)

# Word edges that only look at letters, so "android_tv" contains "tv" and "ps4" is a word.
_L = r"(?<![a-z])"
_R = r"(?![a-z])"

_RULES: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (name, re.compile(pattern))
    for name, pattern in (
        ("web", rf"^web{_R}|^web[ _-]?player|{_L}browser{_R}"),
        ("cast", rf"chromecast|{_L}cast{_R}|google_?cast"),
        (
            "car",
            rf"android_?auto|car_?play|car[ _]thing|superbird|{_L}vw{_R}|volkswagen|{_L}mib\d"
            rf"|{_L}(?:audi|bmw|porsche|skoda|cupra|tesla|volvo|polestar|ford|jlr)"
            rf"{_R}|mercedes|jaguar|land[ _]?rover|renault|hyundai|automotive|{_L}in[ _-]?car{_R}",
        ),
        ("wearable", r"wear[ _]?os|watch|garmin|fitbit"),
        ("console", rf"{_L}ps[2-5]{_R}|playstation|xbox|nintendo"),
        (
            "tv",
            rf"{_L}tv{_R}|tvos|tizen|webos|netcast|roku|firetv|appletv|smarttv|androidtv"
            rf"|bravia|vizio|vidaa",
        ),
        (
            "speaker",
            rf"sonos|{_L}echo{_R}|alexa|amazon_|google_?home|{_L}nest{_R}|homepod|speaker"
            rf"|{_L}bose{_R}|soundtouch|denon|{_L}heos{_R}|bluesound|{_L}jbl{_R}|harman"
            rf"|marshall|libratone|bang[ _&]+olufsen|{_L}b&o{_R}|yamaha|{_L}onkyo{_R}",
        ),
        ("android", r"android"),
        ("ios", rf"{_L}(?:ios|ipados){_R}|iphone|ipad|ipod"),
        ("macos", rf"{_L}os ?x{_R}|macos|mac ?os|macintosh|darwin"),
        ("windows", rf"windows|{_L}win(?:32|64|10|11)?{_R}"),
        ("linux", r"linux|ubuntu|debian|fedora"),
    )
)


def classify_platform(raw: str | None) -> str:
    """Device family of one raw platform string; the per-value rule behind `normalise_platform`."""
    if raw is None or (isinstance(raw, float) and raw != raw):
        return UNKNOWN_PLATFORM
    text = str(raw).strip().lower()
    if not text:
        return UNKNOWN_PLATFORM
    for name, pattern in _RULES:
        if pattern.search(text):
            return name
    return OTHER_PLATFORM


def normalise_platform(raw: pd.Series) -> pd.Series:
    """Map raw export ``platform`` strings to `PLATFORMS`; nulls and blanks become "unknown".

    Exports repeat a handful of distinct strings millions of times, so each distinct value is
    classified once and the result is broadcast back by its factor code.
    """
    codes, uniques = pd.factorize(raw.to_numpy(), use_na_sentinel=True)
    # The extra last slot is what the -1 code of a null value indexes.
    labels = [classify_platform(value) for value in uniques] + [UNKNOWN_PLATFORM]
    lookup = np.array(labels, dtype=object)
    return pd.Series(lookup[codes], index=raw.index, name=raw.name, dtype=object)
