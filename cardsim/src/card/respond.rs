//! The command pipeline around each instruction: parsing and class checks, the terminated
//! card's gate, secure messaging unwrap/wrap, and response chaining (`61xx`, GET RESPONSE).

use apdu::command::Command;
use apdu::layout;
use apdu::response::RawResponse;
use apdu::sm;

use super::{sw2_remaining, Ctx, SimCard, Sw};

impl SimCard {
    /// Largest plain data field whose protected form fits the response limit.
    fn sm_resp_cap(&self) -> usize {
        let max = self.state.geometry.max_response_data;
        let wrapped = |n: usize| {
            let do87 = if n == 0 {
                0
            } else {
                let v = sm::padded_len(n) + 1;
                1 + apdu::tlv::length_size(v) + v
            };
            do87 + 4 + 2 + sm::MAC_LEN
        };
        let mut n = max;
        while n > 0 && wrapped(n) > max {
            n -= 1;
        }
        n
    }

    /// The whole command pipeline: parsing, class checks, secure messaging, life cycle, the
    /// instruction. `torn` makes the card refuse every command but UPDATE BINARY (the transport
    /// pulls the card during the command).
    pub(super) fn respond(&mut self, bytes: &[u8], torn: bool) -> Vec<u8> {
        let plain_sw = |sw: Sw| sw.to_bytes().to_vec();
        // GET RESPONSE is outside secure messaging and leaves the session alone.
        if !torn && bytes.len() >= 4 && bytes[0] == 0x00 && bytes[1] == 0xC0 {
            return self.get_response(bytes);
        }
        self.pending = None;
        // Anything that is not a valid protected command ends the session.
        let extended = bytes.len() > 5 && bytes[4] == 0;
        let cmd = match Command::parse(bytes) {
            Ok(c) => c,
            Err(_) => {
                self.session = None;
                return plain_sw(Sw::WrongLength);
            }
        };
        let g = self.state.geometry;
        if (extended && !g.extended_length) || cmd.data.len() > g.max_command_data {
            self.session = None;
            return plain_sw(Sw::WrongLength);
        }
        let early = if cmd.cla == 0xFF || cmd.cla & 0x80 != 0 {
            Some(Sw::ClaNotSupported)
        } else if cmd.cla & 0x03 != 0 {
            Some(Sw::LogicalChannelNotSupported)
        } else if cmd.cla & 0x10 != 0 {
            Some(Sw::ChainingNotSupported)
        } else if cmd.cla & 0x0C == 0x04 || cmd.cla & 0x0C == 0x08 {
            Some(Sw::SecureMessagingNotSupported)
        } else {
            None
        };
        if let Some(sw) = early {
            self.session = None;
            return plain_sw(sw);
        }
        if self.state.lcs().is_terminated() {
            // A terminated card answers only the plain GET DATA of its serial and life cycle.
            self.session = None;
            let readable = cmd.cla == 0
                && cmd.ins == 0xCA
                && [layout::DO_SERIAL, layout::DO_LCS]
                    .contains(&u16::from_be_bytes([cmd.p1, cmd.p2]));
            if !readable {
                return plain_sw(Sw::ConditionsNotSatisfied);
            }
        }
        if cmd.is_secure_messaging() {
            let Some(mut session) = self.session.take() else {
                return plain_sw(Sw::SmObjectsIncorrect);
            };
            let plain = match session.sm.unwrap_command(&cmd) {
                Ok(p) => p,
                Err(sw) => return plain_sw(sw),
            };
            let ctx = Ctx {
                auth: Some(session.auth),
                resp_cap: self.sm_resp_cap(),
            };
            let reply = self.run(&plain, ctx, torn);
            let out = session.sm.wrap_response(&reply.data, reply.sw);
            if self.session.is_none() && !self.state.lcs().is_terminated() {
                self.session = Some(session);
            }
            self.limit_to_ne(out, cmd.ne)
        } else {
            self.session = None;
            let ctx = Ctx {
                auth: None,
                resp_cap: g.max_response_data,
            };
            let reply = self.run(&cmd, ctx, torn);
            RawResponse {
                data: reply.data,
                sw: reply.sw,
            }
            .to_bytes()
        }
    }

    /// A protected response longer than the Ne of the command on the wire (typically Le = 00
    /// while the plain data plus the SM objects exceed 256 bytes) is cut at Ne with `61xx`; GET
    /// RESPONSE fetches the rest (ISO/IEC 7816-4 §5.3.4).
    fn limit_to_ne(&mut self, out: Vec<u8>, ne: Option<usize>) -> Vec<u8> {
        let Some(ne) = ne else { return out };
        let split = out.len().saturating_sub(2);
        if split <= ne {
            return out;
        }
        let sw = [out[split], out[split + 1]];
        let mut first = out[..ne].to_vec();
        let rest = out[ne..split].to_vec();
        first.extend_from_slice(&[0x61, sw2_remaining(rest.len())]);
        self.pending = Some((rest, sw));
        first
    }

    /// GET RESPONSE (C0): P1-P2 `0000`, the next Ne bytes held back by `61xx`.
    fn get_response(&mut self, bytes: &[u8]) -> Vec<u8> {
        let cmd = match Command::parse(bytes) {
            Ok(c) if c.data.is_empty() => c,
            _ => return Sw::WrongLength.to_bytes().to_vec(),
        };
        if cmd.p1 != 0 || cmd.p2 != 0 {
            return Sw::IncorrectP1P2.to_bytes().to_vec();
        }
        let Some((mut rest, sw)) = self.pending.take() else {
            return Sw::ConditionsNotSatisfied.to_bytes().to_vec();
        };
        let n = cmd
            .ne
            .unwrap_or(apdu::command::SHORT_MAX_NE)
            .min(rest.len());
        let mut out: Vec<u8> = rest.drain(..n).collect();
        if rest.is_empty() {
            out.extend_from_slice(&sw);
        } else {
            out.extend_from_slice(&[0x61, sw2_remaining(rest.len())]);
            self.pending = Some((rest, sw));
        }
        out
    }
}
