//! Task identity: the hash that makes a repeated request recognisable.
//!
//! `identity_hash = hex(SHA-256(named_task_uuid || "\n" || part))`, where `part` is
//! - `key:<idempotency_key>` when the request carries an idempotency key;
//! - `context:<canonical JSON of the context>` for the `strict` strategy (object keys
//!   sorted recursively, arrays in order, no whitespace);
//! - `unique:<fresh UUIDv7>` for `always_unique`.
//!
//! SHA-256 is stable across releases and languages, unlike Rust's `DefaultHasher`.

use serde_json::Value;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::template::IdentityStrategy;

/// Why no identity could be computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// `caller_provided` templates need an `idempotency_key`.
    #[error(
        "template uses identity_strategy 'caller_provided', so the request must include an idempotency_key"
    )]
    MissingIdempotencyKey,
}

/// Computes the identity hash of a task request.
pub fn identity_hash(
    named_task_uuid: Uuid,
    strategy: IdentityStrategy,
    context: &Value,
    idempotency_key: Option<&str>,
) -> Result<String, Error> {
    let part = match (idempotency_key, strategy) {
        (Some(key), _) => format!("key:{key}"),
        (None, IdentityStrategy::Strict) => format!("context:{}", canonical_json(context)),
        (None, IdentityStrategy::AlwaysUnique) => format!("unique:{}", Uuid::now_v7()),
        (None, IdentityStrategy::CallerProvided) => return Err(Error::MissingIdempotencyKey),
    };
    let mut hasher = Sha256::new();
    hasher.update(named_task_uuid.as_bytes());
    hasher.update(b"\n");
    hasher.update(part.as_bytes());
    Ok(hex(&hasher.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 15) as usize] as char);
    }
    out
}

/// JSON with object keys sorted recursively and no insignificant whitespace.
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write_canonical(&map[key], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn key_order_does_not_matter_but_values_do() {
        let nt = Uuid::nil();
        let a: Value = serde_json::from_str(r#"{"b":1,"a":{"y":[1,2],"x":null}}"#).unwrap();
        let b: Value = serde_json::from_str(r#"{"a":{"x":null,"y":[1,2]},"b":1}"#).unwrap();
        let h = |v: &Value| identity_hash(nt, IdentityStrategy::Strict, v, None).unwrap();
        assert_eq!(h(&a), h(&b));
        assert_ne!(h(&a), h(&json!({"b": 2, "a": {"x": null, "y": [1, 2]}})));
        assert_ne!(h(&a), h(&json!({"b": 1, "a": {"x": null, "y": [2, 1]}})));
        assert_eq!(h(&a).len(), 64);
    }

    #[test]
    fn stable_value() {
        // Pinned: changing the hash would break deduplication across an upgrade.
        let h = identity_hash(
            Uuid::nil(),
            IdentityStrategy::Strict,
            &json!({"n": 1}),
            None,
        )
        .unwrap();
        assert_eq!(
            h,
            identity_hash(
                Uuid::nil(),
                IdentityStrategy::Strict,
                &json!({"n": 1}),
                None
            )
            .unwrap()
        );
        let mut hasher = Sha256::new();
        hasher.update([0u8; 16]);
        hasher.update(b"\ncontext:{\"n\":1}");
        assert_eq!(h, hex(&hasher.finalize()));
    }

    #[test]
    fn strategies() {
        let nt = Uuid::now_v7();
        let ctx = json!({});
        let u1 = identity_hash(nt, IdentityStrategy::AlwaysUnique, &ctx, None).unwrap();
        let u2 = identity_hash(nt, IdentityStrategy::AlwaysUnique, &ctx, None).unwrap();
        assert_ne!(u1, u2);
        assert_eq!(
            identity_hash(nt, IdentityStrategy::CallerProvided, &ctx, None),
            Err(Error::MissingIdempotencyKey)
        );
        let k1 = identity_hash(nt, IdentityStrategy::AlwaysUnique, &ctx, Some("k")).unwrap();
        let k2 = identity_hash(nt, IdentityStrategy::Strict, &json!({"x": 1}), Some("k")).unwrap();
        assert_eq!(k1, k2);
    }
}
