//! Constructors for the card commands the host sends, each citing its clause of ISO/IEC 7816-4/-9.
