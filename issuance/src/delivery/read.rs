//! Reading a personalized card under a terminal session and checking it: EF.COM, every data
//! group it lists, EF.SOD, then passive authentication against the trust list.

use std::path::PathBuf;
use std::time::{Instant, SystemTime};

use apdu::card::TerminalSession;
use apdu::Transport;

use apdu::layout::{dg_fid, EF_COM, EF_SOD};

use crate::error::{Error, ErrorKind};
use crate::lds;
use crate::pki::{self, CscaCertificate, PaError, PassiveAuthReport};

/// Every file of the LDS as read from the chip.
#[derive(Debug, Clone)]
pub struct ChipFiles {
    /// EF.COM.
    pub com: Vec<u8>,
    /// Data groups EF.COM lists, ascending: number and bytes.
    pub data_groups: Vec<(u8, Vec<u8>)>,
    /// EF.SOD.
    pub sod: Vec<u8>,
}

impl ChipFiles {
    /// Data group `dg`, if the chip has it.
    pub fn data_group(&self, dg: u8) -> Option<&[u8]> {
        self.data_groups
            .iter()
            .find(|(n, _)| *n == dg)
            .map(|(_, d)| d.as_slice())
    }
}

/// Reads EF.COM, every data group it lists, and EF.SOD.
pub fn read_files<T: Transport>(session: &mut TerminalSession<'_, T>) -> Result<ChipFiles, Error> {
    let com = session.read_file(EF_COM)?;
    let listed = lds::com::parse_com(&com).map_err(|e| {
        Error::new(ErrorKind::PaFailed, format!("EF.COM is unreadable: {e}"))
            .with_data(serde_json::json!({"reason": "malformed_com"}))
    })?;
    let mut numbers = listed.data_groups;
    numbers.sort_unstable();
    numbers.dedup();
    let mut data_groups = Vec::with_capacity(numbers.len());
    for dg in numbers {
        data_groups.push((dg, session.read_file(dg_fid(dg))?));
    }
    let sod = session.read_file(EF_SOD)?;
    Ok(ChipFiles {
        com,
        data_groups,
        sod,
    })
}

/// The trusted CSCA certificates from the configured PEM files. A file that cannot be read is
/// an internal (configuration) error, not a failed card.
pub fn load_trust(paths: &[PathBuf]) -> Result<Vec<CscaCertificate>, Error> {
    paths
        .iter()
        .map(|p| {
            CscaCertificate::load(p)
                .map_err(|e| Error::internal(format!("trust list entry {}: {e}", p.display())))
        })
        .collect()
}

/// A stable reason name for each passive-authentication verdict (sent as `data.reason`).
pub fn pa_reason(e: &PaError) -> &'static str {
    match e {
        PaError::MalformedSod(_) => "malformed_sod",
        PaError::UnsupportedAlgorithm(_) => "unsupported_algorithm",
        PaError::TamperedDataGroup { .. } => "tampered_data_group",
        PaError::DataGroupNotCovered { .. } => "data_group_not_covered",
        PaError::SignedAttributes(_) => "signed_attributes",
        PaError::BadSignature => "bad_signature",
        PaError::UnknownCsca { .. } => "unknown_csca",
        PaError::BadDsCertificate { .. } => "bad_ds_certificate",
        PaError::ExpiredDs { .. } => "expired_ds",
        PaError::DsNotYetValid { .. } => "ds_not_yet_valid",
        PaError::DsKeyUsage => "ds_key_usage",
    }
}

/// Passive authentication of `files` against `trust` at `now`; a failure is `pa_failed` with
/// `data.reason` (and `data.dg` for a data group problem).
pub fn passive_auth(
    files: &ChipFiles,
    trust: &[CscaCertificate],
    now: SystemTime,
) -> Result<PassiveAuthReport, Error> {
    if trust.is_empty() {
        return Err(
            Error::new(ErrorKind::PaFailed, "no trusted CSCA is configured")
                .with_data(serde_json::json!({"reason": "no_trust_list"})),
        );
    }
    let groups: Vec<(u8, &[u8])> = files
        .data_groups
        .iter()
        .map(|(n, d)| (*n, d.as_slice()))
        .collect();
    let report = pki::verify_sod(&files.sod, &groups, trust, now).map_err(|e| {
        let mut data = serde_json::json!({"reason": pa_reason(&e)});
        if let PaError::TamperedDataGroup { dg } | PaError::DataGroupNotCovered { dg } = e {
            data["dg"] = dg.into();
        }
        Error::new(
            ErrorKind::PaFailed,
            format!("passive authentication failed: {e}"),
        )
        .with_data(data)
    })?;
    // Every data group EF.COM lists must be signed: a data group the SOD does not cover was
    // added after signing (verify_sod checks the ones read; this checks none was skipped).
    if let Some(missing) = report
        .covered
        .iter()
        .find(|dg| files.data_group(**dg).is_none())
    {
        return Err(Error::new(
            ErrorKind::PaFailed,
            format!("passive authentication failed: the SOD covers DG{missing}, which EF.COM does not list"),
        )
        .with_data(serde_json::json!({"reason": "data_group_missing", "dg": missing})));
    }
    Ok(report)
}

/// Milliseconds since `start`.
pub fn ms_since(start: Instant) -> f64 {
    start.elapsed().as_secs_f64() * 1e3
}
