//! EF.SOD (ICAO 9303-10 §4.6.2, 9303-11 §5.1): the LDS security object in CMS SignedData.
//!
//! ```text
//! 77 {                                           EF.SOD wrapper
//!   ContentInfo { id-signedData, SignedData v3 {
//!     digestAlgorithms { sha256 }
//!     encapContentInfo { id-icao-mrtd-security-ldsSecurityObject 2.23.136.1.1.1,
//!                        OCTET STRING LDSSecurityObject }
//!     certificates [0] { DS certificate }
//!     signerInfos { v1, issuerAndSerialNumber, sha256,
//!                   signedAttrs { contentType, messageDigest, signingTime },
//!                   ecdsa-with-SHA256, signature } } } }
//!
//! LDSSecurityObject ::= SEQUENCE { version INTEGER (v0), hashAlgorithm AlgorithmIdentifier,
//!   dataGroupHashValues SEQUENCE OF SEQUENCE { dataGroupNumber INTEGER, hash OCTET STRING },
//!   ldsVersionInfo LDSVersionInfo OPTIONAL }
//! ```

use std::time::SystemTime;

use cms::cert::{CertificateChoices, IssuerAndSerialNumber};
use cms::content_info::{CmsVersion, ContentInfo};
use cms::signed_data::{
    CertificateSet, EncapsulatedContentInfo, SignedData, SignerIdentifier, SignerInfo, SignerInfos,
};
use der::asn1::{ObjectIdentifier, OctetString, SetOfVec, UtcTime};
use der::{Any, Decode, Encode, Sequence, Tagged};
use spki::AlgorithmIdentifierOwned;
use x509_cert::attr::Attribute;

use apdu::tlv::{Tag, Tlv};

use super::crypto::{
    check_ds, digest_algorithm, verify_signature, DsProblem, SigError, OID_ECDSA_SHA256, OID_SHA256,
};
use super::{CscaCertificate, DocumentSigner, PaError, PkiError};

/// id-icao-mrtd-security-ldsSecurityObject.
const OID_LDS_SECURITY_OBJECT: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.23.136.1.1.1");
/// id-signedData (RFC 5652).
const OID_SIGNED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.2");
/// id-contentType attribute.
const OID_CONTENT_TYPE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.3");
/// id-messageDigest attribute.
const OID_MESSAGE_DIGEST: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.4");
/// id-signingTime attribute.
const OID_SIGNING_TIME: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.5");
/// The EF.SOD wrapper tag.
const SOD_TAG: u32 = 0x77;

/// LDSSecurityObject (ICAO 9303-10 §4.6.2.2).
#[derive(Debug, Clone, Sequence)]
struct LdsSecurityObject {
    version: u8,
    hash_algorithm: AlgorithmIdentifierOwned,
    data_group_hash_values: Vec<DataGroupHash>,
    #[asn1(optional = "true")]
    lds_version_info: Option<Any>,
}

/// DataGroupHash.
#[derive(Debug, Clone, Sequence)]
struct DataGroupHash {
    data_group_number: u8,
    data_group_hash_value: OctetString,
}

fn der_err(e: der::Error) -> PkiError {
    PkiError::Crypto(format!("DER encoding: {e}"))
}

fn algorithm(oid: &str) -> AlgorithmIdentifierOwned {
    AlgorithmIdentifierOwned {
        oid: ObjectIdentifier::new_unwrap(oid),
        parameters: None,
    }
}

/// Signs the data groups: EF.SOD with SHA-256 of each, signed by `signer` now.
/// Data group numbers must be 1..=16, distinct, and at least two (the ASN.1 says SIZE 2..16).
pub fn sign_sod(signer: &DocumentSigner, data_groups: &[(u8, &[u8])]) -> Result<Vec<u8>, PkiError> {
    sign_sod_at(signer, data_groups, SystemTime::now())
}

/// Like [`sign_sod`] with the signingTime given.
pub(crate) fn sign_sod_at(
    signer: &DocumentSigner,
    data_groups: &[(u8, &[u8])],
    now: SystemTime,
) -> Result<Vec<u8>, PkiError> {
    if data_groups.len() < 2 {
        return Err(PkiError::Input(
            "an SOD covers at least two data groups".into(),
        ));
    }
    let mut hashes = Vec::with_capacity(data_groups.len());
    for (i, &(dg, bytes)) in data_groups.iter().enumerate() {
        if !(1..=16).contains(&dg) {
            return Err(PkiError::Input(format!("data group {dg} is not 1..16")));
        }
        if data_groups[..i].iter().any(|&(d, _)| d == dg) {
            return Err(PkiError::Input(format!("data group {dg} given twice")));
        }
        let hash = ring::digest::digest(&ring::digest::SHA256, bytes);
        hashes.push(DataGroupHash {
            data_group_number: dg,
            data_group_hash_value: OctetString::new(hash.as_ref()).map_err(der_err)?,
        });
    }
    hashes.sort_by_key(|h| h.data_group_number);
    let lds = LdsSecurityObject {
        version: 0,
        hash_algorithm: algorithm(OID_SHA256),
        data_group_hash_values: hashes,
        lds_version_info: None,
    }
    .to_der()
    .map_err(der_err)?;

    let lds_digest = ring::digest::digest(&ring::digest::SHA256, &lds);
    let attr = |oid, value: Any| -> Result<Attribute, PkiError> {
        Ok(Attribute {
            oid,
            values: SetOfVec::try_from(vec![value]).map_err(der_err)?,
        })
    };
    let signing_time = UtcTime::from_system_time(now).map_err(der_err)?;
    let signed_attrs = SetOfVec::try_from(vec![
        attr(
            OID_CONTENT_TYPE,
            Any::encode_from(&OID_LDS_SECURITY_OBJECT).map_err(der_err)?,
        )?,
        attr(
            OID_MESSAGE_DIGEST,
            Any::encode_from(&OctetString::new(lds_digest.as_ref()).map_err(der_err)?)
                .map_err(der_err)?,
        )?,
        attr(
            OID_SIGNING_TIME,
            Any::encode_from(&signing_time).map_err(der_err)?,
        )?,
    ])
    .map_err(der_err)?;
    let to_sign = signed_attrs.to_der().map_err(der_err)?;
    // SHA-256 of the DER signed attributes, signed in the token by the DS key.
    let signature = signer.sign(&to_sign)?;

    let ds = x509_cert::Certificate::from_der(&signer.cert_der).map_err(der_err)?;
    let sid = SignerIdentifier::IssuerAndSerialNumber(IssuerAndSerialNumber {
        issuer: ds.tbs_certificate.issuer.clone(),
        serial_number: ds.tbs_certificate.serial_number.clone(),
    });
    let signer_info = SignerInfo {
        version: CmsVersion::V1,
        sid,
        digest_alg: algorithm(OID_SHA256),
        signed_attrs: Some(signed_attrs),
        signature_algorithm: algorithm(OID_ECDSA_SHA256),
        signature: OctetString::new(signature).map_err(der_err)?,
        unsigned_attrs: None,
    };
    let signed_data = SignedData {
        version: CmsVersion::V3,
        digest_algorithms: SetOfVec::try_from(vec![algorithm(OID_SHA256)]).map_err(der_err)?,
        encap_content_info: EncapsulatedContentInfo {
            econtent_type: OID_LDS_SECURITY_OBJECT,
            econtent: Some(Any::new(der::Tag::OctetString, lds).map_err(der_err)?),
        },
        certificates: Some(CertificateSet(
            SetOfVec::try_from(vec![CertificateChoices::Certificate(ds)]).map_err(der_err)?,
        )),
        crls: None,
        signer_infos: SignerInfos(SetOfVec::try_from(vec![signer_info]).map_err(der_err)?),
    };
    let content_info = ContentInfo {
        content_type: OID_SIGNED_DATA,
        content: Any::encode_from(&signed_data).map_err(der_err)?,
    };
    let cms = content_info.to_der().map_err(der_err)?;
    Ok(Tlv::primitive(Tag(SOD_TAG), cms).encode())
}

/// What passive authentication established.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PassiveAuthReport {
    /// Subject of the DS certificate that signed.
    pub ds_subject: String,
    /// Subject of the trusted CSCA that issued it.
    pub csca_subject: String,
    /// Hash algorithm of the data group hashes (OID).
    pub hash_algorithm: String,
    /// Data groups the SOD covers, ascending.
    pub covered: Vec<u8>,
    /// Data groups whose hash was checked, ascending.
    pub checked: Vec<u8>,
    /// The signingTime attribute, when present.
    pub signing_time: Option<SystemTime>,
}

fn malformed(what: impl std::fmt::Display) -> PaError {
    PaError::MalformedSod(what.to_string())
}

/// The CMS content inside the EF.SOD wrapper `77` (read from the header alone: the content is
/// DER, not card BER-TLV, so it is not handed to the TLV decoder).
pub(crate) fn unwrap_sod(sod: &[u8]) -> Result<&[u8], PaError> {
    let (tag, tag_len) = Tag::parse(sod).map_err(malformed)?;
    if tag != Tag(SOD_TAG) {
        return Err(malformed(format!("outer tag {tag} is not 77")));
    }
    let (len, len_len) = apdu::tlv::parse_length(&sod[tag_len..]).map_err(malformed)?;
    let start = tag_len + len_len;
    let end = start
        .checked_add(len)
        .filter(|&e| e <= sod.len())
        .ok_or_else(|| malformed("length runs past the end"))?;
    if sod[end..].iter().any(|&b| b != 0x00 && b != 0xFF) {
        return Err(malformed("bytes after the 77 object"));
    }
    Ok(&sod[start..end])
}

/// Passive authentication of `sod` over `data_groups` (number, file bytes) read from a chip,
/// at `now`, against `trust`.
///
/// Checks, in order: the structure; the signed attributes (contentType, messageDigest of the
/// security object); the DS certificate chained to a trusted CSCA and its validity and key
/// usage; the signature over the signed attributes; then every data group's hash.
pub fn verify_sod(
    sod: &[u8],
    data_groups: &[(u8, &[u8])],
    trust: &[CscaCertificate],
    now: SystemTime,
) -> Result<PassiveAuthReport, PaError> {
    let cms = unwrap_sod(sod)?;
    let ci = ContentInfo::from_der(cms).map_err(malformed)?;
    if ci.content_type != OID_SIGNED_DATA {
        return Err(malformed(format!(
            "content type {} is not signedData",
            ci.content_type
        )));
    }
    let sd: SignedData = ci.content.decode_as().map_err(malformed)?;
    let eci = &sd.encap_content_info;
    if eci.econtent_type != OID_LDS_SECURITY_OBJECT {
        return Err(malformed(format!(
            "eContentType {} is not the LDS security object",
            eci.econtent_type
        )));
    }
    let econtent = eci
        .econtent
        .as_ref()
        .ok_or_else(|| malformed("no encapsulated content"))?;
    if econtent.tag() != der::Tag::OctetString {
        return Err(malformed("eContent is not an OCTET STRING"));
    }
    let lds_der = econtent.value();
    let lds = LdsSecurityObject::from_der(lds_der).map_err(malformed)?;
    let hash_oid = lds.hash_algorithm.oid.to_string();
    let hash_alg = digest_algorithm(&hash_oid)
        .ok_or_else(|| PaError::UnsupportedAlgorithm(hash_oid.clone()))?;

    let [si] = sd.signer_infos.0.as_slice() else {
        return Err(malformed(format!(
            "{} signer infos where one was expected",
            sd.signer_infos.0.len()
        )));
    };
    let attrs = si
        .signed_attrs
        .as_ref()
        .ok_or_else(|| malformed("no signed attributes"))?;
    let single = |oid: ObjectIdentifier| -> Result<Option<&Any>, PaError> {
        let mut found = attrs.iter().filter(|a| a.oid == oid);
        let Some(a) = found.next() else {
            return Ok(None);
        };
        match (found.next(), a.values.as_slice()) {
            (None, [v]) => Ok(Some(v)),
            _ => Err(malformed(format!(
                "attribute {oid} must appear once with one value"
            ))),
        }
    };
    let content_type = single(OID_CONTENT_TYPE)?
        .ok_or_else(|| PaError::SignedAttributes("no contentType".into()))?;
    if content_type.decode_as::<ObjectIdentifier>().ok() != Some(OID_LDS_SECURITY_OBJECT) {
        return Err(PaError::SignedAttributes(
            "contentType is not the LDS security object".into(),
        ));
    }
    let digest_oid = si.digest_alg.oid.to_string();
    let digest_alg = digest_algorithm(&digest_oid)
        .ok_or_else(|| PaError::UnsupportedAlgorithm(digest_oid.clone()))?;
    let message_digest = single(OID_MESSAGE_DIGEST)?
        .ok_or_else(|| PaError::SignedAttributes("no messageDigest".into()))?
        .decode_as::<OctetString>()
        .map_err(malformed)?;
    if message_digest.as_bytes() != ring::digest::digest(digest_alg, lds_der).as_ref() {
        return Err(PaError::SignedAttributes(
            "messageDigest is not the hash of the security object".into(),
        ));
    }
    let signing_time = match single(OID_SIGNING_TIME)? {
        None => None,
        Some(t) => Some(match t.decode_as::<UtcTime>() {
            Ok(utc) => utc.to_system_time(),
            Err(_) => t
                .decode_as::<der::asn1::GeneralizedTime>()
                .map_err(malformed)?
                .to_system_time(),
        }),
    };

    // The DS certificate: the embedded one the signer identifier names.
    let ds_der = find_signer_certificate(&sd, &si.sid)?;
    let (_, ds) = x509_parser::parse_x509_certificate(&ds_der).map_err(malformed)?;
    let issuer = ds.issuer().to_string();
    let mut csca_subject = None;
    for anchor in trust {
        let Some(csca) = anchor.parsed() else {
            continue;
        };
        if csca.subject().as_raw() != ds.issuer().as_raw() {
            continue;
        }
        match check_ds(&ds, &csca, now) {
            Ok(()) => {
                csca_subject = Some(csca.subject().to_string());
                break;
            }
            // Same name, another key (e.g. a CSCA rollover): keep looking.
            Err(DsProblem::BadSignature) | Err(DsProblem::WrongIssuer(_)) => {
                csca_subject.get_or_insert(String::new());
            }
            Err(DsProblem::NotYetValid(not_before)) => {
                return Err(PaError::DsNotYetValid { not_before })
            }
            Err(DsProblem::Expired(not_after)) => return Err(PaError::ExpiredDs { not_after }),
            Err(DsProblem::KeyUsage) => return Err(PaError::DsKeyUsage),
            Err(DsProblem::Unsupported(a)) => return Err(PaError::UnsupportedAlgorithm(a)),
        }
    }
    let csca_subject = match csca_subject {
        Some(s) if !s.is_empty() => s,
        Some(_) => return Err(PaError::BadDsCertificate { csca: issuer }),
        None => return Err(PaError::UnknownCsca { issuer }),
    };

    let signed = attrs.to_der().map_err(malformed)?;
    match verify_signature(
        ds.public_key(),
        &si.signature_algorithm.oid.to_string(),
        &signed,
        si.signature.as_bytes(),
    ) {
        Ok(()) => {}
        Err(SigError::Invalid) => return Err(PaError::BadSignature),
        Err(SigError::Unsupported(a)) => return Err(PaError::UnsupportedAlgorithm(a)),
    }

    let mut covered: Vec<u8> = Vec::new();
    for h in &lds.data_group_hash_values {
        if !(1..=16).contains(&h.data_group_number) || covered.contains(&h.data_group_number) {
            return Err(malformed(format!(
                "data group number {} invalid or repeated",
                h.data_group_number
            )));
        }
        covered.push(h.data_group_number);
    }
    let mut checked = Vec::new();
    for &(dg, bytes) in data_groups {
        let expected = lds
            .data_group_hash_values
            .iter()
            .find(|h| h.data_group_number == dg)
            .ok_or(PaError::DataGroupNotCovered { dg })?;
        if ring::digest::digest(hash_alg, bytes).as_ref()
            != expected.data_group_hash_value.as_bytes()
        {
            return Err(PaError::TamperedDataGroup { dg });
        }
        checked.push(dg);
    }
    covered.sort_unstable();
    checked.sort_unstable();
    Ok(PassiveAuthReport {
        ds_subject: ds.subject().to_string(),
        csca_subject,
        hash_algorithm: hash_oid,
        covered,
        checked,
        signing_time,
    })
}

/// The DER of the embedded certificate the signer identifier names.
fn find_signer_certificate(sd: &SignedData, sid: &SignerIdentifier) -> Result<Vec<u8>, PaError> {
    let certs = sd
        .certificates
        .as_ref()
        .ok_or_else(|| malformed("no DS certificate embedded"))?;
    for choice in certs.0.iter() {
        let CertificateChoices::Certificate(cert) = choice else {
            continue;
        };
        let tbs = &cert.tbs_certificate;
        let matches = match sid {
            SignerIdentifier::IssuerAndSerialNumber(ias) => {
                ias.issuer == tbs.issuer && ias.serial_number == tbs.serial_number
            }
            SignerIdentifier::SubjectKeyIdentifier(ski) => {
                tbs.extensions.iter().flatten().any(|e| {
                    e.extn_id == ObjectIdentifier::new_unwrap("2.5.29.14")
                        && OctetString::from_der(e.extn_value.as_bytes()).ok().as_ref()
                            == Some(&ski.0)
                })
            }
        };
        if matches {
            return cert.to_der().map_err(malformed);
        }
    }
    Err(malformed("the signer's certificate is not embedded"))
}
