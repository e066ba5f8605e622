//! Writing the file system during personalization: UPDATE BINARY, CREATE FILE and DELETE FILE
//! (ISO/IEC 7816-4 §11.3.5, ISO/IEC 7816-9 §8).

use apdu::command::Command;
use apdu::fcp::{Fcp, FileDescriptor, LifeCycle, TAG_SFI};
use apdu::layout;

use super::{Auth, Ctx, Reply, Res, SimCard, Sw};
use crate::fs::{Body, Node};

impl SimCard {
    /// Write access (CREATE, UPDATE, DELETE, file life cycle): the personalization session.
    pub(super) fn may_write(&self, auth: Option<Auth>) -> Result<(), Sw> {
        if auth == Some(Auth::Perso) {
            Ok(())
        } else {
            Err(Sw::SecurityStatusNotSatisfied)
        }
    }

    /// UPDATE BINARY (D6, D7), ISO/IEC 7816-4 §11.3.5.
    pub(super) fn update_binary(&mut self, cmd: &Command, ctx: Ctx) -> Res {
        self.may_write(ctx.auth)?;
        let (id, offset, payload) = self.binary_target(cmd)?;
        let node = self.node(id)?;
        let Body::Ef { data, .. } = &node.body else {
            return Err(Sw::IncompatibleFileStructure);
        };
        self.usable(id)?;
        if payload.is_empty() {
            return Err(Sw::WrongLength);
        }
        if offset > data.len() {
            return Err(Sw::WrongP1P2);
        }
        if offset + payload.len() > data.len() {
            return Err(Sw::NotEnoughMemory);
        }
        let written = match self.tear_update.take() {
            Some(k) => k.min(payload.len()),
            None => payload.len(),
        };
        let mut next = self.next_state();
        if let Some(Node {
            body: Body::Ef { data, .. },
            ..
        }) = next.fs.get_mut(id)
        {
            data[offset..offset + written].copy_from_slice(&payload[..written]);
        }
        self.commit(next)?;
        self.make_current(id);
        Ok(Reply::ok(Vec::new()))
    }

    /// CREATE FILE (E0), ISO/IEC 7816-9 §8.1: a DF or a transparent EF under the current DF.
    pub(super) fn create_file(&mut self, cmd: &Command, ctx: Ctx) -> Res {
        self.may_write(ctx.auth)?;
        if cmd.p1 != 0 || cmd.p2 != 0 {
            return Err(Sw::IncorrectP1P2);
        }
        let fcp = Fcp::parse(&cmd.data).map_err(|_| Sw::IncorrectData)?;
        let df = self.current_df;
        let fs = &self.state.fs;
        let lcs = match fcp.life_cycle {
            None => LifeCycle::Activated,
            Some(l @ (LifeCycle::Activated | LifeCycle::Deactivated)) => l,
            Some(_) => return Err(Sw::IncorrectData),
        };
        if let Some(fid) = fcp.fid {
            if [layout::MF_FID, 0x3FFF, 0xFFFF].contains(&fid) {
                return Err(Sw::IncorrectData);
            }
            if fs.child_by_fid(df, fid).is_some() || self.node(df)?.fid == Some(fid) {
                return Err(Sw::FileAlreadyExists);
            }
        }
        let id = self.state.fs.next_id;
        let (node, size) = if fcp.descriptor.is_df() {
            if fcp.fid.is_none() && fcp.df_name.is_none() {
                return Err(Sw::IncorrectData);
            }
            if fs.path(df).len() > layout::MAX_DF_DEPTH {
                return Err(Sw::NotEnoughMemory);
            }
            if let Some(name) = &fcp.df_name {
                if fs
                    .all()
                    .iter()
                    .any(|n| n.df_name() == Some(name.as_slice()))
                {
                    return Err(Sw::FileAlreadyExists);
                }
            }
            (Node::df(id, fcp.fid, fcp.df_name.clone(), lcs), 0)
        } else if fcp.descriptor == FileDescriptor::TRANSPARENT_EF {
            let (Some(fid), Some(size)) = (fcp.fid, fcp.size) else {
                return Err(Sw::IncorrectData);
            };
            let size = size as usize;
            if size > layout::MAX_EF_SIZE {
                return Err(Sw::NotEnoughMemory);
            }
            let no_sfi = fcp.other.iter().any(|t| t.tag == TAG_SFI);
            let sfi = if no_sfi {
                None
            } else {
                fcp.sfi.or(layout::default_sfi(fid))
            };
            if let Some(s) = sfi {
                if fs.child_by_sfi(df, s).is_some() {
                    return Err(Sw::FileAlreadyExists);
                }
            }
            let node = Node {
                id,
                fid: Some(fid),
                lcs: lcs.into(),
                body: Body::Ef {
                    sfi,
                    data: vec![0; size],
                },
            };
            (node, size)
        } else {
            return Err(Sw::FunctionNotSupported);
        };
        if fs.used() + layout::FILE_OVERHEAD + size > self.state.geometry.memory_capacity {
            return Err(Sw::NotEnoughMemory);
        }
        let mut next = self.next_state();
        next.fs.next_id += 1;
        if !next.fs.insert(df, node) {
            return Err(Sw::CommandNotAllowed);
        }
        self.commit(next)?;
        self.make_current(id);
        Ok(Reply::ok(Vec::new()))
    }

    /// DELETE FILE (E4), ISO/IEC 7816-9 §8.3: a child of the current DF by FID, or the current
    /// file. The MF and the application DF cannot be deleted.
    pub(super) fn delete_file(&mut self, cmd: &Command, ctx: Ctx) -> Res {
        self.may_write(ctx.auth)?;
        if cmd.p1 != 0 || cmd.p2 != 0 {
            return Err(Sw::IncorrectP1P2);
        }
        let id = match cmd.data.len() {
            0 => self.current_ef.unwrap_or(self.current_df),
            2 => self
                .state
                .fs
                .child_by_fid(
                    self.current_df,
                    u16::from_be_bytes([cmd.data[0], cmd.data[1]]),
                )
                .ok_or(Sw::FileNotFound)?,
            _ => return Err(Sw::WrongLength),
        };
        if id == self.state.fs.root_id() || id == self.state.app {
            return Err(Sw::ConditionsNotSatisfied);
        }
        let parent = self.state.fs.parent(id).ok_or(Sw::FileNotFound)?;
        let mut next = self.next_state();
        next.fs.remove(id).ok_or(Sw::FileNotFound)?;
        let df_gone = self.state.fs.path(self.current_df).contains(&id);
        let ef_gone = self
            .current_ef
            .is_some_and(|e| self.state.fs.path(e).contains(&id));
        self.commit(next)?;
        if df_gone {
            self.current_df = parent;
            self.current_ef = None;
        } else if ef_gone {
            self.current_ef = None;
        }
        Ok(Reply::ok(Vec::new()))
    }
}
