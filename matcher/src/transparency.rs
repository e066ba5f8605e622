//! Publishing intermediate results of extraction for debugging and reports.
