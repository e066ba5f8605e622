//! ISO/IEC 7816-4 §5.1 response APDUs.
//!
//! A [`RawResponse`] is whatever the card answered. A [`Response`] can only be made from a
//! successful (9000) raw response, so code holding a `Response` knows the command worked.

use crate::error::{Error, TransportError};
use crate::status::StatusWord;

/// A response as received: data field and status word.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawResponse {
    /// Response data field (may be empty).
    pub data: Vec<u8>,
    /// The trailing status word.
    pub sw: StatusWord,
}

impl RawResponse {
    /// Splits a wire response into data and status word. Fewer than two bytes is a transport
    /// error: a card pulled mid-command answers with an empty buffer.
    pub fn parse(bytes: &[u8]) -> Result<Self, Error> {
        if bytes.len() < 2 {
            return Err(Error::Transport(TransportError::ShortResponse {
                len: bytes.len(),
            }));
        }
        let (data, sw) = bytes.split_at(bytes.len() - 2);
        Ok(RawResponse {
            data: data.to_vec(),
            sw: StatusWord::from_bytes(sw[0], sw[1]),
        })
    }

    /// A response with only a status word.
    pub fn status(sw: StatusWord) -> Self {
        RawResponse {
            data: Vec::new(),
            sw,
        }
    }

    /// Wire form: data then SW1 SW2.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.data.len() + 2);
        out.extend_from_slice(&self.data);
        out.extend_from_slice(&self.sw.to_bytes());
        out
    }

    /// `Ok` only for 9000; any other status word becomes [`Error::Status`].
    pub fn into_result(self) -> Result<Response, Error> {
        match self.sw {
            StatusWord::Success => Ok(Response { data: self.data }),
            sw => Err(Error::Status(sw)),
        }
    }
}

/// A successful (9000) response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Response {
    /// Response data field.
    pub data: Vec<u8>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_responses_are_transport_errors() {
        for bytes in [&[][..], &[0x90][..]] {
            assert!(matches!(
                RawResponse::parse(bytes),
                Err(Error::Transport(TransportError::ShortResponse { .. }))
            ));
        }
    }

    #[test]
    fn only_9000_makes_a_response() {
        let ok = RawResponse::parse(&[1, 2, 0x90, 0]).unwrap();
        assert_eq!(ok.clone().into_result().unwrap().data, [1, 2]);
        assert_eq!(ok.to_bytes(), [1, 2, 0x90, 0]);
        let err = RawResponse::parse(&[0x6A, 0x82]).unwrap().into_result();
        assert!(matches!(err, Err(Error::Status(StatusWord::FileNotFound))));
    }
}
