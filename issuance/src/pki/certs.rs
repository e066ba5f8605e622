//! The test PKI: creating a CSCA and a DS, loading and checking the DS before signing.

use std::fmt;
use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, KeyPair, KeyUsagePurpose,
    SerialNumber,
};
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{EcdsaKeyPair, KeyPair as _, ECDSA_P256_SHA256_ASN1_SIGNING};
use x509_parser::certificate::X509Certificate;
use zeroize::Zeroizing;

use super::crypto::{check_ds, DsProblem};
use super::PkiError;

/// The CSCA certificate, PEM.
pub const CSCA_PEM: &str = "csca.pem";
/// The CSCA certificate, DER (what a CSCA master list or trust store imports).
pub const CSCA_DER: &str = "csca.der";
/// The DS certificate, PEM.
pub const DS_PEM: &str = "ds.pem";
/// The DS private key, PKCS#8 PEM, mode 0600.
pub const DS_KEY: &str = "ds.key";
/// The notice that the PKI is for tests only.
pub const README: &str = "README";

const DAY: Duration = Duration::from_secs(86_400);

/// Choices for [`init_with`]; [`InitOptions::default`] is what `idcardd pki init` uses.
#[derive(Debug, Clone)]
pub struct InitOptions {
    /// Country of the certificates (ISO 3166 alpha-2, e.g. `IR`).
    pub country: String,
    /// Start of the CSCA's validity.
    pub csca_not_before: SystemTime,
    /// End of the CSCA's validity.
    pub csca_not_after: SystemTime,
    /// Start of the DS's validity.
    pub ds_not_before: SystemTime,
    /// End of the DS's validity.
    pub ds_not_after: SystemTime,
    /// Whether the DS gets key usage digitalSignature (false only to test that such a DS is
    /// refused; it then gets keyAgreement instead).
    pub ds_digital_signature: bool,
}

impl Default for InitOptions {
    /// CSCA valid 10 years, DS 3 years, both from a day ago (clock skew).
    fn default() -> Self {
        let now = SystemTime::now();
        InitOptions {
            country: "IR".into(),
            csca_not_before: now - DAY,
            csca_not_after: now + 10 * 365 * DAY,
            ds_not_before: now - DAY,
            ds_not_after: now + 3 * 365 * DAY,
            ds_digital_signature: true,
        }
    }
}

/// The files [`init`] wrote.
#[derive(Debug, Clone)]
pub struct PkiFiles {
    /// `csca.pem`.
    pub csca_pem: PathBuf,
    /// `csca.der`.
    pub csca_der: PathBuf,
    /// `ds.pem`.
    pub ds_pem: PathBuf,
    /// `ds.key`.
    pub ds_key: PathBuf,
}

fn crypto(e: impl fmt::Display) -> PkiError {
    PkiError::Crypto(e.to_string())
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> PkiError + '_ {
    move |source| PkiError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn malformed(what: impl Into<String>, reason: impl fmt::Display) -> PkiError {
    PkiError::Malformed {
        what: what.into(),
        reason: reason.to_string(),
    }
}

fn random_serial(rng: &SystemRandom) -> Result<SerialNumber, PkiError> {
    let mut serial = [0u8; 16];
    rng.fill(&mut serial).map_err(crypto)?;
    serial[0] &= 0x7F; // positive
    serial[0] |= 0x40; // no leading zero byte
    Ok(SerialNumber::from_slice(&serial))
}

fn name(country: &str, cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CountryName, country);
    dn.push(DnType::OrganizationName, "idcardd TEST ONLY");
    dn.push(DnType::CommonName, cn);
    dn
}

/// Creates a test PKI in `dir` with [`InitOptions::default`].
pub fn init(dir: &Path) -> Result<PkiFiles, PkiError> {
    init_with(dir, &InitOptions::default())
}

/// Creates a **test-only** CSCA (self-signed, CA, keyCertSign + cRLSign) and a DS certificate
/// it issues (digitalSignature), both ECDSA P-256 with SHA-256, and writes `csca.pem`,
/// `csca.der`, `ds.pem`, `ds.key` (mode 0600) and a README. The CSCA private key is not kept:
/// a test CSCA issues exactly one DS. Refuses to overwrite existing files.
pub fn init_with(dir: &Path, options: &InitOptions) -> Result<PkiFiles, PkiError> {
    let files = PkiFiles {
        csca_pem: dir.join(CSCA_PEM),
        csca_der: dir.join(CSCA_DER),
        ds_pem: dir.join(DS_PEM),
        ds_key: dir.join(DS_KEY),
    };
    for p in [
        &files.csca_pem,
        &files.csca_der,
        &files.ds_pem,
        &files.ds_key,
    ] {
        if p.exists() {
            return Err(PkiError::AlreadyExists(p.clone()));
        }
    }
    fs::create_dir_all(dir).map_err(io(dir))?;
    let rng = SystemRandom::new();

    let csca_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(crypto)?;
    let mut csca_params = CertificateParams::default();
    csca_params.distinguished_name = name(&options.country, "idcardd TEST CSCA");
    csca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    csca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    csca_params.not_before = options.csca_not_before.into();
    csca_params.not_after = options.csca_not_after.into();
    csca_params.serial_number = Some(random_serial(&rng)?);
    let csca = csca_params.self_signed(&csca_key).map_err(crypto)?;

    let ds_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(crypto)?;
    let mut ds_params = CertificateParams::default();
    ds_params.distinguished_name = name(&options.country, "idcardd TEST Document Signer");
    ds_params.is_ca = IsCa::ExplicitNoCa;
    ds_params.key_usages = vec![if options.ds_digital_signature {
        KeyUsagePurpose::DigitalSignature
    } else {
        KeyUsagePurpose::KeyAgreement
    }];
    ds_params.not_before = options.ds_not_before.into();
    ds_params.not_after = options.ds_not_after.into();
    ds_params.serial_number = Some(random_serial(&rng)?);
    ds_params.use_authority_key_identifier_extension = true;
    let ds = ds_params
        .signed_by(&ds_key, &csca, &csca_key)
        .map_err(crypto)?;

    write_file(&files.csca_pem, csca.pem().as_bytes(), 0o644)?;
    write_file(&files.csca_der, csca.der(), 0o644)?;
    write_file(&files.ds_pem, ds.pem().as_bytes(), 0o644)?;
    let key_pem = Zeroizing::new(ds_key.serialize_pem());
    write_file(&files.ds_key, key_pem.as_bytes(), 0o600)?;
    let readme = dir.join(README);
    fs::write(&readme, README_TEXT).map_err(io(&readme))?;
    Ok(files)
}

const README_TEXT: &str = "\
TEST ONLY: this PKI was made by `idcardd pki init`.

csca.pem / csca.der  a self-signed test Country Signing CA (its private key was discarded)
ds.pem               a Document Signer certificate issued by it
ds.key               the Document Signer's private key (PKCS#8), readable by its owner only

Cards signed with it verify only against this CSCA. Never use it for real documents: a
production CSCA lives offline in an HSM and a production DS key never leaves one.
";

fn write_file(path: &Path, data: &[u8], mode: u32) -> Result<(), PkiError> {
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(io(path))?;
    f.write_all(data).map_err(io(path))?;
    f.sync_all().map_err(io(path))
}

/// Reads the first PEM block of `path` with `label` and returns its contents.
fn read_pem(path: &Path, label: &str) -> Result<Zeroizing<Vec<u8>>, PkiError> {
    let text = Zeroizing::new(fs::read(path).map_err(io(path))?);
    let (_, pem) = x509_parser::pem::parse_x509_pem(&text)
        .map_err(|e| malformed(path.display().to_string(), format!("not PEM: {e}")))?;
    if pem.label != label {
        return Err(malformed(
            path.display().to_string(),
            format!("PEM label {} where {label} was expected", pem.label),
        ));
    }
    Ok(Zeroizing::new(pem.contents))
}

fn parse_cert<'a>(der: &'a [u8], what: &str) -> Result<X509Certificate<'a>, PkiError> {
    match x509_parser::parse_x509_certificate(der) {
        Ok(([], cert)) => Ok(cert),
        Ok(_) => Err(malformed(what, "trailing bytes after the certificate")),
        Err(e) => Err(malformed(what, e)),
    }
}

/// A trusted Country Signing CA certificate (a trust anchor for [`super::verify_sod`]).
#[derive(Clone, PartialEq, Eq)]
pub struct CscaCertificate {
    /// The certificate, DER; checked to parse as a CA certificate.
    der: Vec<u8>,
}

impl CscaCertificate {
    /// From DER; the certificate must parse and be a CA (basicConstraints CA:true).
    pub fn from_der(der: Vec<u8>) -> Result<CscaCertificate, PkiError> {
        let cert = parse_cert(&der, "CSCA certificate")?;
        if !cert.is_ca() {
            return Err(malformed("CSCA certificate", "not a CA certificate"));
        }
        Ok(CscaCertificate { der })
    }

    /// From a PEM or DER file.
    pub fn load(path: &Path) -> Result<CscaCertificate, PkiError> {
        let bytes = fs::read(path).map_err(io(path))?;
        if bytes.starts_with(b"-----") {
            return CscaCertificate::from_der(read_pem(path, "CERTIFICATE")?.to_vec());
        }
        CscaCertificate::from_der(bytes)
    }

    /// The DER encoding.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The parsed certificate (it parsed when this value was made).
    pub(crate) fn parsed(&self) -> Option<X509Certificate<'_>> {
        x509_parser::parse_x509_certificate(&self.der)
            .ok()
            .map(|(_, c)| c)
    }

    /// The subject, as text.
    pub fn subject(&self) -> String {
        self.parsed()
            .map(|c| c.subject().to_string())
            .unwrap_or_default()
    }
}

impl fmt::Debug for CscaCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CscaCertificate({})", self.subject())
    }
}

/// The Document Signer: its checked certificate and its private key. Made only by
/// [`DocumentSigner::load`], so holding one means the certificate passed the checks.
pub struct DocumentSigner {
    /// The DS certificate, DER (embedded in every SOD).
    pub(crate) cert_der: Vec<u8>,
    /// The signing key (ring keeps the secret; the PKCS#8 bytes were zeroized after loading).
    pub(crate) key: EcdsaKeyPair,
    /// ring's random source for ECDSA nonces.
    pub(crate) rng: SystemRandom,
    /// The CSCA that issued the certificate.
    csca: CscaCertificate,
}

impl fmt::Debug for DocumentSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let subject = parse_cert(&self.cert_der, "DS")
            .map(|c| c.subject().to_string())
            .unwrap_or_default();
        f.debug_struct("DocumentSigner")
            .field("certificate", &subject)
            .field("key", &"REDACTED")
            .finish()
    }
}

impl DocumentSigner {
    /// Loads `ds.pem`, `ds.key` and `csca.pem` from `dir` and checks the DS certificate now.
    pub fn load(dir: &Path) -> Result<DocumentSigner, PkiError> {
        DocumentSigner::load_at(dir, SystemTime::now())
    }

    /// Like [`DocumentSigner::load`], checking validity at `now`.
    pub fn load_at(dir: &Path, now: SystemTime) -> Result<DocumentSigner, PkiError> {
        let csca = CscaCertificate::load(&dir.join(CSCA_PEM))?;
        let cert_der = read_pem(&dir.join(DS_PEM), "CERTIFICATE")?.to_vec();
        let key_path = dir.join(DS_KEY);
        let pkcs8 = read_pem(&key_path, "PRIVATE KEY")?;
        DocumentSigner::from_parts(csca, cert_der, &pkcs8, now)
    }

    /// From a CSCA, a DS certificate (DER) and its PKCS#8 ECDSA P-256 key, checked at `now`:
    /// the certificate must be valid, allow digitalSignature, be issued (name and signature)
    /// by `csca`, and certify the key.
    pub fn from_parts(
        csca: CscaCertificate,
        cert_der: Vec<u8>,
        pkcs8: &[u8],
        now: SystemTime,
    ) -> Result<DocumentSigner, PkiError> {
        let ds = parse_cert(&cert_der, "DS certificate")?;
        let csca_cert = csca
            .parsed()
            .ok_or_else(|| malformed("CSCA certificate", "does not parse"))?;
        check_ds(&ds, &csca_cert, now).map_err(|p| match p {
            DsProblem::NotYetValid(not_before) => PkiError::NotYetValid { not_before },
            DsProblem::Expired(not_after) => PkiError::Expired { not_after },
            DsProblem::KeyUsage => PkiError::WrongKeyUsage,
            DsProblem::WrongIssuer(why) => PkiError::WrongChain(why),
            DsProblem::BadSignature => {
                PkiError::WrongChain("signature does not verify with the CSCA key".into())
            }
            DsProblem::Unsupported(a) => PkiError::UnsupportedAlgorithm(a),
        })?;
        let rng = SystemRandom::new();
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8, &rng)
            .map_err(|e| malformed("DS key", format!("not a PKCS#8 ECDSA P-256 key ({e})")))?;
        if key.public_key().as_ref() != &ds.public_key().subject_public_key.data[..] {
            return Err(PkiError::KeyMismatch);
        }
        Ok(DocumentSigner {
            cert_der,
            key,
            rng,
            csca,
        })
    }

    /// The DS certificate, DER.
    pub fn certificate_der(&self) -> &[u8] {
        &self.cert_der
    }

    /// The CSCA the DS certificate was checked against.
    pub fn csca(&self) -> &CscaCertificate {
        &self.csca
    }
}
