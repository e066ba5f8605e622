//! Host-side card commands and the ID card client.
