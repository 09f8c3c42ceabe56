//! A syncing peer's signing identity: an Ed25519 key pair (ring) made on the device, whose
//! public half the server learns at enrollment. Every sync request is signed with it, so a
//! server knows which enrolled tablet (or township server) sent it; see docs/SYNC.md
//! "Enrollment and signatures".

use ring::rand::SystemRandom;
use ring::signature::{Ed25519KeyPair, KeyPair, UnparsedPublicKey, ED25519};

use super::CryptoError;

/// Bytes of a signature.
pub const SIGNATURE_LEN: usize = 64;
/// Bytes of a public key.
pub const PUBLIC_KEY_LEN: usize = 32;
/// Signed ahead of every sync message, so a signature made for anything else never passes
/// as one (and one for a future protocol version never passes as this one's).
const SYNC_CONTEXT: &[u8] = b"daiban sync request v4\0";

/// A device's or server's signing key.
pub struct SigningKey(Ed25519KeyPair);

impl SigningKey {
    /// A new key, as PKCS#8 bytes to keep (sealed on a tablet).
    pub fn generate() -> Result<Vec<u8>, CryptoError> {
        Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
            .map(|doc| doc.as_ref().to_vec())
            .map_err(|_| CryptoError::Random)
    }

    /// The key kept as PKCS#8.
    pub fn from_pkcs8(pkcs8: &[u8]) -> Result<Self, CryptoError> {
        Ed25519KeyPair::from_pkcs8(pkcs8)
            .map(SigningKey)
            .map_err(|_| CryptoError::Open)
    }

    /// The public key in hex, as the directory lists it.
    pub fn public_hex(&self) -> String {
        hex::encode(self.0.public_key().as_ref())
    }

    /// Sign a sync message.
    pub fn sign_sync(&self, message: &[u8]) -> [u8; SIGNATURE_LEN] {
        let mut out = [0u8; SIGNATURE_LEN];
        out.copy_from_slice(self.0.sign(&in_context(message)).as_ref());
        out
    }
}

/// Whether `signature` is `public_hex`'s signature of the sync message `message`. A key that
/// is not 32 bytes of hex never verifies.
pub fn verify_sync(public_hex: &str, message: &[u8], signature: &[u8]) -> bool {
    let Some(key) = hex::decode(public_hex)
        .ok()
        .filter(|k| k.len() == PUBLIC_KEY_LEN)
    else {
        return false;
    };
    UnparsedPublicKey::new(&ED25519, key)
        .verify(&in_context(message), signature)
        .is_ok()
}

/// What is signed: the sync context, then the message.
fn in_context(message: &[u8]) -> Vec<u8> {
    [SYNC_CONTEXT, message].concat()
}

/// Whether a text is a public key as the directory lists it.
pub fn is_public_key(text: &str) -> bool {
    hex::decode(text).is_ok_and(|k| k.len() == PUBLIC_KEY_LEN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_verifies_only_for_its_key_and_message() {
        let key = SigningKey::from_pkcs8(&SigningKey::generate().unwrap()).unwrap();
        let other = SigningKey::from_pkcs8(&SigningKey::generate().unwrap()).unwrap();
        let sig = key.sign_sync(b"request");
        assert!(verify_sync(&key.public_hex(), b"request", &sig));
        assert!(!verify_sync(&key.public_hex(), b"requesT", &sig));
        assert!(!verify_sync(&other.public_hex(), b"request", &sig));
        assert!(!verify_sync("zz", b"request", &sig));
        assert!(!verify_sync(&key.public_hex(), b"request", &sig[..63]));
        assert!(is_public_key(&key.public_hex()));
        assert!(!is_public_key("abcd"));
    }
}
