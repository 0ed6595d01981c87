//! Metric anomaly windows: learned baselines, anomaly scores, windows with hysteresis.
