//! Bridge from a [`super::CardHandler`] to Debian's vsmartcard-vpcd driver, so pcscd shows the simulated card in an ordinary reader.
