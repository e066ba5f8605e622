//! Life cycle (ISO/IEC 7816-9 §8): which commands each card state allows, ACTIVATE FILE,
//! DEACTIVATE FILE, TERMINATE DF/EF and TERMINATE CARD USAGE.

use apdu::command::Command;
use apdu::fcp::LifeCycle;
use apdu::sm::KeyRef;

use super::{Auth, Ctx, Reply, Res, SimCard, Sw};

impl SimCard {
    /// True before the card leaves the production line (creation or initialisation state).
    pub(super) fn pre_issuance(&self) -> bool {
        matches!(
            self.state.lcs(),
            LifeCycle::Creation | LifeCycle::Initialisation
        )
    }

    /// The card life cycle decides which commands exist at all (6985 otherwise); access
    /// conditions of files and PINs come after.
    pub(super) fn life_cycle_gate(&self, cmd: &Command, ctx: Ctx) -> Result<(), Sw> {
        let terminal = ctx.auth == Some(Auth::Terminal);
        let allowed = match self.state.lcs() {
            LifeCycle::Creation | LifeCycle::Initialisation => true,
            LifeCycle::Activated => !matches!(cmd.ins, 0xE0 | 0xE4 | 0xD6 | 0xD7),
            LifeCycle::Deactivated => match cmd.ins {
                0xA4 | 0xCA | 0x84 | 0xE6 | 0xE8 | 0xFE => true,
                0x82 => cmd.p2 == KeyRef::Terminal.byte(),
                0xB0 | 0xB1 | 0x20 | 0x24 | 0x44 => terminal,
                _ => false,
            },
            // Terminated cards are handled before secure messaging.
            _ => matches!(cmd.ins, 0xCA),
        };
        if allowed {
            Ok(())
        } else {
            Err(Sw::ConditionsNotSatisfied)
        }
    }

    /// ACTIVATE FILE (44), DEACTIVATE FILE (04), TERMINATE DF (E6), TERMINATE EF (E8) and
    /// TERMINATE CARD USAGE (FE), ISO/IEC 7816-9 §8.
    pub(super) fn life_cycle_command(&mut self, cmd: &Command, ctx: Ctx) -> Res {
        let app = self.state.app;
        let root = self.state.fs.root_id();
        let target = if cmd.ins == 0xFE {
            if cmd.p1 != 0 || cmd.p2 != 0 {
                return Err(Sw::IncorrectP1P2);
            }
            if !cmd.data.is_empty() {
                return Err(Sw::WrongLength);
            }
            app
        } else {
            match (cmd.p1, cmd.p2, cmd.data.is_empty()) {
                (0x00, 0x00, true) if cmd.ins == 0xE6 => self.current_df,
                (0x00, 0x00, true) => self.current_ef.unwrap_or(self.current_df),
                (0x00 | 0x04 | 0x08, 0x00, false) => self.resolve(cmd.p1, &cmd.data)?,
                _ => return Err(Sw::IncorrectP1P2),
            }
        };
        let is_df = self.node(target)?.is_df();
        if (cmd.ins == 0xE6 && !is_df) || (cmd.ins == 0xE8 && is_df) {
            return Err(Sw::IncompatibleFileStructure);
        }
        if target == app || target == root || cmd.ins == 0xFE {
            return self.card_life_cycle(cmd.ins, target == root, ctx);
        }
        // An ordinary file: personalization only, before the card leaves the line.
        self.may_write(ctx.auth)?;
        if !self.pre_issuance() {
            return Err(Sw::ConditionsNotSatisfied);
        }
        let current = self.node(target)?.life_cycle();
        if current.is_terminated() {
            return Err(Sw::ConditionsNotSatisfied);
        }
        let lcs = match cmd.ins {
            0x44 => LifeCycle::Activated,
            0x04 => LifeCycle::Deactivated,
            _ => LifeCycle::Terminated,
        };
        let mut next = self.next_state();
        if let Some(n) = next.fs.get_mut(target) {
            n.lcs = lcs.into();
        }
        self.commit(next)?;
        Ok(Reply::ok(Vec::new()))
    }

    /// The card's own transitions (the application DF, or the MF for termination).
    fn card_life_cycle(&mut self, ins: u8, mf: bool, ctx: Ctx) -> Res {
        let lcs = self.state.lcs();
        let s = &self.state;
        let next_lcs = match ins {
            0x44 if mf => return Err(Sw::ConditionsNotSatisfied),
            0x04 if mf => return Err(Sw::ConditionsNotSatisfied),
            0x44 => {
                if lcs == LifeCycle::Activated {
                    return Ok(Reply::ok(Vec::new()));
                }
                if lcs != LifeCycle::Deactivated {
                    return Err(Sw::ConditionsNotSatisfied);
                }
                if ctx.auth != Some(Auth::Terminal) {
                    return Err(Sw::SecurityStatusNotSatisfied);
                }
                if s.pin.value.is_none() || s.puk.value.is_none() || s.pin_is_transport {
                    return Err(Sw::ConditionsNotSatisfied);
                }
                LifeCycle::Activated
            }
            0x04 => {
                if self.pre_issuance() {
                    if ctx.auth != Some(Auth::Perso) {
                        return Err(Sw::SecurityStatusNotSatisfied);
                    }
                    if s.pin.value.is_none() || s.puk.value.is_none() {
                        return Err(Sw::ConditionsNotSatisfied);
                    }
                } else if ctx.auth.is_none() {
                    return Err(Sw::SecurityStatusNotSatisfied);
                }
                LifeCycle::Deactivated
            }
            _ => {
                if ctx.auth.is_none() {
                    return Err(Sw::SecurityStatusNotSatisfied);
                }
                LifeCycle::Terminated
            }
        };
        let mut next = self.state.clone();
        next.set_lcs(next_lcs);
        if next_lcs == LifeCycle::Terminated {
            next.fs.root.lcs = LifeCycle::Terminated.into();
        }
        self.commit(next)?;
        Ok(Reply::ok(Vec::new()))
    }
}
