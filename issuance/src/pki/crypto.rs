//! Algorithms (ring) and the certificate checks shared by signing and verification.

use std::time::{SystemTime, UNIX_EPOCH};

use ring::signature::{self, UnparsedPublicKey, VerificationAlgorithm};
use x509_parser::certificate::X509Certificate;
use x509_parser::x509::SubjectPublicKeyInfo;

/// id-sha256 (NIST).
pub(crate) const OID_SHA256: &str = "2.16.840.1.101.3.4.2.1";
/// id-sha384.
pub(crate) const OID_SHA384: &str = "2.16.840.1.101.3.4.2.2";
/// id-sha512.
pub(crate) const OID_SHA512: &str = "2.16.840.1.101.3.4.2.3";
/// ecdsa-with-SHA256 (RFC 5758).
pub(crate) const OID_ECDSA_SHA256: &str = "1.2.840.10045.4.3.2";
/// ecdsa-with-SHA384.
const OID_ECDSA_SHA384: &str = "1.2.840.10045.4.3.3";
/// id-ecPublicKey.
const OID_EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";
/// prime256v1 / secp256r1.
const OID_P256: &str = "1.2.840.10045.3.1.7";
/// secp384r1.
const OID_P384: &str = "1.3.132.0.34";
/// rsaEncryption.
const OID_RSA: &str = "1.2.840.113549.1.1.1";
/// sha256WithRSAEncryption.
const OID_RSA_SHA256: &str = "1.2.840.113549.1.1.11";
/// sha384WithRSAEncryption.
const OID_RSA_SHA384: &str = "1.2.840.113549.1.1.12";
/// sha512WithRSAEncryption.
const OID_RSA_SHA512: &str = "1.2.840.113549.1.1.13";

/// The ring digest of a hash algorithm OID.
pub(crate) fn digest_algorithm(oid: &str) -> Option<&'static ring::digest::Algorithm> {
    match oid {
        OID_SHA256 => Some(&ring::digest::SHA256),
        OID_SHA384 => Some(&ring::digest::SHA384),
        OID_SHA512 => Some(&ring::digest::SHA512),
        _ => None,
    }
}

/// Why a signature could not be checked or did not verify.
pub(crate) enum SigError {
    /// The key or signature algorithm is not implemented; the text names it.
    Unsupported(String),
    /// The signature is wrong.
    Invalid,
}

/// Verifies `sig` over `msg` with the public key `spki`, signature algorithm `sig_oid`.
pub(crate) fn verify_signature(
    spki: &SubjectPublicKeyInfo<'_>,
    sig_oid: &str,
    msg: &[u8],
    sig: &[u8],
) -> Result<(), SigError> {
    let key_oid = spki.algorithm.algorithm.to_id_string();
    let curve = spki
        .algorithm
        .parameters
        .as_ref()
        .and_then(|p| p.as_oid().ok())
        .map(|o| o.to_id_string());
    let alg: &'static dyn VerificationAlgorithm =
        match (key_oid.as_str(), curve.as_deref(), sig_oid) {
            (OID_EC_PUBLIC_KEY, Some(OID_P256), OID_ECDSA_SHA256) => {
                &signature::ECDSA_P256_SHA256_ASN1
            }
            (OID_EC_PUBLIC_KEY, Some(OID_P256), OID_ECDSA_SHA384) => {
                &signature::ECDSA_P256_SHA384_ASN1
            }
            (OID_EC_PUBLIC_KEY, Some(OID_P384), OID_ECDSA_SHA256) => {
                &signature::ECDSA_P384_SHA256_ASN1
            }
            (OID_EC_PUBLIC_KEY, Some(OID_P384), OID_ECDSA_SHA384) => {
                &signature::ECDSA_P384_SHA384_ASN1
            }
            (OID_RSA, _, OID_RSA_SHA256) => &signature::RSA_PKCS1_2048_8192_SHA256,
            (OID_RSA, _, OID_RSA_SHA384) => &signature::RSA_PKCS1_2048_8192_SHA384,
            (OID_RSA, _, OID_RSA_SHA512) => &signature::RSA_PKCS1_2048_8192_SHA512,
            _ => {
                return Err(SigError::Unsupported(format!(
                    "key {key_oid} (curve {}) with signature {sig_oid}",
                    curve.as_deref().unwrap_or("none")
                )))
            }
        };
    UnparsedPublicKey::new(alg, &spki.subject_public_key.data)
        .verify(msg, sig)
        .map_err(|_| SigError::Invalid)
}

/// Seconds since the Unix epoch (negative before it).
pub(crate) fn unix_seconds(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs() as i64),
    }
}

/// What is wrong with a DS certificate.
pub(crate) enum DsProblem {
    NotYetValid(String),
    Expired(String),
    KeyUsage,
    WrongIssuer(String),
    BadSignature,
    Unsupported(String),
}

/// Checks a DS certificate at `now` against the CSCA that should have issued it: validity,
/// key usage digitalSignature, issuer name and signature.
pub(crate) fn check_ds(
    ds: &X509Certificate<'_>,
    csca: &X509Certificate<'_>,
    now: SystemTime,
) -> Result<(), DsProblem> {
    if ds.issuer().as_raw() != csca.subject().as_raw() {
        return Err(DsProblem::WrongIssuer(format!(
            "issuer {} is not {}",
            ds.issuer(),
            csca.subject()
        )));
    }
    match verify_signature(
        csca.public_key(),
        &ds.signature_algorithm.algorithm.to_id_string(),
        ds.tbs_certificate.as_ref(),
        &ds.signature_value.data,
    ) {
        Ok(()) => {}
        Err(SigError::Invalid) => return Err(DsProblem::BadSignature),
        Err(SigError::Unsupported(a)) => return Err(DsProblem::Unsupported(a)),
    }
    let now = unix_seconds(now);
    let validity = ds.validity();
    if now < validity.not_before.timestamp() {
        return Err(DsProblem::NotYetValid(validity.not_before.to_string()));
    }
    if now > validity.not_after.timestamp() {
        return Err(DsProblem::Expired(validity.not_after.to_string()));
    }
    match ds.key_usage() {
        Ok(Some(ku)) if ku.value.digital_signature() => Ok(()),
        _ => Err(DsProblem::KeyUsage),
    }
}

/// A raw P-256 ECDSA signature `r || s` (64 bytes, what PKCS#11 `CKM_ECDSA` returns) as the
/// DER ECDSA-Sig-Value `SEQUENCE { r INTEGER, s INTEGER }` that X.509 and CMS carry.
pub(crate) fn ecdsa_der(raw: &[u8]) -> Option<Vec<u8>> {
    if raw.len() != 64 {
        return None;
    }
    let integer = |half: &[u8]| {
        let start = half.iter().position(|&b| b != 0).unwrap_or(half.len() - 1);
        let digits = &half[start..];
        let pad = digits[0] & 0x80 != 0;
        let mut out = vec![0x02, (digits.len() + usize::from(pad)) as u8];
        if pad {
            out.push(0x00);
        }
        out.extend_from_slice(digits);
        out
    };
    let r = integer(&raw[..32]);
    let s = integer(&raw[32..]);
    let mut out = vec![0x30, (r.len() + s.len()) as u8];
    out.extend(r);
    out.extend(s);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::ecdsa_der;

    #[test]
    fn raw_signature_becomes_der() {
        let mut raw = [0u8; 64];
        raw[31] = 0x01; // r = 1
        raw[32] = 0x80; // s has its high bit set: a 0x00 is prepended
        let der = ecdsa_der(&raw).unwrap();
        assert_eq!(&der[..5], &[0x30, 3 + 35, 0x02, 0x01, 0x01]);
        assert_eq!(&der[5..8], &[0x02, 33, 0x00]);
        assert_eq!(der[8], 0x80);
        assert_eq!(der.len(), 2 + 3 + 35);
        assert!(ecdsa_der(&raw[..63]).is_none());
        // Both zero still gives two one-byte INTEGERs.
        assert_eq!(ecdsa_der(&[0u8; 64]).unwrap(), [0x30, 6, 2, 1, 0, 2, 1, 0]);
    }
}
