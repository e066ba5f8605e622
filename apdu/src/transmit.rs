//! The transmit chokepoint.
