//! The keys in the token: what `keys list` shows, what the policy checks, what `keys init`
//! generates. Never a key's value.

use cryptoki::error::Error as CkError;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{
    Attribute, AttributeInfo, AttributeType, KeyType, ObjectClass, ObjectHandle,
};
use cryptoki::session::Session;
use serde::Serialize;

use crate::error::KeyStoreError;
use crate::store::{attribute_types, ec_key_id, KeyStore, P256_PARAMS};

/// What a key is for: its type, and the one mechanism idcardd uses it with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyPurpose {
    /// AES-256, `CKM_AES_CMAC` (card key derivation).
    CardMaster,
    /// 256-bit generic secret, `CKM_SHA256_HMAC` (audit chain).
    AuditHmac,
    /// AES-256, `CKM_AES_GCM` encrypt and decrypt (PIN mailer).
    Mailer,
}

impl KeyPurpose {
    /// The mechanism name shown by `keys list`.
    pub fn mechanism(self) -> &'static str {
        match self {
            KeyPurpose::CardMaster => "CKM_AES_CMAC",
            KeyPurpose::AuditHmac => "CKM_SHA256_HMAC",
            KeyPurpose::Mailer => "CKM_AES_GCM",
        }
    }
}

/// One key object as `keys list` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyInfo {
    /// CKA_LABEL.
    pub label: String,
    /// CKA_ID, hex.
    pub id: String,
    /// secret, private or public.
    pub class: String,
    /// AES, generic secret, EC.
    pub key_type: String,
    /// Key size in bits (EC: the curve's).
    pub bits: Option<u64>,
    /// The mechanism idcardd uses the key with.
    pub mechanism: String,
    /// CKA_SENSITIVE (private and secret keys).
    pub sensitive: Option<bool>,
    /// CKA_EXTRACTABLE.
    pub extractable: Option<bool>,
    /// CKA_ALWAYS_SENSITIVE: never had a readable value.
    pub always_sensitive: Option<bool>,
    /// CKA_NEVER_EXTRACTABLE.
    pub never_extractable: Option<bool>,
    /// CKA_LOCAL: generated in the token.
    pub local: Option<bool>,
    /// The operations the key allows (sign, verify, encrypt, decrypt, wrap, unwrap, derive).
    pub allows: Vec<String>,
}

/// The attributes of one object, as a lookup.
struct Attrs(Vec<Attribute>);

impl Attrs {
    fn flag(&self, t: AttributeType) -> Option<bool> {
        self.0.iter().find_map(|a| match (a, t) {
            (Attribute::Sensitive(v), AttributeType::Sensitive)
            | (Attribute::Extractable(v), AttributeType::Extractable)
            | (Attribute::AlwaysSensitive(v), AttributeType::AlwaysSensitive)
            | (Attribute::NeverExtractable(v), AttributeType::NeverExtractable)
            | (Attribute::Local(v), AttributeType::Local)
            | (Attribute::Sign(v), AttributeType::Sign)
            | (Attribute::Verify(v), AttributeType::Verify)
            | (Attribute::Encrypt(v), AttributeType::Encrypt)
            | (Attribute::Decrypt(v), AttributeType::Decrypt)
            | (Attribute::Wrap(v), AttributeType::Wrap)
            | (Attribute::Unwrap(v), AttributeType::Unwrap)
            | (Attribute::Derive(v), AttributeType::Derive) => Some(*v),
            _ => None,
        })
    }

    fn class(&self) -> Option<ObjectClass> {
        self.0.iter().find_map(|a| match a {
            Attribute::Class(c) => Some(*c),
            _ => None,
        })
    }

    fn key_type(&self) -> Option<KeyType> {
        self.0.iter().find_map(|a| match a {
            Attribute::KeyType(k) => Some(*k),
            _ => None,
        })
    }

    fn bytes(&self, t: AttributeType) -> Option<&[u8]> {
        self.0.iter().find_map(|a| match (a, t) {
            (Attribute::Label(v), AttributeType::Label)
            | (Attribute::Id(v), AttributeType::Id)
            | (Attribute::EcPoint(v), AttributeType::EcPoint) => Some(&v[..]),
            _ => None,
        })
    }

    fn value_len(&self) -> Option<u64> {
        self.0.iter().find_map(|a| match a {
            Attribute::ValueLen(n) => Some(u64::from(*n)),
            _ => None,
        })
    }
}

fn read_attrs(s: &Session, h: ObjectHandle) -> Result<Attrs, CkError> {
    s.get_attributes(h, &attribute_types()).map(Attrs)
}

/// The uncompressed point inside a CKA_EC_POINT (a DER OCTET STRING around `04 || x || y`).
pub(crate) fn ec_point_bytes(der: &[u8]) -> Option<&[u8]> {
    match der {
        [0x04, 0x41, rest @ ..] if rest.len() == 65 && rest[0] == 0x04 => Some(rest),
        [0x04, ..] if der.len() == 65 => Some(der),
        _ => None,
    }
}

impl KeyStore {
    /// The configured symmetric keys and their purposes.
    fn symmetric(&self) -> [(String, KeyPurpose); 4] {
        let l = &self.config().labels;
        [
            (l.perso_master.clone(), KeyPurpose::CardMaster),
            (l.terminal_master.clone(), KeyPurpose::CardMaster),
            (l.audit_hmac.clone(), KeyPurpose::AuditHmac),
            (l.mailer.clone(), KeyPurpose::Mailer),
        ]
    }

    /// Every problem with the configured keys: missing, extractable, not sensitive, the wrong
    /// type or size, or not allowed the one operation it is for. Empty when all is well.
    pub fn check(&self) -> Result<Vec<KeyStoreError>, KeyStoreError> {
        let mut problems = Vec::new();
        for (label, purpose) in self.symmetric() {
            let found = self.with_session("key check", |s| {
                let h = s.find_objects(&[
                    Attribute::Class(ObjectClass::SECRET_KEY),
                    Attribute::Label(label.as_bytes().to_vec()),
                ])?;
                match h.first() {
                    Some(h) => read_attrs(s, *h).map(Some),
                    None => Ok(None),
                }
            })?;
            let Some(attrs) = found else {
                problems.push(self.missing(&label));
                continue;
            };
            if let Some(reason) = policy_violation(&attrs, purpose) {
                problems.push(KeyStoreError::WrongAttributes { label, reason });
            }
        }
        Ok(problems)
    }

    /// Every key object in the token (secret, private and public keys), attributes only.
    pub fn list(&self) -> Result<Vec<KeyInfo>, KeyStoreError> {
        let purposes = self.symmetric();
        self.with_session("key list", |s| {
            let mut out = Vec::new();
            for class in [
                ObjectClass::SECRET_KEY,
                ObjectClass::PRIVATE_KEY,
                ObjectClass::PUBLIC_KEY,
            ] {
                for h in s.find_objects(&[Attribute::Class(class)])? {
                    let a = read_attrs(s, h)?;
                    let label =
                        String::from_utf8_lossy(a.bytes(AttributeType::Label).unwrap_or_default())
                            .into_owned();
                    let key_type = a.key_type();
                    let mechanism = purposes
                        .iter()
                        .find(|(l, _)| *l == label)
                        .map(|(_, p)| p.mechanism())
                        .unwrap_or(if key_type == Some(KeyType::EC) {
                            "CKM_ECDSA"
                        } else {
                            "(not used by idcardd)"
                        });
                    let secret_or_private = class != ObjectClass::PUBLIC_KEY;
                    let flag = |t| if secret_or_private { a.flag(t) } else { None };
                    out.push(KeyInfo {
                        label,
                        id: hex::encode(a.bytes(AttributeType::Id).unwrap_or_default()),
                        class: match class {
                            ObjectClass::SECRET_KEY => "secret",
                            ObjectClass::PRIVATE_KEY => "private",
                            _ => "public",
                        }
                        .into(),
                        key_type: match key_type {
                            Some(KeyType::AES) => "AES".into(),
                            Some(KeyType::GENERIC_SECRET) => "generic secret".into(),
                            Some(KeyType::EC) => "EC".into(),
                            Some(k) => format!("{k}"),
                            None => "?".into(),
                        },
                        bits: if key_type == Some(KeyType::EC) {
                            Some(256)
                        } else {
                            a.value_len().map(|n| n * 8)
                        },
                        mechanism: mechanism.into(),
                        sensitive: flag(AttributeType::Sensitive),
                        extractable: flag(AttributeType::Extractable),
                        always_sensitive: flag(AttributeType::AlwaysSensitive),
                        never_extractable: flag(AttributeType::NeverExtractable),
                        local: a.flag(AttributeType::Local),
                        allows: [
                            (AttributeType::Sign, "sign"),
                            (AttributeType::Verify, "verify"),
                            (AttributeType::Encrypt, "encrypt"),
                            (AttributeType::Decrypt, "decrypt"),
                            (AttributeType::Wrap, "wrap"),
                            (AttributeType::Unwrap, "unwrap"),
                            (AttributeType::Derive, "derive"),
                        ]
                        .into_iter()
                        .filter(|(t, _)| a.flag(*t) == Some(true))
                        .map(|(_, n)| n.to_string())
                        .collect(),
                    });
                }
            }
            out.sort_by(|x, y| (&x.label, &x.class).cmp(&(&y.label, &y.class)));
            Ok(out)
        })
    }

    /// Whether the token answers a request for the value of `label`'s key (it must not: the
    /// answer is "sensitive"). For tests and `keys list --verify`.
    pub fn value_is_readable(&self, label: &str) -> Result<bool, KeyStoreError> {
        self.with_session("value probe", |s| {
            let h = s.find_objects(&[Attribute::Label(label.as_bytes().to_vec())])?;
            let mut readable = false;
            for h in h {
                let info = s.get_attribute_info(h, &[AttributeType::Value])?;
                readable |= matches!(info.first(), Some(AttributeInfo::Available(_)));
            }
            Ok(readable)
        })
    }

    /// Generates every configured symmetric key that the token lacks (sensitive, not
    /// extractable, allowed only its own operation). Returns each label with whether it was
    /// made now.
    pub fn generate_missing(&self) -> Result<Vec<(String, bool)>, KeyStoreError> {
        let mut out = Vec::new();
        for (label, purpose) in self.symmetric() {
            let exists = self.with_session("key lookup", |s| {
                s.find_objects(&[
                    Attribute::Class(ObjectClass::SECRET_KEY),
                    Attribute::Label(label.as_bytes().to_vec()),
                ])
                .map(|h| !h.is_empty())
            })?;
            if !exists {
                self.generate_secret(&label, purpose)?;
            }
            out.push((label, !exists));
        }
        Ok(out)
    }

    fn generate_secret(&self, label: &str, purpose: KeyPurpose) -> Result<(), KeyStoreError> {
        let mut template = vec![
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Label(label.as_bytes().to_vec()),
            Attribute::Id(label.as_bytes().to_vec()),
            Attribute::ValueLen(32u64.into()),
            Attribute::Wrap(false),
            Attribute::Unwrap(false),
            Attribute::Derive(false),
        ];
        let (mechanism, uses) = match purpose {
            KeyPurpose::CardMaster => (
                Mechanism::AesKeyGen,
                [(true, true), (false, false)], // sign+verify, no encrypt/decrypt
            ),
            KeyPurpose::AuditHmac => (
                Mechanism::GenericSecretKeyGen,
                [(true, true), (false, false)],
            ),
            KeyPurpose::Mailer => (Mechanism::AesKeyGen, [(false, false), (true, true)]),
        };
        template.extend([
            Attribute::Sign(uses[0].0),
            Attribute::Verify(uses[0].1),
            Attribute::Encrypt(uses[1].0),
            Attribute::Decrypt(uses[1].1),
        ]);
        self.with_rw_session("key generation", |s| {
            s.generate_key(&mechanism, &template).map(|_| ())
        })
    }

    /// Generates an EC P-256 key pair in the token (private key sensitive, not extractable,
    /// sign only) labelled `label`; returns its uncompressed public point. The pair's CKA_ID is
    /// [`ec_key_id`] of the point, which is how a certificate finds its key.
    pub fn generate_p256(&self, label: &str) -> Result<Vec<u8>, KeyStoreError> {
        let public = vec![
            Attribute::Token(true),
            Attribute::Verify(true),
            Attribute::Encrypt(false),
            Attribute::Wrap(false),
            Attribute::Derive(false),
            Attribute::EcParams(P256_PARAMS.to_vec()),
            Attribute::Label(label.as_bytes().to_vec()),
        ];
        let private = vec![
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Sign(true),
            Attribute::Decrypt(false),
            Attribute::Unwrap(false),
            Attribute::Derive(false),
            Attribute::Label(label.as_bytes().to_vec()),
        ];
        self.with_rw_session("EC key pair generation", |s| {
            let (pub_h, priv_h) =
                s.generate_key_pair(&Mechanism::EccKeyPairGen, &public, &private)?;
            let attrs = s.get_attributes(pub_h, &[AttributeType::EcPoint])?;
            let point = attrs
                .iter()
                .find_map(|a| match a {
                    Attribute::EcPoint(p) => ec_point_bytes(p).map(<[u8]>::to_vec),
                    _ => None,
                })
                .ok_or(CkError::InvalidValue)?;
            let id = ec_key_id(&point);
            s.update_attributes(pub_h, &[Attribute::Id(id.clone())])?;
            s.update_attributes(priv_h, &[Attribute::Id(id)])?;
            Ok(point)
        })
    }

    /// The uncompressed public point of the EC key pair labelled `label`, if the token has one.
    pub fn p256_public(&self, label: &str) -> Result<Option<Vec<u8>>, KeyStoreError> {
        self.with_session("EC public key lookup", |s| {
            let found = s.find_objects(&[
                Attribute::Class(ObjectClass::PUBLIC_KEY),
                Attribute::KeyType(KeyType::EC),
                Attribute::Label(label.as_bytes().to_vec()),
            ])?;
            let Some(h) = found.first() else {
                return Ok(None);
            };
            let attrs = s.get_attributes(*h, &[AttributeType::EcPoint])?;
            Ok(attrs.iter().find_map(|a| match a {
                Attribute::EcPoint(p) => ec_point_bytes(p).map(<[u8]>::to_vec),
                _ => None,
            }))
        })
    }

    /// Runs `f` on a read-write session (creating objects needs one).
    fn with_rw_session<R>(
        &self,
        operation: &str,
        f: impl FnOnce(&Session) -> Result<R, CkError>,
    ) -> Result<R, KeyStoreError> {
        self.with_exclusive_rw_session(operation, f)
    }
}

/// Why a symmetric key's attributes break the policy for `purpose`, if they do.
fn policy_violation(a: &Attrs, purpose: KeyPurpose) -> Option<String> {
    let want_type = match purpose {
        KeyPurpose::AuditHmac => KeyType::GENERIC_SECRET,
        _ => KeyType::AES,
    };
    if a.key_type() != Some(want_type) {
        return Some(format!(
            "key type {} where {want_type} is needed",
            a.key_type().map_or("?".into(), |k| k.to_string())
        ));
    }
    if a.class() != Some(ObjectClass::SECRET_KEY) {
        return Some("not a secret key".into());
    }
    if a.value_len() != Some(32) {
        return Some(format!(
            "{} bytes where 32 (256 bits) are needed",
            a.value_len().map_or("?".into(), |n| n.to_string())
        ));
    }
    if a.flag(AttributeType::Sensitive) != Some(true) {
        return Some("CKA_SENSITIVE is false: the token would reveal its value".into());
    }
    if a.flag(AttributeType::Extractable) != Some(false) {
        return Some("CKA_EXTRACTABLE is true: the key could be wrapped out of the token".into());
    }
    let needed: &[(AttributeType, &str)] = match purpose {
        KeyPurpose::CardMaster | KeyPurpose::AuditHmac => &[(AttributeType::Sign, "CKA_SIGN")],
        KeyPurpose::Mailer => &[
            (AttributeType::Encrypt, "CKA_ENCRYPT"),
            (AttributeType::Decrypt, "CKA_DECRYPT"),
        ],
    };
    for (t, name) in needed {
        if a.flag(*t) != Some(true) {
            return Some(format!(
                "{name} is false: the key cannot do {}",
                purpose.mechanism()
            ));
        }
    }
    None
}
