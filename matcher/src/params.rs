//! Every tuning constant of extraction and comparison, in one place.
