//! Secure messaging (ISO/IEC 7816-4 §10) and card key derivation.
