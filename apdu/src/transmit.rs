//! The transmit chokepoint: every APDU the host sends goes through here.

use crate::command::Command;
use crate::error::Error;
use crate::response::RawResponse;

/// Secure messaging applied by the chokepoint to every command of a session
/// (ISO/IEC 7816-4 §10). Implemented by [`crate::sm`]; the chokepoint wraps each command before
/// encoding and unwraps each response after GET RESPONSE handling.
pub trait SecureChannel: Send {
    /// Protects a plain command (sets CLA 0x0C, builds DO87/DO97/DO8E).
    fn wrap(&mut self, cmd: &Command) -> Result<Command, Error>;
    /// Checks and decrypts a protected response (DO87/DO99/DO8E) back to a plain response.
    fn unwrap(&mut self, resp: &RawResponse) -> Result<RawResponse, Error>;
    /// Worst-case bytes secure messaging adds to a command data field of `nc` bytes, so large
    /// writes can be split into pieces that still fit the card after wrapping.
    fn command_overhead(&self, nc: usize) -> usize;
    /// Worst-case bytes secure messaging adds to a response data field of `ne` bytes.
    fn response_overhead(&self, ne: usize) -> usize;
}
