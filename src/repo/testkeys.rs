//! Test-only OpenPGP helpers: throwaway Ed25519 keys generated at test time
//! and cleartext-signed Release texts, so that no real archive file or
//! private key is committed. Not compiled outside `cargo test`.

use std::sync::OnceLock;

use pgp::composed::{
    ArmorOptions, CleartextSignedMessage, KeyType, SecretKeyParamsBuilder, SignedPublicKey,
    SignedSecretKey, SubkeyParamsBuilder,
};
use pgp::packet::{SignatureConfig, SignatureType, Subpacket, SubpacketData};
use pgp::types::{KeyDetails, Password, SigningKey, Timestamp};

use super::keyring::Keyring;

/// A generated key pair with one signing subkey (like Debian's automatic
/// archive keys, whose RSA subkeys sign).
pub struct TestKey {
    pub secret: SignedSecretKey,
    pub public: SignedPublicKey,
}

impl TestKey {
    pub fn keyring(&self) -> Keyring {
        Keyring::from_keys(vec![self.public.clone()])
    }
    pub fn fingerprint(&self) -> String {
        format!("{:X}", self.public.fingerprint())
    }
    pub fn primary(&self) -> &dyn SigningKey {
        &self.secret.primary_key
    }
    pub fn subkey(&self) -> &dyn SigningKey {
        &self.secret.secret_subkeys[0].key
    }
}

fn generate(uid: &str) -> TestKey {
    let mut sub = SubkeyParamsBuilder::default();
    sub.key_type(KeyType::Ed25519Legacy).can_sign(true);
    let mut params = SecretKeyParamsBuilder::default();
    params
        .key_type(KeyType::Ed25519Legacy)
        .can_certify(true)
        .can_sign(true)
        .primary_user_id(uid.into())
        .subkeys(vec![sub.build().unwrap()]);
    let secret = params
        .build()
        .unwrap()
        .generate(rand::thread_rng())
        .unwrap();
    let public = SignedPublicKey::from(secret.clone());
    TestKey { secret, public }
}

/// The "archive" key that test keyrings trust (generated once per run).
pub fn trusted() -> &'static TestKey {
    static K: OnceLock<TestKey> = OnceLock::new();
    K.get_or_init(|| generate("Test Archive <archive@example.invalid>"))
}

/// A key that no test keyring trusts.
pub fn stranger() -> &'static TestKey {
    static K: OnceLock<TestKey> = OnceLock::new();
    K.get_or_init(|| generate("Stranger <stranger@example.invalid>"))
}

/// `text` cleartext-signed by each of `signers`, armored.
pub fn clearsign(text: &str, signers: &[&dyn SigningKey]) -> String {
    let msg = CleartextSignedMessage::new_many(text, |t| {
        signers
            .iter()
            .map(|k| {
                let k = Box::new(*k);
                let mut config =
                    SignatureConfig::from_key(rand::thread_rng(), &k, SignatureType::Text)?;
                config.hashed_subpackets = vec![
                    Subpacket::regular(SubpacketData::SignatureCreationTime(Timestamp::now()))?,
                    Subpacket::regular(SubpacketData::IssuerFingerprint(k.fingerprint()))?,
                ];
                config.unhashed_subpackets = vec![Subpacket::regular(SubpacketData::IssuerKeyId(
                    k.legacy_key_id(),
                ))?];
                config.sign(&k, &Password::empty(), t.as_bytes())
            })
            .collect()
    })
    .unwrap();
    msg.to_armored_string(ArmorOptions::default()).unwrap()
}
