//! Sealing personal data at rest with the host's key (ring only, no OpenSSL).
//!
//! The host supplies a 32-byte key (from the Android keystore, say). Two sub-keys are
//! derived with HKDF-SHA256: one seals values with ChaCha20-Poly1305, each value bound to
//! where it is stored (associated data), and one makes keyed hashes (HMAC-SHA256) so exact
//! lookups by ID number or phone work without the plaintext in any index.

use std::fmt;

pub mod identity;

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};
use ring::{hkdf, hmac};

/// Length of the host key.
pub const KEY_LEN: usize = 32;
/// Bytes kept of a lookup hash: 64 bits make an accidental match among a county's tickets
/// vanishingly unlikely, and every byte is paid once per ticket per index.
pub const LOOKUP_LEN: usize = 8;

/// Why sealing or opening failed. Never carries the data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CryptoError {
    #[error("store key must be {KEY_LEN} bytes")]
    KeyLength,
    #[error("sealed value does not open with this key (wrong key or damaged data)")]
    Open,
    #[error("system random number generator failed")]
    Random,
}

/// The key the host supplies; never printed, wiped from memory when dropped.
#[derive(Clone, zeroize::Zeroize, zeroize::ZeroizeOnDrop)]
pub struct StoreKey([u8; KEY_LEN]);

impl StoreKey {
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CryptoError> {
        let arr: [u8; KEY_LEN] = bytes.try_into().map_err(|_| CryptoError::KeyLength)?;
        Ok(Self(arr))
    }
}

impl fmt::Debug for StoreKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StoreKey(..)")
    }
}

/// HKDF output length marker for 32-byte sub-keys.
struct Len32;

impl hkdf::KeyType for Len32 {
    fn len(&self) -> usize {
        32
    }
}

fn derive(key: &StoreKey, info: &[u8]) -> Result<[u8; 32], CryptoError> {
    let salt = hkdf::Salt::new(hkdf::HKDF_SHA256, b"daiban-store-v1");
    let prk = salt.extract(&key.0);
    let info = [info];
    let okm = prk
        .expand(&info, Len32)
        .map_err(|_| CryptoError::KeyLength)?;
    let mut out = [0u8; 32];
    okm.fill(&mut out).map_err(|_| CryptoError::KeyLength)?;
    Ok(out)
}

/// Seals and opens values, and makes lookup hashes. With `Sealer::plain()` nothing is
/// sealed: only for tests that show the protection can fail, and for debugging.
pub struct Sealer {
    inner: Option<Keys>,
}

struct Keys {
    aead: LessSafeKey,
    mac: hmac::Key,
    rng: SystemRandom,
}

impl Sealer {
    pub fn new(key: &StoreKey) -> Result<Self, CryptoError> {
        let aead_key = derive(key, b"seal")?;
        let mac_key = derive(key, b"lookup")?;
        let unbound =
            UnboundKey::new(&CHACHA20_POLY1305, &aead_key).map_err(|_| CryptoError::KeyLength)?;
        Ok(Self {
            inner: Some(Keys {
                aead: LessSafeKey::new(unbound),
                mac: hmac::Key::new(hmac::HMAC_SHA256, &mac_key),
                rng: SystemRandom::new(),
            }),
        })
    }

    /// No protection at all (plaintext store).
    pub fn plain() -> Self {
        Self { inner: None }
    }

    pub fn is_plain(&self) -> bool {
        self.inner.is_none()
    }

    /// Seal `data`, bound to `context` (e.g. the column and ticket number): nonce ‖ ciphertext ‖ tag.
    pub fn seal(&self, context: &[u8], data: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let Some(k) = &self.inner else {
            return Ok(data.to_vec());
        };
        let mut nonce = [0u8; NONCE_LEN];
        k.rng.fill(&mut nonce).map_err(|_| CryptoError::Random)?;
        let mut out = Vec::with_capacity(NONCE_LEN + data.len() + CHACHA20_POLY1305.tag_len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(data);
        let (_, body) = out.split_at_mut(NONCE_LEN);
        let tag = k
            .aead
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(context),
                body,
            )
            .map_err(|_| CryptoError::Random)?;
        out.extend_from_slice(tag.as_ref());
        Ok(out)
    }

    /// Open what `seal` made with the same `context`.
    pub fn open(&self, context: &[u8], sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let Some(k) = &self.inner else {
            return Ok(sealed.to_vec());
        };
        if sealed.len() < NONCE_LEN + CHACHA20_POLY1305.tag_len() {
            return Err(CryptoError::Open);
        }
        let (nonce, body) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| CryptoError::Open)?;
        let mut buf = body.to_vec();
        let plain = k
            .aead
            .open_in_place(nonce, Aad::from(context), &mut buf)
            .map_err(|_| CryptoError::Open)?;
        Ok(plain.to_vec())
    }

    /// A keyed hash for exact lookups; `domain` separates kinds (ID number, phone, name).
    /// Plain stores keep the value itself, which is what makes them searchable on disk.
    pub fn lookup(&self, domain: &str, value: &str) -> Vec<u8> {
        match &self.inner {
            Some(k) => {
                let mut ctx = hmac::Context::with_key(&k.mac);
                ctx.update(domain.as_bytes());
                ctx.update(&[0]);
                ctx.update(value.as_bytes());
                ctx.sign()
                    .as_ref()
                    .get(..LOOKUP_LEN)
                    .unwrap_or_default()
                    .to_vec()
            }
            None => value.as_bytes().to_vec(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: u8) -> StoreKey {
        StoreKey::from_bytes(&[b; KEY_LEN]).unwrap()
    }

    #[test]
    fn seal_open_round_trip_and_context_binding() {
        let s = Sealer::new(&key(7)).unwrap();
        let sealed = s
            .seal(b"doc:1", "张三 431023199001011234".as_bytes())
            .unwrap();
        assert!(!sealed.windows(6).any(|w| w == "张三".as_bytes()));
        assert_eq!(
            s.open(b"doc:1", &sealed).unwrap(),
            "张三 431023199001011234".as_bytes()
        );
        assert_eq!(s.open(b"doc:2", &sealed), Err(CryptoError::Open));
        let other = Sealer::new(&key(8)).unwrap();
        assert_eq!(other.open(b"doc:1", &sealed), Err(CryptoError::Open));
        assert_eq!(s.open(b"doc:1", &sealed[..10]), Err(CryptoError::Open));
    }

    #[test]
    fn lookups_are_keyed_and_stable() {
        let a = Sealer::new(&key(1)).unwrap();
        let b = Sealer::new(&key(2)).unwrap();
        assert_eq!(a.lookup("id", "x"), a.lookup("id", "x"));
        assert_ne!(a.lookup("id", "x"), b.lookup("id", "x"));
        assert_ne!(a.lookup("id", "x"), a.lookup("phone", "x"));
        assert_eq!(Sealer::plain().lookup("id", "x"), b"x".to_vec());
    }

    #[test]
    fn key_length_is_checked() {
        assert!(StoreKey::from_bytes(&[0; 31]).is_err());
        assert!(StoreKey::from_bytes(&[0; 33]).is_err());
    }
}
