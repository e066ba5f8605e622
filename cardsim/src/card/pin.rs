//! PIN and PUK: VERIFY, CHANGE REFERENCE DATA and RESET RETRY COUNTER.

use apdu::command::Command;
use apdu::layout::{self, PIN_REF, PUK_REF};
use apdu::sm;

use super::{Auth, Ctx, Reply, Res, SimCard, Sw};
use crate::state::{CardState, Secret};

impl SimCard {
    fn secret(&self, reference: u8) -> Result<&Secret, Sw> {
        match reference {
            PIN_REF => Ok(&self.state.pin),
            PUK_REF => Ok(&self.state.puk),
            _ => Err(Sw::ReferenceDataNotFound),
        }
    }

    /// A new PIN or PUK value: ASCII digits of the allowed length.
    fn well_formed(reference: u8, value: &[u8]) -> Result<(), Sw> {
        let min = if reference == PUK_REF {
            layout::PUK_MIN_LEN
        } else {
            layout::PIN_MIN_LEN
        };
        if value.len() < min
            || value.len() > layout::SECRET_MAX_LEN
            || !value.iter().all(u8::is_ascii_digit)
        {
            return Err(Sw::IncorrectData);
        }
        Ok(())
    }

    /// Presents `candidate` for `reference`: the counter is decremented and persisted first,
    /// then restored on a match. Answers 63Cx, or 6983 when this attempt used the last try.
    fn present(&mut self, reference: u8, candidate: &[u8]) -> Result<(), Sw> {
        let secret = self.secret(reference)?.clone();
        let value = secret.value.ok_or(Sw::ReferenceDataNotUsable)?;
        if secret.tries_left == 0 {
            return Err(Sw::AuthenticationBlocked);
        }
        let max = if reference == PUK_REF {
            layout::PUK_MAX_TRIES
        } else {
            layout::PIN_MAX_TRIES
        };
        let mut next = self.state.clone();
        secret_mut(&mut next, reference).tries_left = secret.tries_left - 1;
        self.commit(next)?;
        if sm::ct_eq(&value, candidate) {
            let mut next = self.state.clone();
            secret_mut(&mut next, reference).tries_left = max;
            self.commit(next)?;
            Ok(())
        } else {
            let left = secret.tries_left - 1;
            if reference == PIN_REF {
                self.pin_verified = false;
            }
            Err(if left == 0 {
                Sw::AuthenticationBlocked
            } else {
                Sw::WrongPin { tries_left: left }
            })
        }
    }

    /// VERIFY (20), P2 = 81: checks the PIN; with no data, reports the status.
    pub(super) fn verify(&mut self, cmd: &Command) -> Res {
        if cmd.p1 != 0 {
            return Err(Sw::IncorrectP1P2);
        }
        if cmd.p2 != PIN_REF {
            return Err(Sw::ReferenceDataNotFound);
        }
        let pin = &self.state.pin;
        if pin.value.is_none() {
            return Err(Sw::ReferenceDataNotUsable);
        }
        if cmd.data.is_empty() {
            return match (pin.tries_left, self.pin_verified) {
                (0, _) => Err(Sw::AuthenticationBlocked),
                (_, true) => Ok(Reply::ok(Vec::new())),
                (n, false) => Err(Sw::WrongPin { tries_left: n }),
            };
        }
        self.present(PIN_REF, &cmd.data)?;
        self.pin_verified = true;
        Ok(Reply::ok(Vec::new()))
    }

    /// CHANGE REFERENCE DATA (24): P1 = 00 with old || new, or P1 = 01 with only the new value
    /// (personalization session before issuance: transport PIN and PUK; terminal session after
    /// a successful VERIFY: the holder PIN).
    pub(super) fn change_reference_data(&mut self, cmd: &Command, ctx: Ctx) -> Res {
        let reference = cmd.p2;
        let current = self.secret(reference)?.clone();
        let (new, transport) = match cmd.p1 {
            0x01 => {
                let perso = ctx.auth == Some(Auth::Perso) && self.pre_issuance();
                let holder = ctx.auth == Some(Auth::Terminal)
                    && reference == PIN_REF
                    && self.pin_verified
                    && !self.pre_issuance();
                if !perso && !holder {
                    return Err(Sw::SecurityStatusNotSatisfied);
                }
                Self::well_formed(reference, &cmd.data)?;
                (cmd.data.to_vec(), perso)
            }
            0x00 => {
                let old = current.value.as_ref().ok_or(Sw::ReferenceDataNotUsable)?;
                if current.tries_left == 0 {
                    return Err(Sw::AuthenticationBlocked);
                }
                if cmd.data.len() <= old.len() {
                    return Err(Sw::WrongLength);
                }
                let (given, new) = cmd.data.split_at(old.len());
                Self::well_formed(reference, new)?;
                self.present(reference, given)?;
                (new.to_vec(), false)
            }
            _ => return Err(Sw::IncorrectP1P2),
        };
        let max = if reference == PUK_REF {
            layout::PUK_MAX_TRIES
        } else {
            layout::PIN_MAX_TRIES
        };
        let mut next = self.next_state();
        let s = secret_mut(&mut next, reference);
        s.value = Some(new);
        s.tries_left = max;
        if reference == PIN_REF {
            next.pin_is_transport = transport;
        }
        self.commit(next)?;
        if reference == PIN_REF {
            self.pin_verified = !transport;
        }
        Ok(Reply::ok(Vec::new()))
    }

    /// RESET RETRY COUNTER (2C), P2 = 81: P1 = 00 with PUK || new PIN, P1 = 01 with the PUK.
    pub(super) fn reset_retry_counter(&mut self, cmd: &Command) -> Res {
        if cmd.p2 != PIN_REF {
            return Err(Sw::ReferenceDataNotFound);
        }
        if cmd.p1 > 1 {
            return Err(Sw::IncorrectP1P2);
        }
        let puk = self
            .state
            .puk
            .value
            .clone()
            .ok_or(Sw::ReferenceDataNotUsable)?;
        if self.state.pin.value.is_none() {
            return Err(Sw::ReferenceDataNotUsable);
        }
        if self.state.puk.tries_left == 0 {
            return Err(Sw::AuthenticationBlocked);
        }
        let (given, new) = if cmd.p1 == 0 {
            if cmd.data.len() <= puk.len() {
                return Err(Sw::WrongLength);
            }
            let (g, n) = cmd.data.split_at(puk.len());
            Self::well_formed(PIN_REF, n)?;
            (g.to_vec(), Some(n.to_vec()))
        } else {
            (cmd.data.to_vec(), None)
        };
        self.present(PUK_REF, &given)?;
        let mut next = self.state.clone();
        next.pin.tries_left = layout::PIN_MAX_TRIES;
        if let Some(n) = new {
            next.pin.value = Some(n);
            next.pin_is_transport = false;
        }
        self.commit(next)?;
        Ok(Reply::ok(Vec::new()))
    }
}

fn secret_mut(state: &mut CardState, reference: u8) -> &mut Secret {
    if reference == PUK_REF {
        &mut state.puk
    } else {
        &mut state.pin
    }
}
