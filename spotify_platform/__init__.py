"""spotify_platform: Spotify listening data to lake, warehouse and KPIs, as Dagster assets."""

import warnings

from dagster import BetaWarning, PreviewWarning

warnings.filterwarnings("ignore", category=BetaWarning)
warnings.filterwarnings("ignore", category=PreviewWarning)
