//! GET CHALLENGE and MUTUAL AUTHENTICATE: how a secure messaging session opens.

use apdu::command::Command;
use apdu::fcp::LifeCycle;
use apdu::layout::CHALLENGE_LEN;
use apdu::sm::{self, KeyRef};
use rand::Rng;

use super::{Auth, Ctx, Reply, Res, Session, SimCard, Sw};

impl SimCard {
    /// GET CHALLENGE (84): 16 random bytes, kept for the next MUTUAL AUTHENTICATE.
    pub(super) fn get_challenge(&mut self, cmd: &Command) -> Res {
        if cmd.p1 != 0 || cmd.p2 != 0 {
            return Err(Sw::IncorrectP1P2);
        }
        if !cmd.data.is_empty() {
            return Err(Sw::WrongLength);
        }
        match cmd.ne {
            None => return Err(Sw::WrongLength),
            Some(CHALLENGE_LEN) => {}
            Some(_) => {
                return Err(Sw::WrongLe {
                    exact_len: CHALLENGE_LEN as u8,
                })
            }
        }
        let rnd: [u8; CHALLENGE_LEN] = rand::thread_rng().gen();
        self.challenge = Some(rnd);
        Ok(Reply::ok(rnd.to_vec()))
    }

    /// MUTUAL AUTHENTICATE (82): P2 = key reference, data = RND.IFD || host cryptogram. The
    /// failure counter is raised and persisted before the cryptogram is checked, so pulling the
    /// card cannot buy free attempts; success puts it back to 0.
    pub(super) fn mutual_authenticate(&mut self, cmd: &Command, ctx: Ctx) -> Res {
        if ctx.auth.is_some() {
            return Err(Sw::ConditionsNotSatisfied);
        }
        if cmd.p1 != 0 {
            return Err(Sw::IncorrectP1P2);
        }
        let key_ref = KeyRef::try_from(cmd.p2)?;
        let challenge = self.challenge.take().ok_or(Sw::ConditionsNotSatisfied)?;
        if key_ref == KeyRef::Personalization && self.state.lcs() == LifeCycle::Deactivated {
            return Err(Sw::ConditionsNotSatisfied);
        }
        if self.state.key(key_ref).blocked() {
            return Err(Sw::AuthenticationBlocked);
        }
        if cmd.data.len() != sm::RND_LEN + sm::CRYPTOGRAM_LEN {
            return Err(Sw::WrongLength);
        }
        let key = self
            .state
            .key(key_ref)
            .aes()
            .ok_or(Sw::ReferenceDataNotUsable)?;
        let before = self.state.key(key_ref).failures;
        let mut next = self.state.clone();
        next.key_mut(key_ref).failures = before + 1;
        self.commit(next)?;
        match sm::card_authenticate_step(&key, &challenge, &cmd.data) {
            Ok(auth) => {
                let mut next = self.state.clone();
                next.key_mut(key_ref).failures = 0;
                self.commit(next)?;
                let kind = match key_ref {
                    KeyRef::Personalization => Auth::Perso,
                    KeyRef::Terminal => Auth::Terminal,
                };
                self.session = Some(Session {
                    auth: kind,
                    sm: auth.session,
                });
                Ok(Reply::ok(auth.card_cryptogram.to_vec()))
            }
            Err(sw) if self.state.key(key_ref).blocked() && sw == sm::SW_AUTH_FAILED => {
                Err(Sw::AuthenticationBlocked)
            }
            Err(sw) => Err(sw),
        }
    }
}
