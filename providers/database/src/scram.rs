//! SCRAM-SHA-256 (RFC 5802, RFC 7677) run by hand over `saslStart` / `saslContinue`, for servers
//! the official driver cannot authenticate to.
//!
//! The `mongodb` crate (3.9) asks the server to skip SCRAM's final empty round
//! (`skipEmptyExchange: true`) and fails with "expected SCRAM authentication to have completed"
//! when the server answers the client's final message with `done: false`, as FerretDB 1.24 does:
//! it ignores that option (MongoDB honours it since 4.4; pymongo and the Go driver send the empty
//! round when needed, SERVER-44857). [`crate::mongo`] then falls back to a client without driver
//! authentication, limited to one connection, which this module authenticates: the same
//! conversation plus the empty round. The password is never logged; the proofs are computed here
//! and only the proof and nonces travel.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use mongodb::bson::{doc, spec::BinarySubtype, Binary, Bson, Document};
use orkestra_provider::ProviderError;
use sha2::{Digest, Sha256};

use crate::password::hmac_sha256;

/// `n=` escaping of a user name (RFC 5802: `=` as `=3D`, `,` as `=2C`).
fn escape(user: &str) -> String {
    user.replace('=', "=3D").replace(',', "=2C")
}

/// PBKDF2-HMAC-SHA-256 with one block of output (32 bytes: SCRAM's SaltedPassword).
pub fn pbkdf2(password: &[u8], salt: &[u8], iterations: u32) -> [u8; 32] {
    let mut block = salt.to_vec();
    block.extend_from_slice(&1u32.to_be_bytes());
    let mut u = hmac_sha256(password, &block);
    let mut out = u;
    for _ in 1..iterations {
        u = hmac_sha256(password, &u);
        for (o, b) in out.iter_mut().zip(u.iter()) {
            *o ^= b;
        }
    }
    out
}

fn attribute(message: &str, key: char) -> Option<&str> {
    message
        .split(',')
        .find_map(|part| part.strip_prefix(key).and_then(|p| p.strip_prefix('=')))
}

fn payload(d: &Document) -> Result<String, ProviderError> {
    match d.get("payload") {
        Some(Bson::Binary(b)) => {
            String::from_utf8(b.bytes.clone()).map_err(|_| bad("payload is not UTF-8"))
        }
        _ => Err(bad("no payload in the server's answer")),
    }
}

fn bad(why: &str) -> ProviderError {
    ProviderError::api(
        "saslContinue",
        Some("AuthenticationFailed".into()),
        why.to_string(),
        false,
    )
}

fn binary(s: &str) -> Bson {
    Bson::Binary(Binary {
        subtype: BinarySubtype::Generic,
        bytes: s.as_bytes().to_vec(),
    })
}

/// One SCRAM-SHA-256 conversation, driven by the caller (who sends each command on the one
/// connection being authenticated).
pub struct Conversation {
    user: String,
    password: Vec<u8>,
    nonce: String,
    auth_message: String,
    salted: [u8; 32],
}

impl Conversation {
    /// A conversation for `user` with a fresh nonce.
    pub fn new(user: &str, password: &[u8]) -> Result<Self, ProviderError> {
        let mut raw = [0u8; 24];
        getrandom::fill(&mut raw).map_err(|e| bad(&format!("no random source: {e}")))?;
        Ok(Self::with_nonce(user, password, &B64.encode(raw)))
    }

    /// A conversation with a given nonce (tests).
    pub fn with_nonce(user: &str, password: &[u8], nonce: &str) -> Self {
        Self {
            user: user.to_string(),
            password: password.to_vec(),
            nonce: nonce.to_string(),
            auth_message: String::new(),
            salted: [0; 32],
        }
    }

    fn client_first_bare(&self) -> String {
        format!("n={},r={}", escape(&self.user), self.nonce)
    }

    /// The `saslStart` command.
    pub fn start(&self) -> Document {
        doc! {
            "saslStart": 1,
            "mechanism": "SCRAM-SHA-256",
            "payload": binary(&format!("n,,{}", self.client_first_bare())),
            "autoAuthorize": 1,
            "options": {"skipEmptyExchange": true},
        }
    }

    /// The `saslContinue` carrying the client's proof, from the server's first answer.
    pub fn proof(&mut self, server_first_answer: &Document) -> Result<Document, ProviderError> {
        let server_first = payload(server_first_answer)?;
        let nonce = attribute(&server_first, 'r').ok_or_else(|| bad("no nonce"))?;
        if !nonce.starts_with(&self.nonce) {
            return Err(bad("the server's nonce does not extend ours"));
        }
        let salt = attribute(&server_first, 's')
            .and_then(|s| B64.decode(s).ok())
            .ok_or_else(|| bad("no salt"))?;
        let iterations: u32 = attribute(&server_first, 'i')
            .and_then(|i| i.parse().ok())
            .filter(|i| *i >= 4096)
            .ok_or_else(|| bad("no (or too low an) iteration count"))?;
        self.salted = pbkdf2(&self.password, &salt, iterations);
        let without_proof = format!("c=biws,r={nonce}");
        self.auth_message = format!(
            "{},{server_first},{without_proof}",
            self.client_first_bare()
        );
        let client_key = hmac_sha256(&self.salted, b"Client Key");
        let stored_key: [u8; 32] = Sha256::digest(client_key).into();
        let signature = hmac_sha256(&stored_key, self.auth_message.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(signature.iter())
            .map(|(a, b)| a ^ b)
            .collect();
        Ok(doc! {
            "saslContinue": 1,
            "conversationId": conversation_id(server_first_answer),
            "payload": binary(&format!("{without_proof},p={}", B64.encode(proof))),
        })
    }

    /// Check the server's signature; the empty round to send when it is not done yet.
    pub fn verify(
        &self,
        server_final_answer: &Document,
    ) -> Result<Option<Document>, ProviderError> {
        let server_final = payload(server_final_answer)?;
        if let Some(e) = attribute(&server_final, 'e') {
            return Err(bad(&format!("the server refused: {e}")));
        }
        let server_key = hmac_sha256(&self.salted, b"Server Key");
        let expected = B64.encode(hmac_sha256(&server_key, self.auth_message.as_bytes()));
        if attribute(&server_final, 'v') != Some(expected.as_str()) {
            return Err(bad("the server's signature does not match"));
        }
        if server_final_answer.get_bool("done").unwrap_or(false) {
            return Ok(None);
        }
        Ok(Some(doc! {
            "saslContinue": 1,
            "conversationId": conversation_id(server_final_answer),
            "payload": binary(""),
        }))
    }
}

fn conversation_id(d: &Document) -> Bson {
    d.get("conversationId").cloned().unwrap_or(Bson::Int32(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pbkdf2_matches_rfc_7914_vector() {
        // RFC 7914 section 11: PBKDF2-HMAC-SHA256, P="passwd", S="salt", c=1, first 32 bytes.
        let out = pbkdf2(b"passwd", b"salt", 1);
        let hex: String = out.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc"
        );
    }

    #[test]
    fn rfc_7677_conversation() {
        // RFC 7677 section 3: user "user", password "pencil".
        let mut c = Conversation::with_nonce("user", b"pencil", "rOprNGfwEbeRWgbNEkqO");
        let start = c.start();
        assert!(
            matches!(start.get("payload"), Some(Bson::Binary(b)) if b.bytes == b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO")
        );
        let first = doc! {"conversationId": 1, "done": false, "payload": binary(
        "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096")};
        let cont = c.proof(&first).unwrap();
        let p = payload(&cont).unwrap();
        assert_eq!(
            p,
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        let last = doc! {"conversationId": 1, "done": false,
        "payload": binary("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")};
        assert!(c.verify(&last).unwrap().is_some(), "an empty round follows");
        let wrong = doc! {"conversationId": 1, "done": true, "payload": binary("v=AAAA")};
        assert!(c.verify(&wrong).is_err());
        assert_eq!(escape("a=b,c"), "a=3Db=2Cc");
    }
}
