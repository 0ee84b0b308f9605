"""Calibration statistics for walk-forward scenario forecasts (PIT, VaR and ES backtests, CRPS)."""
