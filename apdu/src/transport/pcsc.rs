//! PC/SC transport (written by the PC/SC work).
