"""The Dagster layer: assets, checks, resources, jobs, schedules and sensors over `core`."""

import warnings

from dagster import BetaWarning, PreviewWarning

warnings.filterwarnings("ignore", category=BetaWarning)
warnings.filterwarnings("ignore", category=PreviewWarning)
