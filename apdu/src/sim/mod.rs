//! The simulated national ID card (card side). See `docs/card-profile.md`.
