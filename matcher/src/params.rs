//! Every tuning constant of extraction and comparison, in one place, each with a line saying
//! what it does. Constants are expressed at 500 dpi; images at other resolutions are rescaled
//! before extraction, so nothing here depends on a particular sensor or data set.

// ===== Extraction =====

// ===== Comparison =====
