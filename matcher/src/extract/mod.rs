//! Extraction as a flat list of pure stages.
