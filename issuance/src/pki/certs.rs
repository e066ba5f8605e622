//! The test PKI: creating a CSCA and a DS whose keys live in the token, rotating the DS,
//! loading and checking the DS before signing.

use std::fmt;
use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use keystore::{ec_key_id, KeyStore, KeyStoreError};
use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DistinguishedName, DnType, IsCa, KeyPair,
    KeyUsagePurpose, PublicKeyData, RemoteKeyPair, SerialNumber, SignatureAlgorithm,
};
use x509_parser::certificate::X509Certificate;
use x509_parser::prelude::FromDer;
use zeroize::Zeroizing;

use super::crypto::{check_ds, ecdsa_der, verify_signature, DsProblem};
use super::PkiError;

/// The CSCA certificate, PEM.
pub const CSCA_PEM: &str = "csca.pem";
/// The CSCA certificate, DER (what a CSCA master list or trust store imports).
pub const CSCA_DER: &str = "csca.der";
/// The DS certificate, PEM (the current one; earlier ones are kept as `ds-<serial hex>.pem`).
pub const DS_PEM: &str = "ds.pem";
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

/// The files [`init`] wrote and the token keys it used (labels only, never key bytes).
#[derive(Debug, Clone)]
pub struct PkiFiles {
    /// `csca.pem`.
    pub csca_pem: PathBuf,
    /// `csca.der`.
    pub csca_der: PathBuf,
    /// `ds.pem`.
    pub ds_pem: PathBuf,
    /// Label of the CSCA key pair in the token.
    pub csca_label: String,
    /// Whether the CSCA key pair was already in the token (shared by several PKI folders)
    /// rather than generated now.
    pub csca_reused: bool,
    /// Label of the Document Signer key pair in the token.
    pub ds_label: String,
}

/// What [`rotate`] did.
#[derive(Debug, Clone)]
pub struct Rotation {
    /// Where the previous DS certificate is kept (`ds-<serial hex>.pem`).
    pub previous: PathBuf,
    /// The new `ds.pem`.
    pub ds_pem: PathBuf,
    /// Label of the new Document Signer key pair in the token.
    pub ds_label: String,
    /// Label of the CSCA key pair that issued it.
    pub csca_label: String,
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

/// The key-store error of a failed token operation, as a [`PkiError`]: a key the token lacks
/// is [`PkiError::KeyNotInToken`], anything else keeps the store's error (and whether it is
/// transient).
fn token_error(store: &KeyStore, key_id: &[u8], e: KeyStoreError) -> PkiError {
    match e {
        KeyStoreError::MissingKey { .. } => PkiError::KeyNotInToken {
            key_id: hex::encode(key_id),
            token: store.config().token_label.clone(),
        },
        e => PkiError::KeyStore(e),
    }
}

/// ECDSA P-256 with SHA-256 of `msg` by the token key `key_id`: the digest is computed here,
/// the token signs it (`CKM_ECDSA`), the raw `r || s` becomes a DER ECDSA-Sig-Value.
pub(crate) fn sign_in_token(
    store: &KeyStore,
    key_id: &[u8],
    msg: &[u8],
) -> Result<Vec<u8>, PkiError> {
    let digest = ring::digest::digest(&ring::digest::SHA256, msg);
    let raw = store
        .sign_p256_digest(key_id, digest.as_ref())
        .map_err(|e| token_error(store, key_id, e))?;
    ecdsa_der(&raw)
        .ok_or_else(|| PkiError::Crypto("the token's ECDSA signature is not 64 bytes".into()))
}

/// Where a token key used by rcgen leaves its last failure (rcgen only reports "remote key
/// error").
type ErrorSlot = Arc<Mutex<Option<PkiError>>>;

/// A P-256 key pair in the token, as rcgen's remote key: rcgen hands it the bytes to sign.
struct TokenKey {
    store: Arc<KeyStore>,
    id: Vec<u8>,
    point: Vec<u8>,
    /// The last failure (rcgen only knows "remote key error").
    error: ErrorSlot,
}

impl RemoteKeyPair for TokenKey {
    fn public_key(&self) -> &[u8] {
        &self.point
    }

    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        sign_in_token(&self.store, &self.id, msg).map_err(|e| {
            *self.error.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
            rcgen::Error::RemoteKeyError
        })
    }

    fn algorithm(&self) -> &'static SignatureAlgorithm {
        &rcgen::PKCS_ECDSA_P256_SHA256
    }
}

/// A token key as an rcgen [`KeyPair`], and the slot its errors land in.
fn token_key_pair(store: &Arc<KeyStore>, point: Vec<u8>) -> Result<(KeyPair, ErrorSlot), PkiError> {
    let error = Arc::new(Mutex::new(None));
    let key = TokenKey {
        store: Arc::clone(store),
        id: ec_key_id(&point),
        point,
        error: Arc::clone(&error),
    };
    Ok((KeyPair::from_remote(Box::new(key)).map_err(crypto)?, error))
}

/// An rcgen error, or the token error behind it.
fn rcgen_error(slot: &ErrorSlot) -> impl Fn(rcgen::Error) -> PkiError + '_ {
    move |e| {
        slot.lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .unwrap_or_else(|| crypto(e))
    }
}

/// A public key taken from a certificate request.
struct RequestedKey(Vec<u8>);

impl PublicKeyData for RequestedKey {
    fn der_bytes(&self) -> &[u8] {
        &self.0
    }

    fn algorithm(&self) -> &SignatureAlgorithm {
        &rcgen::PKCS_ECDSA_P256_SHA256
    }
}

fn random_serial(store: &KeyStore) -> Result<SerialNumber, PkiError> {
    let mut serial = store.random(16).map_err(PkiError::KeyStore)?;
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

const CSCA_CN: &str = "idcardd TEST CSCA";
const DS_CN: &str = "idcardd TEST Document Signer";

/// The CSCA certificate's parameters (what rotation rebuilds to issue with the same name).
fn csca_params(country: &str) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = name(country, CSCA_CN);
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params
}

/// The DS certificate's parameters, as the DS asks for them in its request and the CSCA issues
/// them.
fn ds_params(
    country: &str,
    not_before: SystemTime,
    not_after: SystemTime,
    digital_signature: bool,
) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = name(country, DS_CN);
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![if digital_signature {
        KeyUsagePurpose::DigitalSignature
    } else {
        KeyUsagePurpose::KeyAgreement
    }];
    params.not_before = not_before.into();
    params.not_after = not_after.into();
    params.use_authority_key_identifier_extension = true;
    params
}

/// Serializes the "look for a label, then generate a key pair under it" steps of this process,
/// so two PKI operations at once neither generate two CSCA keys nor pick the same DS label.
static KEYGEN: Mutex<()> = Mutex::new(());

/// The CSCA key pair of the token (`labels.csca`), generated when missing; whether it was
/// already there.
fn csca_point(store: &KeyStore) -> Result<(Vec<u8>, bool), PkiError> {
    let _one_at_a_time = KEYGEN.lock().unwrap_or_else(|p| p.into_inner());
    let label = &store.config().labels.csca;
    match store.p256_public(label).map_err(PkiError::KeyStore)? {
        Some(point) => Ok((point, true)),
        None => Ok((
            store.generate_p256(label).map_err(PkiError::KeyStore)?,
            false,
        )),
    }
}

/// A label for a new DS key pair: `<ds_prefix>-<unix seconds>`, with `-<n>` added when the
/// token already has that label.
fn new_ds_label(store: &KeyStore) -> Result<String, PkiError> {
    let prefix = &store.config().labels.ds_prefix;
    let secs = super::crypto::unix_seconds(SystemTime::now());
    let base = format!("{prefix}-{secs}");
    let mut label = base.clone();
    let mut n = 2;
    while store
        .p256_public(&label)
        .map_err(PkiError::KeyStore)?
        .is_some()
    {
        label = format!("{base}-{n}");
        n += 1;
    }
    Ok(label)
}

/// Generates a DS key pair in the token, makes its certificate request (PKCS#10, signed by the
/// new key in the token), and issues the DS certificate from that request with the CSCA's
/// token key. Returns the certificate and the DS key's label.
fn issue_ds(
    store: &Arc<KeyStore>,
    request_params: CertificateParams,
    serial: SerialNumber,
    csca: &Certificate,
    csca_key: &KeyPair,
    csca_error: &ErrorSlot,
) -> Result<(Certificate, String), PkiError> {
    let (ds_label, point) = {
        let _one_at_a_time = KEYGEN.lock().unwrap_or_else(|p| p.into_inner());
        let label = new_ds_label(store)?;
        let point = store.generate_p256(&label).map_err(PkiError::KeyStore)?;
        (label, point)
    };
    let (ds_key, ds_error) = token_key_pair(store, point)?;
    // A PKCS#10 request carries the subject, key and key usage; basicConstraints, the
    // authority key identifier and the serial are the issuer's to add.
    let mut request = request_params.clone();
    request.is_ca = IsCa::NoCa;
    request.use_authority_key_identifier_extension = false;
    let csr = request
        .serialize_request(&ds_key)
        .map_err(rcgen_error(&ds_error))?;

    // The CSCA side: the request must be well-formed and signed by the key it certifies.
    let (rest, req) =
        x509_parser::certification_request::X509CertificationRequest::from_der(csr.der())
            .map_err(|e| malformed("DS certificate request", e))?;
    if !rest.is_empty() {
        return Err(malformed("DS certificate request", "trailing bytes"));
    }
    let info = &req.certification_request_info;
    match verify_signature(
        &info.subject_pki,
        &req.signature_algorithm.algorithm.to_id_string(),
        info.raw,
        &req.signature_value.data,
    ) {
        Ok(()) => {}
        Err(_) => {
            return Err(malformed(
                "DS certificate request",
                "its signature does not verify with the key it requests a certificate for",
            ))
        }
    }
    let requested = RequestedKey(info.subject_pki.subject_public_key.data.to_vec());
    let mut issue = request_params;
    issue.serial_number = Some(serial);
    let ds = issue
        .signed_by(&requested, csca, csca_key)
        .map_err(rcgen_error(csca_error))?;
    let issued = parse_cert(ds.der(), "DS certificate")?;
    if issued.subject().as_raw() != info.subject.as_raw() {
        return Err(PkiError::Crypto(
            "the issued DS certificate's subject differs from the request's".into(),
        ));
    }
    Ok((ds, ds_label))
}

/// Creates a test PKI in `dir` with [`InitOptions::default`].
pub fn init(dir: &Path, store: &Arc<KeyStore>) -> Result<PkiFiles, PkiError> {
    init_with(dir, store, &InitOptions::default())
}

/// Creates a **test-only** CSCA (self-signed, CA, keyCertSign + cRLSign) and a DS certificate
/// it issues (digitalSignature), both ECDSA P-256 with SHA-256, with their private keys in the
/// token `store`: the CSCA key pair is labelled `labels.csca` (reused when the token already
/// has it: several PKI folders may share a token), the DS key pair `<labels.ds_prefix>-<unix
/// seconds>`. The DS certificate is issued from a PKCS#10 request signed by the DS key.
/// Writes `csca.pem`, `csca.der`, `ds.pem` and a README: certificates only, no key. Refuses
/// to overwrite existing files.
pub fn init_with(
    dir: &Path,
    store: &Arc<KeyStore>,
    options: &InitOptions,
) -> Result<PkiFiles, PkiError> {
    let csca_label = store.config().labels.csca.clone();
    let mut files = PkiFiles {
        csca_pem: dir.join(CSCA_PEM),
        csca_der: dir.join(CSCA_DER),
        ds_pem: dir.join(DS_PEM),
        csca_label: csca_label.clone(),
        csca_reused: false,
        ds_label: String::new(),
    };
    for p in [&files.csca_pem, &files.csca_der, &files.ds_pem] {
        if p.exists() {
            return Err(PkiError::AlreadyExists(p.clone()));
        }
    }
    fs::create_dir_all(dir).map_err(io(dir))?;

    let (csca_point, reused) = csca_point(store)?;
    files.csca_reused = reused;
    let (csca_key, csca_error) = token_key_pair(store, csca_point)?;
    let mut params = csca_params(&options.country);
    params.not_before = options.csca_not_before.into();
    params.not_after = options.csca_not_after.into();
    params.serial_number = Some(random_serial(store)?);
    let csca = params
        .self_signed(&csca_key)
        .map_err(rcgen_error(&csca_error))?;

    let request = ds_params(
        &options.country,
        options.ds_not_before,
        options.ds_not_after,
        options.ds_digital_signature,
    );
    let serial = random_serial(store)?;
    let (ds, ds_label) = issue_ds(store, request, serial, &csca, &csca_key, &csca_error)?;
    files.ds_label = ds_label;

    write_file(&files.csca_pem, csca.pem().as_bytes(), 0o644)?;
    write_file(&files.csca_der, csca.der(), 0o644)?;
    write_file(&files.ds_pem, ds.pem().as_bytes(), 0o644)?;
    let readme = dir.join(README);
    let text = readme_text(&store.config().token_label, &csca_label, &files.ds_label);
    fs::write(&readme, text).map_err(io(&readme))?;
    Ok(files)
}

/// Issues a new Document Signer from the CSCA of `dir`: a new DS key pair in the token, a
/// PKCS#10 request signed by it, a certificate signed by the CSCA's token key (valid from a
/// day ago for 3 years, not past the CSCA). The previous `ds.pem` is kept as
/// `ds-<serial hex>.pem` (SODs it signed embed it and still verify against the CSCA) and
/// `ds.pem` becomes the new certificate. The CSCA key must be in `store`.
pub fn rotate(dir: &Path, store: &Arc<KeyStore>) -> Result<Rotation, PkiError> {
    let csca_file = CscaCertificate::load(&dir.join(CSCA_PEM))?;
    let ds_path = dir.join(DS_PEM);
    let old_der = read_pem(&ds_path, "CERTIFICATE")?;
    let old = parse_cert(&old_der, "DS certificate")?;
    let previous = dir.join(format!("ds-{}.pem", hex::encode(old.raw_serial())));
    if previous.exists() {
        return Err(PkiError::AlreadyExists(previous));
    }
    let csca_parsed = csca_file
        .parsed()
        .ok_or_else(|| malformed("CSCA certificate", "does not parse"))?;
    let country = csca_parsed
        .subject()
        .iter_country()
        .next()
        .and_then(|c| c.as_str().ok())
        .ok_or_else(|| malformed("CSCA certificate", "no country in its subject"))?
        .to_string();
    let csca_point = csca_parsed.public_key().subject_public_key.data.to_vec();
    let csca_not_after = csca_parsed.validity().not_after.timestamp();

    // The CSCA as an issuer: same name and key as csca.pem (rcgen needs a certificate object;
    // this one is rebuilt and signed in the token, which also proves the CSCA key is there).
    let (csca_key, csca_error) = token_key_pair(store, csca_point)?;
    let csca = csca_params(&country)
        .self_signed(&csca_key)
        .map_err(rcgen_error(&csca_error))?;
    if parse_cert(csca.der(), "CSCA")?.subject().as_raw() != csca_parsed.subject().as_raw() {
        return Err(PkiError::WrongChain(format!(
            "{} was not made by `idcardd pki init`: its subject {} cannot be issued from",
            CSCA_PEM,
            csca_parsed.subject()
        )));
    }

    let now = SystemTime::now();
    let limit = SystemTime::UNIX_EPOCH + Duration::from_secs(csca_not_after.max(0) as u64);
    let not_after = (now + 3 * 365 * DAY).min(limit);
    let request = ds_params(&country, now - DAY, not_after, true);
    let serial = random_serial(store)?;
    let (ds, ds_label) = issue_ds(store, request, serial, &csca, &csca_key, &csca_error)?;

    // Check the new certificate the way signing will load it before it replaces ds.pem.
    DocumentSigner::from_parts(csca_file.clone(), ds.der().to_vec(), Arc::clone(store), now)?;
    let staged = dir.join("ds.pem.new");
    let _ = fs::remove_file(&staged);
    write_file(&staged, ds.pem().as_bytes(), 0o644)?;
    fs::hard_link(&ds_path, &previous).map_err(io(&previous))?;
    fs::rename(&staged, &ds_path).map_err(io(&ds_path))?;
    let readme = dir.join(README);
    let text = readme_text(
        &store.config().token_label,
        &store.config().labels.csca,
        &ds_label,
    );
    fs::write(&readme, text).map_err(io(&readme))?;
    Ok(Rotation {
        previous,
        ds_pem: ds_path,
        ds_label,
        csca_label: store.config().labels.csca.clone(),
    })
}

fn readme_text(token: &str, csca_label: &str, ds_label: &str) -> String {
    format!(
        "\
TEST ONLY: this PKI was made by `idcardd pki init`.

csca.pem / csca.der  a self-signed test Country Signing CA
ds.pem               the current Document Signer certificate, issued by it
ds-<serial>.pem      earlier Document Signer certificates (`idcardd pki rotate`), kept so
                     the documents they signed can still be checked

No private key is in this folder. The keys were generated in the PKCS#11 token {token:?}
as sensitive, non-extractable EC P-256 key pairs and every signature is made there:

  CSCA key pair            label {csca_label:?}
  Document Signer key pair label {ds_label:?} (a rotation adds another `<prefix>-<time>`)

A certificate finds its private key by CKA_ID = the first 20 bytes of SHA-256 of its public
point, so this folder signs only with that token.

Cards signed with it verify only against this CSCA. Never use it for real documents: a
production CSCA lives offline in its own HSM.
"
    )
}

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

/// The Document Signer: its checked certificate and the token holding its private key. Made
/// only by [`DocumentSigner::load`] (or [`DocumentSigner::from_parts`]), so holding one means
/// the certificate passed the checks and the token signed with the key it certifies.
pub struct DocumentSigner {
    /// The DS certificate, DER (embedded in every SOD).
    pub(crate) cert_der: Vec<u8>,
    /// The token with the DS private key.
    store: Arc<KeyStore>,
    /// CKA_ID of the DS key pair: [`keystore::ec_key_id`] of the certificate's public point.
    key_id: Vec<u8>,
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
            .field("key_id", &hex::encode(&self.key_id))
            .field("token", &self.store.config().token_label)
            .finish()
    }
}

/// Checks a DS certificate (DER) at `now` against the CSCA that should have issued it:
/// validity, key usage digitalSignature, issuer name and signature. The private key is not
/// looked at ([`DocumentSigner::from_parts`] does that too).
pub fn check_ds_certificate(
    csca: &CscaCertificate,
    cert_der: &[u8],
    now: SystemTime,
) -> Result<(), PkiError> {
    let ds = parse_cert(cert_der, "DS certificate")?;
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
    })
}

/// What the load check signs in the token (and verifies with the certificate's key).
const KEY_CHECK_MESSAGE: &[u8] = b"idcardd: Document Signer key check";

impl DocumentSigner {
    /// Loads `ds.pem` and `csca.pem` from `dir`, checks the DS certificate now and that
    /// `store` holds its private key.
    pub fn load(dir: &Path, store: Arc<KeyStore>) -> Result<DocumentSigner, PkiError> {
        DocumentSigner::load_at(dir, store, SystemTime::now())
    }

    /// Like [`DocumentSigner::load`], checking validity at `now`.
    pub fn load_at(
        dir: &Path,
        store: Arc<KeyStore>,
        now: SystemTime,
    ) -> Result<DocumentSigner, PkiError> {
        let csca = CscaCertificate::load(&dir.join(CSCA_PEM))?;
        let cert_der = read_pem(&dir.join(DS_PEM), "CERTIFICATE")?.to_vec();
        DocumentSigner::from_parts(csca, cert_der, store, now)
    }

    /// From a CSCA and a DS certificate (DER), checked at `now`: the certificate must be
    /// valid, allow digitalSignature, be issued (name and signature) by `csca`, certify an EC
    /// P-256 key, and `store` must hold the private key (found by [`keystore::ec_key_id`] of
    /// the certificate's public point; one test signature made there must verify with the
    /// certificate).
    pub fn from_parts(
        csca: CscaCertificate,
        cert_der: Vec<u8>,
        store: Arc<KeyStore>,
        now: SystemTime,
    ) -> Result<DocumentSigner, PkiError> {
        check_ds_certificate(&csca, &cert_der, now)?;
        let ds = parse_cert(&cert_der, "DS certificate")?;
        let spki = ds.public_key();
        let point = &spki.subject_public_key.data[..];
        let p256 = spki
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.as_oid().ok())
            .is_some_and(|o| o.to_id_string() == "1.2.840.10045.3.1.7");
        if !p256 || point.len() != 65 || point[0] != 0x04 {
            return Err(PkiError::UnsupportedAlgorithm(format!(
                "DS key {} (only EC P-256 keys in the token are supported)",
                spki.algorithm.algorithm.to_id_string()
            )));
        }
        let key_id = ec_key_id(point);
        let sig = sign_in_token(&store, &key_id, KEY_CHECK_MESSAGE)?;
        if verify_signature(
            spki,
            super::crypto::OID_ECDSA_SHA256,
            KEY_CHECK_MESSAGE,
            &sig,
        )
        .is_err()
        {
            return Err(PkiError::KeyMismatch);
        }
        Ok(DocumentSigner {
            cert_der,
            store,
            key_id,
            csca,
        })
    }

    /// Signs `msg` (ECDSA P-256 with SHA-256, DER signature) with the DS key in the token.
    pub(crate) fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, PkiError> {
        sign_in_token(&self.store, &self.key_id, msg)
    }

    /// The DS certificate, DER.
    pub fn certificate_der(&self) -> &[u8] {
        &self.cert_der
    }

    /// The CSCA the DS certificate was checked against.
    pub fn csca(&self) -> &CscaCertificate {
        &self.csca
    }

    /// CKA_ID of the DS key pair in the token.
    pub fn key_id(&self) -> &[u8] {
        &self.key_id
    }

    /// The token that signs.
    pub fn store(&self) -> &Arc<KeyStore> {
        &self.store
    }
}
