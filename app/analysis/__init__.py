"""Statistical analysis of Kairos trial data (micro-randomized trials)."""

from app.analysis.decisions_csv import load_columns
from app.analysis.wcls import EffectCoefficient, WclsResult, wcls

__all__ = ["EffectCoefficient", "WclsResult", "load_columns", "wcls"]
