//! Keys that may sign tokens: the certificates of `rootcertbundle`, the
//! keys of a `jwks` file, and the built-in token server's own key (a P-256
//! key in a PKCS#8 PEM file, made and saved on first start when missing).
//! Each key carries the algorithms of its family only, so a token whose
//! `alg` does not fit the key (`HS256` over an RSA public key, `none`) is
//! never checked against it.

use super::AuthError;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivatePkcs8KeyDer};
use sha2::{Digest as _, Sha256};
use std::path::Path;

/// A key tokens may be signed with.
#[derive(Clone)]
pub struct TrustedKey {
    pub kid: Option<String>,
    pub key: DecodingKey,
    pub algorithms: Vec<Algorithm>,
}

const RSA_ALGORITHMS: [Algorithm; 6] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
];

const OID_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
const OID_EC: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const OID_P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const OID_P384: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x22];
const OID_ED25519: &[u8] = &[0x2b, 0x65, 0x70];

fn key_error(path: &Path, message: impl Into<String>) -> AuthError {
    AuthError::Key {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

/// The keys of every certificate in a PEM bundle.
pub fn from_cert_bundle(path: &Path) -> Result<Vec<TrustedKey>, AuthError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .and_then(|iter| iter.collect::<Result<_, _>>())
        .map_err(|e| key_error(path, e.to_string()))?;
    if certs.is_empty() {
        return Err(key_error(path, "no certificate in the bundle"));
    }
    certs
        .iter()
        .map(|der| {
            let cert = webpki::EndEntityCert::try_from(der)
                .map_err(|e| key_error(path, format!("unreadable certificate: {e:?}")))?;
            let spki = cert.subject_public_key_info();
            let (key, algorithms) = from_spki(spki.as_ref()).map_err(|m| key_error(path, m))?;
            Ok(TrustedKey {
                kid: Some(libtrust_key_id(spki.as_ref())),
                key,
                algorithms,
            })
        })
        .collect()
}

/// The public keys of a JSON Web Key Set (symmetric `oct` keys refused).
pub fn from_jwks(path: &Path) -> Result<Vec<TrustedKey>, AuthError> {
    let text = std::fs::read_to_string(path).map_err(|e| key_error(path, e.to_string()))?;
    let set: JwkSet =
        serde_json::from_str(&text).map_err(|e| key_error(path, format!("not a JWKS: {e}")))?;
    if set.keys.is_empty() {
        return Err(key_error(path, "the key set is empty"));
    }
    set.keys
        .iter()
        .map(|jwk| {
            let algorithms = match &jwk.algorithm {
                AlgorithmParameters::RSA(_) => RSA_ALGORITHMS.to_vec(),
                AlgorithmParameters::EllipticCurve(ec) => match ec.curve {
                    EllipticCurve::P256 => vec![Algorithm::ES256],
                    EllipticCurve::P384 => vec![Algorithm::ES384],
                    _ => return Err(key_error(path, "unsupported elliptic curve")),
                },
                AlgorithmParameters::OctetKeyPair(_) => vec![Algorithm::EdDSA],
                AlgorithmParameters::OctetKey(_) => {
                    return Err(key_error(path, "symmetric (oct) keys are not accepted"))
                }
            };
            let key = DecodingKey::from_jwk(jwk).map_err(|e| key_error(path, e.to_string()))?;
            Ok(TrustedKey {
                kid: jwk.common.key_id.clone(),
                key,
                algorithms,
            })
        })
        .collect()
}

/// A decoding key from a DER `SubjectPublicKeyInfo`.
fn from_spki(spki: &[u8]) -> Result<(DecodingKey, Vec<Algorithm>), String> {
    let bad = || "unreadable public key".to_string();
    let (_, body, _) = der_item(spki, 0x30).ok_or_else(bad)?;
    let (_, algorithm, rest) = der_item(body, 0x30).ok_or_else(bad)?;
    let (_, oid, params) = der_item(algorithm, 0x06).ok_or_else(bad)?;
    let (_, bits, _) = der_item(rest, 0x03).ok_or_else(bad)?;
    let key = match bits {
        [0, key @ ..] if !key.is_empty() => key,
        _ => return Err(bad()),
    };
    if oid == OID_RSA {
        Ok((DecodingKey::from_rsa_der(key), RSA_ALGORITHMS.to_vec()))
    } else if oid == OID_EC {
        let (_, curve, _) = der_item(params, 0x06).ok_or_else(bad)?;
        let algorithm = if curve == OID_P256 {
            Algorithm::ES256
        } else if curve == OID_P384 {
            Algorithm::ES384
        } else {
            return Err("unsupported elliptic curve (P-256 and P-384 are)".into());
        };
        Ok((DecodingKey::from_ec_der(key), vec![algorithm]))
    } else if oid == OID_ED25519 {
        Ok((DecodingKey::from_ed_der(key), vec![Algorithm::EdDSA]))
    } else {
        Err("unsupported key type (RSA, EC P-256/P-384 and Ed25519 are)".into())
    }
}

/// Reads one DER item of tag `tag`: `(tag, content, rest)`.
fn der_item(input: &[u8], tag: u8) -> Option<(u8, &[u8], &[u8])> {
    let (&found, rest) = input.split_first()?;
    if found != tag {
        return None;
    }
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (first as usize, rest)
    } else {
        let count = (first & 0x7f) as usize;
        if count == 0 || count > 4 || rest.len() < count {
            return None;
        }
        let len = rest[..count]
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | b as usize);
        (len, &rest[count..])
    };
    if rest.len() < len {
        return None;
    }
    Some((found, &rest[..len], &rest[len..]))
}

/// The key ID Distribution's libtrust gives a key (and docker_auth puts in
/// `kid`): the first 240 bits of the SHA-256 of the DER public key, in
/// base32, in groups of four joined by `:`.
fn libtrust_key_id(spki: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let digest = Sha256::digest(spki);
    let bits = &digest[..30];
    let mut out = String::new();
    let mut buffer = 0u64;
    let mut held = 0;
    for &byte in bits {
        buffer = (buffer << 8) | byte as u64;
        held += 8;
        while held >= 5 {
            held -= 5;
            out.push(ALPHABET[((buffer >> held) & 31) as usize] as char);
        }
    }
    out.as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(":")
}

/// The built-in token server's key.
pub struct SigningKey {
    pub encoding: EncodingKey,
    pub kid: String,
    pub trusted: TrustedKey,
}

impl SigningKey {
    /// Loads the key at `path`, or makes one and saves it there (mode
    /// 0600, written to a temporary file and renamed).
    pub fn load_or_create(path: &Path) -> Result<SigningKey, AuthError> {
        let rng = SystemRandom::new();
        let pkcs8: Vec<u8> = if path.exists() {
            PrivatePkcs8KeyDer::from_pem_file(path)
                .map_err(|e| key_error(path, format!("not a PKCS#8 PEM key: {e}")))?
                .secret_pkcs8_der()
                .to_vec()
        } else {
            let document = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                .map_err(|_| key_error(path, "cannot generate a key"))?;
            save_pem(path, document.as_ref()).map_err(|e| key_error(path, e.to_string()))?;
            tracing::info!(path = %path.display(), "made a new token signing key");
            document.as_ref().to_vec()
        };
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &pkcs8, &rng)
            .map_err(|_| key_error(path, "only ECDSA P-256 keys are used to sign tokens"))?;
        let point = pair.public_key().as_ref();
        let spki = p256_spki(point);
        let kid = libtrust_key_id(&spki);
        Ok(SigningKey {
            encoding: EncodingKey::from_ec_der(&pkcs8),
            kid: kid.clone(),
            trusted: TrustedKey {
                kid: Some(kid),
                key: DecodingKey::from_ec_der(point),
                algorithms: vec![Algorithm::ES256],
            },
        })
    }
}

/// The DER `SubjectPublicKeyInfo` of an uncompressed P-256 point.
fn p256_spki(point: &[u8]) -> Vec<u8> {
    let mut algorithm = vec![0x06, OID_EC.len() as u8];
    algorithm.extend_from_slice(OID_EC);
    algorithm.extend_from_slice(&[0x06, OID_P256.len() as u8]);
    algorithm.extend_from_slice(OID_P256);
    let mut body = vec![0x30, algorithm.len() as u8];
    body.extend_from_slice(&algorithm);
    body.extend_from_slice(&[0x03, point.len() as u8 + 1, 0]);
    body.extend_from_slice(point);
    let mut spki = vec![0x30, body.len() as u8];
    spki.extend_from_slice(&body);
    spki
}

fn save_pem(path: &Path, der: &[u8]) -> std::io::Result<()> {
    use base64::Engine as _;
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let encoded = base64::engine::general_purpose::STANDARD.encode(der);
    let mut text = String::from("-----BEGIN PRIVATE KEY-----\n");
    for line in encoded.as_bytes().chunks(64) {
        text.push_str(&String::from_utf8_lossy(line));
        text.push('\n');
    }
    text.push_str("-----END PRIVATE KEY-----\n");
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let temp = path.with_extension("tmp");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&temp)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    std::fs::rename(&temp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signing_key_is_made_once_and_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys/token.pem");
        let made = SigningKey::load_or_create(&path).unwrap();
        let loaded = SigningKey::load_or_create(&path).unwrap();
        assert_eq!(made.kid, loaded.kid);
        assert_eq!(made.kid.len(), 59, "{}", made.kid);
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        std::fs::write(&path, "garbage").unwrap();
        assert!(SigningKey::load_or_create(&path).is_err());
    }

    #[test]
    fn spki_round_trip() {
        let point = [4u8; 65];
        let (_, algorithms) = from_spki(&p256_spki(&point)).unwrap();
        assert_eq!(algorithms, vec![Algorithm::ES256]);
        assert!(from_spki(&[0x30, 0x05, 1, 2]).is_err());
        assert!(from_spki(&[]).is_err());
    }
}
