//! Finding and reading: SELECT (ISO/IEC 7816-4 §11.2.2), READ BINARY and the read access
//! conditions of the application's EFs, GET DATA.

use apdu::command::Command;
use apdu::layout;
use apdu::tlv::{Tag, Tlv};

use super::{sw2_remaining, Auth, Ctx, Reply, Res, SimCard, Sw};
use crate::fs::{Body, NodeId};

/// Status word of a file in termination state (ISO/IEC 7816-4 §5.6: 6285).
const SW_TERMINATED: Sw = Sw::Other(0x6285);

impl SimCard {
    /// Finds a file the way SELECT's P1 says (ISO/IEC 7816-4 §11.2.2).
    pub(super) fn resolve(&self, p1: u8, data: &[u8]) -> Result<NodeId, Sw> {
        let fs = &self.state.fs;
        let root = fs.root_id();
        let fid_of = |d: &[u8]| -> Result<u16, Sw> {
            match d {
                [a, b] => Ok(u16::from_be_bytes([*a, *b])),
                _ => Err(Sw::WrongLength),
            }
        };
        match p1 {
            0x00 => {
                if data.is_empty() {
                    return Ok(root);
                }
                let fid = fid_of(data)?;
                if fid == layout::MF_FID {
                    return Ok(root);
                }
                let df = self.current_df;
                if let Some(id) = fs.child_by_fid(df, fid) {
                    return Ok(id);
                }
                if self.node(df)?.fid == Some(fid) {
                    return Ok(df);
                }
                if let Some(parent) = fs.parent(df) {
                    if self.node(parent)?.fid == Some(fid) {
                        return Ok(parent);
                    }
                    if let Some(id) = fs.child_by_fid(parent, fid) {
                        return Ok(id);
                    }
                }
                Err(Sw::FileNotFound)
            }
            0x01 | 0x02 => {
                let id = fs
                    .child_by_fid(self.current_df, fid_of(data)?)
                    .ok_or(Sw::FileNotFound)?;
                if self.node(id)?.is_df() == (p1 == 0x01) {
                    Ok(id)
                } else {
                    Err(Sw::FileNotFound)
                }
            }
            0x03 => {
                if !data.is_empty() {
                    return Err(Sw::WrongLength);
                }
                fs.parent(self.current_df).ok_or(Sw::FileNotFound)
            }
            0x04 => match data.len() {
                0 => Ok(root),
                1..=16 => fs.df_by_name(data).ok_or(Sw::FileNotFound),
                _ => Err(Sw::WrongLength),
            },
            0x08 | 0x09 => {
                if data.is_empty() || !data.len().is_multiple_of(2) {
                    return Err(Sw::WrongLength);
                }
                let mut fids: Vec<u16> = data
                    .chunks(2)
                    .map(|c| u16::from_be_bytes([c[0], c[1]]))
                    .collect();
                let mut at = if p1 == 0x08 { root } else { self.current_df };
                if p1 == 0x08 && fids.first() == Some(&layout::MF_FID) {
                    fids.remove(0);
                }
                for fid in fids {
                    if !self.node(at)?.is_df() {
                        return Err(Sw::FileNotFound);
                    }
                    at = fs.child_by_fid(at, fid).ok_or(Sw::FileNotFound)?;
                }
                Ok(at)
            }
            _ => Err(Sw::IncorrectP1P2),
        }
    }

    pub(super) fn make_current(&mut self, id: NodeId) {
        let fs = &self.state.fs;
        match fs.get(id) {
            Some(n) if n.is_df() => {
                self.current_df = id;
                self.current_ef = None;
            }
            Some(_) => {
                self.current_df = fs.parent(id).unwrap_or(fs.root_id());
                self.current_ef = Some(id);
            }
            None => {}
        }
    }

    /// SELECT (A4), ISO/IEC 7816-4 §11.2.2.
    pub(super) fn select(&mut self, cmd: &Command) -> Res {
        let want_fcp = match cmd.p2 {
            0x00 | 0x04 => true,
            0x0C => false,
            _ => return Err(Sw::IncorrectP1P2),
        };
        let id = self.resolve(cmd.p1, &cmd.data)?;
        let node = self.node(id)?;
        let fcp = if want_fcp {
            node.fcp().to_bytes()
        } else {
            Vec::new()
        };
        if let Some(ne) = cmd.ne {
            if want_fcp && ne < fcp.len() {
                return Err(Sw::WrongLe {
                    exact_len: fcp.len() as u8,
                });
            }
        }
        let lcs = node.life_cycle();
        self.make_current(id);
        let sw = if lcs.is_terminated() {
            SW_TERMINATED
        } else if lcs.is_deactivated() {
            Sw::FileDeactivated
        } else {
            Sw::Success
        };
        Ok(Reply { data: fcp, sw })
    }

    /// The EF and offset a READ/UPDATE BINARY addresses; for the odd INS also the data object
    /// `53` of an UPDATE.
    pub(super) fn binary_target(&self, cmd: &Command) -> Result<(NodeId, usize, Vec<u8>), Sw> {
        let fs = &self.state.fs;
        if cmd.ins & 1 == 1 {
            let objects = Tlv::decode_all(&cmd.data).map_err(|_| Sw::IncorrectData)?;
            let offset = match apdu::tlv::find(&objects, &[Tag(0x54)]).and_then(Tlv::as_bytes) {
                Some(b) if !b.is_empty() && b.len() <= 3 => {
                    b.iter().fold(0usize, |a, &x| (a << 8) | x as usize)
                }
                _ => return Err(Sw::IncorrectData),
            };
            let payload = apdu::tlv::find(&objects, &[Tag(0x53)])
                .and_then(Tlv::as_bytes)
                .map(<[u8]>::to_vec)
                .unwrap_or_default();
            let id = match (cmd.p1, cmd.p2) {
                (0, 0) => self.current_ef.ok_or(Sw::CommandNotAllowed)?,
                (0, sfi @ 1..=30) => fs
                    .child_by_sfi(self.current_df, sfi)
                    .ok_or(Sw::FileNotFound)?,
                (a, b) => fs
                    .child_by_fid(self.current_df, u16::from_be_bytes([a, b]))
                    .ok_or(Sw::FileNotFound)?,
            };
            return Ok((id, offset, payload));
        }
        if cmd.p1 & 0x80 != 0 {
            let sfi = cmd.p1 & 0x1F;
            if cmd.p1 & 0x60 != 0 || !(1..=30).contains(&sfi) {
                return Err(Sw::IncorrectP1P2);
            }
            let id = fs
                .child_by_sfi(self.current_df, sfi)
                .ok_or(Sw::FileNotFound)?;
            Ok((id, cmd.p2 as usize, cmd.data.to_vec()))
        } else {
            let id = self.current_ef.ok_or(Sw::CommandNotAllowed)?;
            let offset = u16::from_be_bytes([cmd.p1, cmd.p2]) as usize;
            Ok((id, offset, cmd.data.to_vec()))
        }
    }

    /// True when the file lies in the LDS1 application.
    fn in_app(&self, id: NodeId) -> bool {
        self.state.fs.path(id).contains(&self.state.app)
    }

    /// Refuses files (or DFs above them, other than the MF and the application, whose life
    /// cycle is the card's) that are deactivated or terminated.
    pub(super) fn usable(&self, id: NodeId) -> Result<(), Sw> {
        let root = self.state.fs.root_id();
        for n in self.state.fs.path(id) {
            if n == root || n == self.state.app {
                continue;
            }
            let lcs = self.node(n)?.life_cycle();
            if lcs.is_deactivated() || lcs.is_terminated() {
                return Err(Sw::ConditionsNotSatisfied);
            }
        }
        Ok(())
    }

    /// Read access: files of the application need a session; DG3 and DG4 need the terminal
    /// session, or the personalization session before the card leaves the line.
    fn may_read(&self, id: NodeId, auth: Option<Auth>) -> Result<(), Sw> {
        if !self.in_app(id) {
            return Ok(());
        }
        let fid = self.node(id)?.fid;
        let extended = fid == Some(layout::EF_DG3) || fid == Some(layout::EF_DG4);
        match auth {
            Some(Auth::Terminal) => Ok(()),
            Some(Auth::Perso) if !extended || self.pre_issuance() => Ok(()),
            _ => Err(Sw::SecurityStatusNotSatisfied),
        }
    }

    /// READ BINARY (B0, B1), ISO/IEC 7816-4 §11.3.3.
    pub(super) fn read_binary(&mut self, cmd: &Command, ctx: Ctx) -> Res {
        let odd = cmd.ins == 0xB1;
        if !odd && !cmd.data.is_empty() {
            return Err(Sw::WrongLength);
        }
        let (id, offset, _) = self.binary_target(cmd)?;
        let node = self.node(id)?;
        let Body::Ef { data, .. } = &node.body else {
            return Err(Sw::IncompatibleFileStructure);
        };
        self.may_read(id, ctx.auth)?;
        self.usable(id)?;
        let ne = cmd.ne.ok_or(Sw::WrongLength)?;
        if offset > data.len() {
            return Err(Sw::WrongP1P2);
        }
        let available = data.len() - offset;
        let limit = ne.min(ctx.resp_cap);
        // The odd INS answers `53 L data`: the header takes 2 to 4 bytes of the limit.
        let header = |n: usize| {
            if odd {
                1 + apdu::tlv::length_size(n)
            } else {
                0
            }
        };
        let mut n = available.min(limit);
        while n > 0 && n + header(n) > limit {
            n -= 1;
        }
        let chunk = data[offset..offset + n].to_vec();
        let sw = if n == available && n + header(n) < ne {
            Sw::EndOfFile
        } else {
            Sw::Success
        };
        self.make_current(id);
        let out = if odd {
            Tlv::primitive(Tag(0x53), chunk).encode()
        } else {
            chunk
        };
        Ok(Reply { data: out, sw })
    }

    /// GET DATA (CA): serial (0101), life cycle (0102), EF list of the application (0103).
    pub(super) fn get_data(&mut self, cmd: &Command) -> Res {
        let data = match u16::from_be_bytes([cmd.p1, cmd.p2]) {
            layout::DO_SERIAL => self.state.serial().to_vec(),
            layout::DO_LCS => vec![u8::from(self.state.lcs())],
            layout::DO_FILE_LIST => {
                let app = self.node(self.state.app)?;
                let mut fids: Vec<u16> = app
                    .children()
                    .iter()
                    .filter(|c| !c.is_df())
                    .filter_map(|c| c.fid)
                    .collect();
                fids.sort_unstable();
                fids.iter().flat_map(|f| f.to_be_bytes()).collect()
            }
            _ => return Err(Sw::ReferenceDataNotFound),
        };
        if !cmd.data.is_empty() {
            return Err(Sw::WrongLength);
        }
        match cmd.ne {
            Some(ne) if ne < data.len() && data.len() <= apdu::command::SHORT_MAX_NE => {
                Err(Sw::WrongLe {
                    exact_len: sw2_remaining(data.len()),
                })
            }
            Some(ne) if ne < data.len() => Err(Sw::WrongLength),
            _ => Ok(Reply::ok(data)),
        }
    }
}
