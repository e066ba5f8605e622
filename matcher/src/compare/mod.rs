//! 1:1 comparison: probe preparation, similarity score, multi-finger fusion, thresholds.
