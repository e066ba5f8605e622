//! The card's file system (ISO/IEC 7816-4 §7): the MF, DFs named by FID and/or DF name, and
//! transparent EFs with a FID, an optional SFI and a fixed size. Every node carries its
//! life-cycle status byte. Nodes have an internal id that survives persistence, so the current
//! selection is a pair of ids rather than a path of indexes that a deletion would invalidate.

use apdu::fcp::{Fcp, FileDescriptor, LifeCycle};
use apdu::layout;
use serde::{Deserialize, Serialize};

use crate::hexser;

/// Internal, persistent identity of a file.
pub(crate) type NodeId = u32;

/// One file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Node {
    /// Internal id, unique on this card.
    pub id: NodeId,
    /// File identifier (every EF has one; a DF may be known only by its name).
    pub fid: Option<u16>,
    /// Life-cycle status byte (ISO/IEC 7816-4 Table 15).
    pub lcs: u8,
    /// DF or EF contents.
    pub body: Body,
}

/// What a file holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum Body {
    /// A dedicated file.
    Df {
        /// DF name (AID), when the DF has one.
        #[serde(with = "hexser::opt")]
        name: Option<Vec<u8>>,
        /// Files inside, in creation order.
        children: Vec<Node>,
    },
    /// A transparent working EF; its size is `data.len()`, fixed at creation.
    Ef {
        /// Short EF identifier (1..=30), if any.
        sfi: Option<u8>,
        /// Contents, erased to 00 at creation.
        #[serde(with = "hexser::vec")]
        data: Vec<u8>,
    },
}

impl Node {
    /// A DF with no children.
    pub fn df(id: NodeId, fid: Option<u16>, name: Option<Vec<u8>>, lcs: LifeCycle) -> Node {
        Node {
            id,
            fid,
            lcs: lcs.into(),
            body: Body::Df {
                name,
                children: Vec::new(),
            },
        }
    }

    /// True for a DF.
    pub fn is_df(&self) -> bool {
        matches!(self.body, Body::Df { .. })
    }

    /// The DF name, if this is a named DF.
    pub fn df_name(&self) -> Option<&[u8]> {
        match &self.body {
            Body::Df { name, .. } => name.as_deref(),
            Body::Ef { .. } => None,
        }
    }

    /// The SFI of an EF.
    pub fn sfi(&self) -> Option<u8> {
        match &self.body {
            Body::Ef { sfi, .. } => *sfi,
            Body::Df { .. } => None,
        }
    }

    /// Children of a DF (empty for an EF).
    pub fn children(&self) -> &[Node] {
        match &self.body {
            Body::Df { children, .. } => children,
            Body::Ef { .. } => &[],
        }
    }

    /// The life-cycle status.
    pub fn life_cycle(&self) -> LifeCycle {
        LifeCycle::from(self.lcs)
    }

    /// Bytes of card memory this file and everything below it occupy.
    pub fn footprint(&self) -> usize {
        layout::FILE_OVERHEAD
            + match &self.body {
                Body::Ef { data, .. } => data.len(),
                Body::Df { children, .. } => children.iter().map(Node::footprint).sum(),
            }
    }

    /// The FCP the card answers SELECT with: 82, 83, 84 (DF name), 80 (EF size), 88, 8A.
    pub fn fcp(&self) -> Fcp {
        let mut fcp = match &self.body {
            Body::Df { name, .. } => {
                let mut f = Fcp::new(FileDescriptor::DF);
                f.df_name = name.clone();
                f
            }
            Body::Ef { sfi, data } => {
                let mut f = Fcp::new(FileDescriptor::TRANSPARENT_EF);
                f.size = Some(data.len() as u32);
                f.sfi = *sfi;
                f
            }
        };
        fcp.fid = self.fid;
        fcp.life_cycle = Some(self.life_cycle());
        fcp
    }

    fn find(&self, id: NodeId) -> Option<&Node> {
        if self.id == id {
            return Some(self);
        }
        self.children().iter().find_map(|c| c.find(id))
    }

    fn find_mut(&mut self, id: NodeId) -> Option<&mut Node> {
        if self.id == id {
            return Some(self);
        }
        match &mut self.body {
            Body::Df { children, .. } => children.iter_mut().find_map(|c| c.find_mut(id)),
            Body::Ef { .. } => None,
        }
    }

    /// Pushes the ids from this node down to `id` onto `path`; true when found.
    fn path_to(&self, id: NodeId, path: &mut Vec<NodeId>) -> bool {
        path.push(self.id);
        if self.id == id || self.children().iter().any(|c| c.path_to(id, path)) {
            return true;
        }
        path.pop();
        false
    }

    fn visit<'a>(&'a self, out: &mut Vec<&'a Node>) {
        out.push(self);
        for c in self.children() {
            c.visit(out);
        }
    }
}

/// The whole tree, rooted at the MF.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct FileSystem {
    /// The master file.
    pub root: Node,
    /// The id the next created file gets.
    pub next_id: NodeId,
}

impl FileSystem {
    /// A file system with only the MF.
    pub fn new() -> FileSystem {
        FileSystem {
            root: Node::df(0, Some(layout::MF_FID), None, LifeCycle::Activated),
            next_id: 1,
        }
    }

    /// The MF's id.
    pub fn root_id(&self) -> NodeId {
        self.root.id
    }

    /// The file with this id.
    pub fn get(&self, id: NodeId) -> Option<&Node> {
        self.root.find(id)
    }

    /// The file with this id, for changing it.
    pub fn get_mut(&mut self, id: NodeId) -> Option<&mut Node> {
        self.root.find_mut(id)
    }

    /// Ids from the MF down to `id` (inclusive); empty when `id` does not exist.
    pub fn path(&self, id: NodeId) -> Vec<NodeId> {
        let mut path = Vec::new();
        if !self.root.path_to(id, &mut path) {
            path.clear();
        }
        path
    }

    /// The DF holding `id` (`None` for the MF or an unknown id).
    pub fn parent(&self, id: NodeId) -> Option<NodeId> {
        let path = self.path(id);
        path.len().checked_sub(2).map(|i| path[i])
    }

    /// The child of DF `df` with this FID.
    pub fn child_by_fid(&self, df: NodeId, fid: u16) -> Option<NodeId> {
        self.get(df)?
            .children()
            .iter()
            .find(|c| c.fid == Some(fid))
            .map(|c| c.id)
    }

    /// The EF of DF `df` with this SFI.
    pub fn child_by_sfi(&self, df: NodeId, sfi: u8) -> Option<NodeId> {
        self.get(df)?
            .children()
            .iter()
            .find(|c| c.sfi() == Some(sfi))
            .map(|c| c.id)
    }

    /// The first DF (depth first from the MF) whose name starts with `name` (ISO/IEC 7816-4
    /// §11.2.2: a DF name may be right-truncated).
    pub fn df_by_name(&self, name: &[u8]) -> Option<NodeId> {
        self.all()
            .into_iter()
            .find(|n| n.df_name().is_some_and(|d| d.starts_with(name)))
            .map(|n| n.id)
    }

    /// Every file, depth first from the MF.
    pub fn all(&self) -> Vec<&Node> {
        let mut out = Vec::new();
        self.root.visit(&mut out);
        out
    }

    /// Bytes of memory in use.
    pub fn used(&self) -> usize {
        self.root.footprint()
    }

    /// Adds `node` to DF `df`; the caller has checked for clashes.
    pub fn insert(&mut self, df: NodeId, node: Node) -> bool {
        match self.get_mut(df).map(|d| &mut d.body) {
            Some(Body::Df { children, .. }) => {
                children.push(node);
                true
            }
            _ => false,
        }
    }

    /// Removes file `id` (and everything below it) from its DF.
    pub fn remove(&mut self, id: NodeId) -> Option<Node> {
        let parent = self.parent(id)?;
        match &mut self.get_mut(parent)?.body {
            Body::Df { children, .. } => {
                let pos = children.iter().position(|c| c.id == id)?;
                Some(children.remove(pos))
            }
            Body::Ef { .. } => None,
        }
    }

    /// Checks what a loaded file could get wrong: unique ids, DFs and EFs where they belong,
    /// sizes, SFIs and FIDs unique within each DF, depth.
    pub fn validate(&self) -> Result<(), String> {
        let mut ids = std::collections::HashSet::new();
        for n in self.all() {
            if !ids.insert(n.id) {
                return Err(format!("file id {} appears twice", n.id));
            }
            if n.id >= self.next_id {
                return Err(format!(
                    "file id {} is not below next_id {}",
                    n.id, self.next_id
                ));
            }
            match &n.body {
                Body::Ef { sfi, data } => {
                    if n.fid.is_none() {
                        return Err(format!("EF {} has no FID", n.id));
                    }
                    if data.len() > layout::MAX_EF_SIZE {
                        return Err(format!(
                            "EF {} is larger than {}",
                            n.id,
                            layout::MAX_EF_SIZE
                        ));
                    }
                    if sfi.is_some_and(|s| !(1..=30).contains(&s)) {
                        return Err(format!("EF {} has an invalid SFI", n.id));
                    }
                }
                Body::Df { name, children } => {
                    if name.as_ref().is_some_and(|d| d.is_empty() || d.len() > 16) {
                        return Err(format!("DF {} has an invalid name", n.id));
                    }
                    for (i, a) in children.iter().enumerate() {
                        for b in &children[i + 1..] {
                            if a.fid.is_some() && a.fid == b.fid {
                                return Err(format!("DF {} holds two files with one FID", n.id));
                            }
                            if a.sfi().is_some() && a.sfi() == b.sfi() {
                                return Err(format!("DF {} holds two EFs with one SFI", n.id));
                            }
                        }
                    }
                }
            }
            if self.path(n.id).len() > layout::MAX_DF_DEPTH + 2 {
                return Err(format!("file {} is nested too deep", n.id));
            }
        }
        if !self.root.is_df() || self.root.fid != Some(layout::MF_FID) {
            return Err("the root is not the MF 3F00".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ef(id: NodeId, fid: u16, sfi: Option<u8>, size: usize) -> Node {
        Node {
            id,
            fid: Some(fid),
            lcs: 0x05,
            body: Body::Ef {
                sfi,
                data: vec![0; size],
            },
        }
    }

    fn sample() -> FileSystem {
        let mut fs = FileSystem::new();
        let app = Node::df(
            1,
            Some(0x5F01),
            Some(vec![0xA0, 0, 0, 2, 0x47, 0x10, 1]),
            LifeCycle::Creation,
        );
        assert!(fs.insert(0, app));
        assert!(fs.insert(1, ef(2, 0x0101, Some(1), 10)));
        assert!(fs.insert(1, ef(3, 0x011E, Some(0x1E), 20)));
        assert!(
            !fs.insert(2, ef(4, 0x0102, None, 1)),
            "an EF holds no files"
        );
        fs.next_id = 4;
        fs
    }

    #[test]
    fn lookups_paths_and_removal() {
        let mut fs = sample();
        assert_eq!(fs.path(3), [0, 1, 3]);
        assert_eq!(fs.path(9), Vec::<NodeId>::new());
        assert_eq!((fs.parent(3), fs.parent(0)), (Some(1), None));
        assert_eq!(fs.child_by_fid(1, 0x011E), Some(3));
        assert_eq!(fs.child_by_sfi(1, 1), Some(2));
        assert_eq!(fs.df_by_name(&[0xA0, 0, 0, 2]), Some(1));
        assert_eq!(fs.df_by_name(&[0xA1]), None);
        assert_eq!(fs.used(), 4 * layout::FILE_OVERHEAD + 30, "MF, DF, 2 EFs");
        assert!(fs.validate().is_ok());
        assert_eq!(fs.remove(2).map(|n| n.id), Some(2));
        assert_eq!(fs.child_by_fid(1, 0x0101), None);
        assert!(fs.remove(0).is_none(), "the MF stays");
    }

    #[test]
    fn fcp_of_an_ef_and_a_df() {
        let fs = sample();
        let fcp = fs.get(2).unwrap().fcp();
        assert_eq!(
            fcp.to_bytes(),
            [0x62, 0x10, 0x82, 1, 1, 0x83, 2, 1, 1, 0x80, 1, 10, 0x88, 1, 0x08, 0x8A, 1, 5]
        );
        let df = fs.get(1).unwrap().fcp();
        assert!(df.descriptor.is_df());
        assert_eq!(
            (df.fid, df.life_cycle),
            (Some(0x5F01), Some(LifeCycle::Creation))
        );
    }

    #[test]
    fn validation_rejects_impossible_trees() {
        let mut dup_fid = sample();
        dup_fid.insert(1, ef(4, 0x0101, None, 1));
        dup_fid.next_id = 5;
        let mut dup_sfi = sample();
        dup_sfi.insert(1, ef(4, 0x0199, Some(1), 1));
        dup_sfi.next_id = 5;
        let mut dup_id = sample();
        dup_id.insert(1, ef(3, 0x0199, None, 1));
        let mut stale_next = sample();
        stale_next.next_id = 2;
        let mut bad_sfi = sample();
        bad_sfi.insert(1, ef(4, 0x0199, Some(31), 1));
        bad_sfi.next_id = 5;
        let mut not_mf = sample();
        not_mf.root.fid = Some(0x3F01);
        for (fs, why) in [
            (dup_fid, "FID"),
            (dup_sfi, "SFI"),
            (dup_id, "id"),
            (stale_next, "next_id"),
            (bad_sfi, "SFI 31"),
            (not_mf, "root"),
        ] {
            assert!(fs.validate().is_err(), "{why}");
        }
    }
}
