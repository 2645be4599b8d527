"""Data contracts: one pandera model per table the platform writes.

The models are the single description of each table: staging validates with them, rows that
fail go to quarantine with the failing column and check as the reason, and the warehouse DDL
(`core.contracts.tables`) is generated from their dtypes, nullability and `max_length`.
"""

from typing import Annotated

import pandas as pd
import pandera.pandas as pa
from pandera.dtypes import immutable
from pandera.engines import pandas_engine
from pandera.typing import Series

from spotify_platform.core.sources.countries import KNOWN_COUNTRIES
from spotify_platform.core.sources.platforms import PLATFORMS

UTC_TIMESTAMP = Annotated[pd.DatetimeTZDtype, "ns", "UTC"]


def _objects_all_text(values: object) -> bool:
    """Whether a column of Python objects holds only text and missing values, by pandas'
    C-level type inference.

    pandera's string dtypes find out by mapping `isinstance(str)` over every value, also for
    text held by Arrow, where the dtype says so: that was a quarter of the staging contract's
    time per block and a third of an aggregate's validation. The dtypes below answer without
    it when every value passes, and leave a column that fails to pandera for its report."""
    return (
        isinstance(values, pd.Series)
        and values.dtype == object
        and pd.api.types.infer_dtype(values) in ("string", "empty")
    )


class _TextCheck:
    """The dtype check of the text dtypes below: a passing column in one step, anything else
    left to pandera (`_objects_all_text`)."""

    def holds_text(self, dtype: object) -> bool:
        raise NotImplementedError

    def check(self, pandera_dtype, data_container=None):
        if data_container is not None and (
            self.holds_text(data_container.dtype) or _objects_all_text(data_container)
        ):
            return True
        return super().check(pandera_dtype, data_container)


@pandas_engine.Engine.register_dtype
@immutable(init=True)
class ArrowStr(_TextCheck, pandas_engine.STRING):
    """Text held by Arrow (`string[pyarrow]`): pandera's string checks run as Arrow kernels."""

    storage: str | None = "pyarrow"

    def holds_text(self, dtype: object) -> bool:
        return dtype == self.type


@pandas_engine.Engine.register_dtype
@immutable
class Str(_TextCheck, pandas_engine.NpString):
    """`str`: text as Python objects or in a pandas string dtype (Arrow's, mostly)."""

    def holds_text(self, dtype: object) -> bool:
        return isinstance(dtype, pd.StringDtype)


CONTENT_TYPES = ("track", "episode", "audiobook")
SOURCES = ("simulator", "export", "api")
EARLIEST_PLAY = pd.Timestamp("2006-01-01", tz="UTC")
MAX_MS_PLAYED = 24 * 3600 * 1000
TRACK_ID_PATTERN = r"^(?:[0-9A-Za-z]{22}|~[0-9a-f]{21})$"
HEX_ID_PATTERN = r"^[0-9a-f]{32}$"
NAME_SEEN_AT = (
    "End of the latest play seen, whose names the row holds; NULL in rows from before names "
    "followed the latest play, which the next load renames"
)


def text(max_length: int, *, nullable: bool = False, description: str, **checks) -> object:
    """A string field whose length check and VARCHAR size come from one number."""
    return pa.Field(
        nullable=nullable,
        str_length={"max_value": max_length},
        description=description,
        metadata={"max_length": max_length},
        **checks,
    )


def count(description: str) -> object:
    return pa.Field(ge=0, description=description)


def fraction(description: str, *, nullable: bool = True) -> object:
    return pa.Field(ge=0.0, le=1.0, nullable=nullable, description=description)


def day(description: str = "UTC day (partition key)") -> object:
    return pa.Field(description=description, metadata={"sql": "date"})


class StagingStreams(pa.DataFrameModel):
    """One listening event in canonical form; also the column set of `fact_streams`."""

    event_id: Series[ArrowStr] = text(
        32,
        unique=True,
        str_matches=HEX_ID_PATTERN,
        description="Hash of account, ended_at, content and ms_played: one row per real play",
    )
    account_id: Series[ArrowStr] = text(
        32, str_matches=HEX_ID_PATTERN, description="Keyed HMAC of the account name"
    )
    source: Series[ArrowStr] = text(16, isin=SOURCES, description="Where the raw record came from")
    ended_at: Series[UTC_TIMESTAMP] = pa.Field(
        ge=EARLIEST_PLAY, description="UTC instant the play ended (the export's ts)"
    )
    started_at: Series[UTC_TIMESTAMP] = pa.Field(description="ended_at - ms_played")
    ms_played: Series[int] = pa.Field(
        ge=0, le=MAX_MS_PLAYED, description="Milliseconds played; more than a day is absurd"
    )
    content_type: Series[ArrowStr] = text(
        16, isin=CONTENT_TYPES, description="track/episode/audiobook"
    )
    track_id: Series[ArrowStr] = text(
        22,
        nullable=True,
        str_matches=TRACK_ID_PATTERN,
        description="Spotify track id, or '~' + hash of artist and track names for old exports",
    )
    track_name: Series[ArrowStr] = text(512, nullable=True, description="Track title")
    artist_id: Series[ArrowStr] = text(
        22, nullable=True, description="'~' + hash of the artist name: exports carry no artist id"
    )
    artist_name: Series[ArrowStr] = text(512, nullable=True, description="Album artist name")
    album_name: Series[ArrowStr] = text(512, nullable=True, description="Album title")
    episode_name: Series[ArrowStr] = text(
        512, nullable=True, description="Podcast episode or chapter"
    )
    show_name: Series[ArrowStr] = text(512, nullable=True, description="Podcast show or audiobook")
    country: Series[ArrowStr] = text(
        2, isin=sorted(KNOWN_COUNTRIES), description="ISO 3166-1 alpha-2; ZZ when unknown"
    )
    platform: Series[ArrowStr] = text(16, isin=PLATFORMS, description="Normalised device family")
    reason_start: Series[ArrowStr] = text(32, nullable=True, description="Why the play started")
    reason_end: Series[ArrowStr] = text(32, nullable=True, description="Why the play ended")
    shuffle: Series[pd.BooleanDtype] = pa.Field(nullable=True, description="Shuffle mode on")
    skipped: Series[bool] = pa.Field(
        description="Export flag, or reason_end fwdbtn/backbtn/endplay (flag unreliable 2015-22)"
    )
    offline: Series[pd.BooleanDtype] = pa.Field(nullable=True, description="Played offline")
    incognito: Series[pd.BooleanDtype] = pa.Field(nullable=True, description="Private session")
    is_stream: Series[bool] = pa.Field(description="Track play of at least 30 seconds")
    dt: Series[pd.Timestamp] = day("UTC date of ended_at: the partition")
    utc_hour: Series[pd.Int8Dtype] = pa.Field(ge=0, le=23, description="UTC hour of started_at")
    local_hour: Series[pd.Int8Dtype] = pa.Field(
        ge=0, le=23, description="Hour of started_at in the country's capital time zone"
    )

    @pa.dataframe_check(description="dt is the UTC date of ended_at (the partition)")
    def ended_on_partition_day(cls, df: pd.DataFrame) -> Series[bool]:
        return df["ended_at"].dt.tz_localize(None).dt.normalize() == df["dt"]

    @pa.dataframe_check(description="track plays carry a track id and names")
    def tracks_are_identified(cls, df: pd.DataFrame) -> Series[bool]:
        is_track = df["content_type"] == "track"
        named = df["track_id"].notna() & df["track_name"].notna() & df["artist_name"].notna()
        return ~is_track | named

    @pa.dataframe_check(description="ended_at is not in the future")
    def not_in_future(cls, df: pd.DataFrame) -> Series[bool]:
        return df["ended_at"] <= pd.Timestamp.now(tz="UTC") + pd.Timedelta(minutes=10)

    class Config:
        strict = True
        ordered = False


class Quarantine(pa.DataFrameModel):
    """A rejected raw record, with personal fields removed, and why it was rejected."""

    dt: Series[pd.Timestamp] = day()
    source_file: Series[Str] = text(512, description="Lake key of the raw file")
    line: Series[int] = pa.Field(ge=1, description="1-based line number in the raw file")
    reason: Series[Str] = text(1024, description="Failing field and check")
    record: Series[Str] = pa.Field(description="Raw record as JSON without personal fields")


class DimTracks(pa.DataFrameModel):
    track_id: Series[Str] = text(22, str_matches=TRACK_ID_PATTERN, description="Track id")
    track_name: Series[Str] = text(512, description="Track title of its latest play seen")
    artist_id: Series[Str] = text(22, description="Artist surrogate id (name hash)")
    artist_name: Series[Str] = text(512, description="Album artist of its latest play seen")
    name_seen_at: Series[UTC_TIMESTAMP] = pa.Field(nullable=True, description=NAME_SEEN_AT)
    spotify_artist_id: Series[Str] = text(22, nullable=True, description="Spotify id if known")
    album_name: Series[Str] = text(512, nullable=True, description="Album title")
    duration_ms: Series[pd.Int64Dtype] = pa.Field(ge=0, nullable=True, description="Length")
    popularity: Series[pd.Int64Dtype] = pa.Field(
        ge=0, le=100, nullable=True, description="Optional: development-mode apps lack it"
    )
    explicit: Series[pd.BooleanDtype] = pa.Field(nullable=True, description="Explicit lyrics")
    catalog_source: Series[Str] = text(
        16, isin=("catalog", "api", "plays"), description="Who described the track"
    )


class DimArtists(pa.DataFrameModel):
    artist_id: Series[Str] = text(22, description="'~' + hash of the artist name")
    artist_name: Series[Str] = text(512, description="Name in its latest play seen")
    name_seen_at: Series[UTC_TIMESTAMP] = pa.Field(nullable=True, description=NAME_SEEN_AT)
    spotify_artist_id: Series[Str] = text(22, nullable=True, description="Spotify id if known")
    primary_genre: Series[Str] = text(64, description="First genre, 'unknown' where none")
    genres: Series[Str] = text(1024, nullable=True, description="All genres, ' | ' separated")


class DimAccounts(pa.DataFrameModel):
    account_id: Series[Str] = text(32, str_matches=HEX_ID_PATTERN, description="Keyed HMAC")
    first_stream_dt: Series[pd.Timestamp] = pa.Field(
        nullable=True, description="Day of first stream ever", metadata={"sql": "date"}
    )
    last_stream_dt: Series[pd.Timestamp] = pa.Field(
        nullable=True, description="Day of latest stream", metadata={"sql": "date"}
    )
    active_days: Series[int] = count("Days with at least one stream")
    home_country: Series[Str] = text(2, description="Country of most plays on the latest day")


class AggAccountDaily(pa.DataFrameModel):
    dt: Series[pd.Timestamp] = day()
    account_id: Series[Str] = text(32, str_matches=HEX_ID_PATTERN, description="Keyed HMAC")
    plays: Series[int] = count("All plays")
    track_plays: Series[int] = count("Track plays")
    skipped_track_plays: Series[int] = count("Skipped track plays")
    streams: Series[int] = count("Track plays of at least 30 seconds")
    ms_played: Series[int] = count("Milliseconds of all plays")
    stream_ms_played: Series[int] = count("Milliseconds of streams")
    country: Series[Str] = text(2, description="Country of most plays that day")
    streamed: Series[bool] = pa.Field(
        description="streams > 0: an equality the windowed KPIs' index can skip along",
    )

    @pa.dataframe_check(description="streamed is exactly streams > 0")
    def streamed_means_streams(cls, df: pd.DataFrame) -> Series[bool]:
        return df["streamed"] == (df["streams"] > 0)


class AggAccountHourly(pa.DataFrameModel):
    dt: Series[pd.Timestamp] = day()
    account_id: Series[Str] = text(32, str_matches=HEX_ID_PATTERN, description="Keyed HMAC")
    utc_hour: Series[pd.Int8Dtype] = pa.Field(ge=0, le=23, description="UTC hour of started_at")
    country: Series[Str] = text(2, description="ISO 3166-1 alpha-2 of the plays")
    local_hour: Series[pd.Int8Dtype] = pa.Field(
        ge=0, le=23, description="Hour of started_at in the country's capital time zone"
    )
    platform: Series[Str] = text(16, description="Normalised device family")
    plays: Series[int] = count("All plays")
    streams: Series[int] = count("Track plays of at least 30 seconds")
    stream_ms_played: Series[int] = count("Milliseconds of streams")


class AggAccountSegmentDaily(pa.DataFrameModel):
    dt: Series[pd.Timestamp] = day()
    account_id: Series[Str] = text(32, str_matches=HEX_ID_PATTERN, description="Keyed HMAC")
    country: Series[Str] = text(2, description="ISO 3166-1 alpha-2 of the streams")
    platform: Series[Str] = text(16, description="Normalised device family")
    streams: Series[int] = pa.Field(ge=1, description="Streams of the account on that pair")


class AggAccountSessions(pa.DataFrameModel):
    """A run of one account's plays of one day (by `dt`), split where a play starts more than
    30 minutes after the latest end before it; kpi_sessions joins runs across midnight."""

    dt: Series[pd.Timestamp] = day()
    account_id: Series[Str] = text(32, str_matches=HEX_ID_PATTERN, description="Keyed HMAC")
    started_at: Series[UTC_TIMESTAMP] = pa.Field(description="Start of the run's first play")
    ended_at: Series[UTC_TIMESTAMP] = pa.Field(description="Latest end among the run's plays")
    plays: Series[int] = pa.Field(ge=1, description="Plays in the run")
    ms_played: Series[int] = count("Milliseconds of all its plays")


class AggArtistDaily(pa.DataFrameModel):
    dt: Series[pd.Timestamp] = day()
    artist_id: Series[Str] = text(22, description="'~' + hash of the artist name")
    artist_name: Series[Str] = text(512, description="Name in the day's latest play of it")
    streams: Series[int] = count("Streams of the artist")
    listeners: Series[int] = count("Accounts with a stream of the artist")
    ms_played: Series[int] = count("Milliseconds of those streams")


class AggTrackDaily(pa.DataFrameModel):
    dt: Series[pd.Timestamp] = day()
    track_id: Series[Str] = text(22, str_matches=TRACK_ID_PATTERN, description="Track id")
    track_name: Series[Str] = text(
        512, nullable=True, description="Title in the day's latest play of the track"
    )
    artist_name: Series[Str] = text(
        512, nullable=True, description="Artist in the day's latest play of the track"
    )
    streams: Series[int] = count("Streams of the track")
    listeners: Series[int] = count("Accounts with a stream of the track")
    ms_played: Series[int] = count("Milliseconds of those streams")


class KpiDailyStreams(pa.DataFrameModel):
    dt: Series[pd.Timestamp] = day()
    plays: Series[int] = count("All plays")
    streams: Series[int] = count("Track plays of at least 30 s")
    listeners: Series[int] = count("Accounts with a stream")
    minutes_played: Series[float] = pa.Field(ge=0, description="All plays, minutes")
    skip_rate: Series[float] = fraction("Skipped track plays / track plays")


class KpiActiveUsers(pa.DataFrameModel):
    dt: Series[pd.Timestamp] = day()
    dau: Series[int] = count("Accounts with a stream on dt")
    wau: Series[int] = count("Accounts with a stream in [dt-6, dt]")
    mau: Series[int] = count("Accounts with a stream in [dt-29, dt]")
    stickiness: Series[float] = fraction("dau / mau")


class KpiChurn(pa.DataFrameModel):
    dt: Series[pd.Timestamp] = day()
    base_accounts: Series[int] = count("Accounts with a stream in [dt-59, dt-30]")
    churned_accounts: Series[int] = count("Base accounts without a stream in [dt-29, dt]")
    churn_rate: Series[float] = fraction("churned / base; NULL when base is 0")


class KpiRetention(pa.DataFrameModel):
    cohort_week: Series[pd.Timestamp] = day("Monday of the week of the first stream")
    week_offset: Series[int] = count("Weeks after the cohort week")
    cohort_size: Series[int] = count("Accounts in the cohort")
    retained_accounts: Series[int] = count("Cohort accounts streaming in that week")
    retention_rate: Series[float] = fraction("retained / cohort size", nullable=False)


class KpiEngagementByRegionHour(pa.DataFrameModel):
    dt: Series[pd.Timestamp] = day()
    country: Series[Str] = text(2, description="ISO 3166-1 alpha-2")
    local_hour: Series[int] = pa.Field(ge=0, le=23, description="Local hour of started_at")
    streams: Series[int] = count("Streams")
    listeners: Series[int] = count("Accounts")
    minutes_played: Series[float] = pa.Field(ge=0, description="Streams, minutes")


class KpiEngagementByUtcHour(pa.DataFrameModel):
    dt: Series[pd.Timestamp] = day()
    utc_hour: Series[int] = pa.Field(ge=0, le=23, description="UTC hour of started_at")
    streams: Series[int] = count("Streams")
    listeners: Series[int] = count("Accounts")
    minutes_played: Series[float] = pa.Field(ge=0, description="Streams, minutes")


class KpiTopArtists(pa.DataFrameModel):
    dt: Series[pd.Timestamp] = day()
    rank: Series[int] = pa.Field(ge=1, le=50, description="Dense rank by streams")
    artist_name: Series[Str] = text(512, description="Artist name")
    streams: Series[int] = count("Streams")
    listeners: Series[int] = count("Accounts")
    minutes_played: Series[float] = pa.Field(ge=0, description="Streams, minutes")


class KpiTopTracks(pa.DataFrameModel):
    dt: Series[pd.Timestamp] = day()
    rank: Series[int] = pa.Field(ge=1, le=50, description="Dense rank by streams")
    track_id: Series[Str] = text(22, description="Track id")
    track_name: Series[Str] = text(512, description="Track title")
    artist_name: Series[Str] = text(512, description="Artist name")
    streams: Series[int] = count("Streams")
    listeners: Series[int] = count("Accounts")
    minutes_played: Series[float] = pa.Field(ge=0, description="Streams, minutes")


class KpiGenreShare(pa.DataFrameModel):
    dt: Series[pd.Timestamp] = day()
    genre: Series[Str] = text(64, description="Artist's primary genre or 'unknown'")
    streams: Series[int] = count("Streams")
    share: Series[float] = fraction("Share of the day's streams", nullable=False)


class KpiPlatformMix(pa.DataFrameModel):
    dt: Series[pd.Timestamp] = day()
    platform: Series[Str] = text(16, description="Normalised device family")
    plays: Series[int] = count("Plays")
    share: Series[float] = fraction("Share of the day's plays", nullable=False)


class KpiGrowthAccounting(pa.DataFrameModel):
    period: Series[Str] = text(5, isin=("week", "month"), description="Calendar period kind")
    period_start: Series[pd.Timestamp] = day("Monday of the week or 1st of the month (UTC)")
    active: Series[int] = count("Accounts with a stream in the period")
    new: Series[int] = count("Active, with no stream before the period")
    retained: Series[int] = count("Active in the period and in the previous one")
    resurrected: Series[int] = count("Active, not in the previous period, but in an earlier one")
    churned: Series[int] = count("Active in the previous period, not in this one")
    quick_ratio: Series[float] = pa.Field(
        ge=0, nullable=True, description="(new + resurrected) / churned; NULL when churned is 0"
    )
    days_through: Series[pd.Int64Dtype] = pa.Field(
        ge=0,
        nullable=True,
        description="Days with account aggregates up to the period's end when it was computed",
    )


class KpiListenersAtRisk(pa.DataFrameModel):
    dt: Series[pd.Timestamp] = day()
    country: Series[Str] = text(2, description="Country of the segment (ISO alpha-2)")
    platform: Series[Str] = text(16, description="Device family of the segment")
    active_28d: Series[int] = pa.Field(ge=1, description="Accounts with a stream in [dt-27, dt]")
    at_risk: Series[int] = count("Of those, accounts without a stream in [dt-6, dt]")
    at_risk_share: Series[float] = fraction("at_risk / active_28d", nullable=False)


class KpiSessions(pa.DataFrameModel):
    dt: Series[pd.Timestamp] = day("UTC day the sessions' first plays started on")
    sessions: Series[int] = count("Sessions starting on dt")
    listeners: Series[int] = count("Accounts with a session starting on dt")
    minutes: Series[float] = pa.Field(ge=0, description="ms_played of all their plays, minutes")
    avg_session_minutes: Series[float] = pa.Field(
        ge=0, nullable=True, description="minutes / sessions"
    )
    median_session_minutes: Series[float] = pa.Field(
        ge=0, nullable=True, description="Median of the sessions' minutes"
    )
    avg_plays_per_session: Series[float] = pa.Field(
        ge=1, nullable=True, description="Plays / sessions"
    )
