"""Face and plate search, their indexes, reports and threshold calibration."""
