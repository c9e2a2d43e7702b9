//! Keys for the `kv` store, built from client-supplied parts (addresses, networks).
//!
//! Keys stay readable (they show up when debugging a store) and unambiguous: parts are
//! escaped, so `("a b", "c")` and `("a", "b c")` never meet. A key that would exceed the
//! host's limit is replaced by a 128-bit hash of itself, which is stable across builds
//! and machines (the store may be shared by several servers).

/// Longest readable key; longer ones are hashed. Well under the host's 512 bytes.
pub const MAX_READABLE: usize = 200;

/// Joins `parts` with spaces, escaping `\` and space inside a part.
pub fn make(parts: &[&str]) -> String {
    let mut key = String::with_capacity(parts.iter().map(|p| p.len() + 1).sum());
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            key.push(' ');
        }
        for c in part.chars() {
            match c {
                '\\' => key.push_str("\\\\"),
                ' ' => key.push_str("\\s"),
                c => key.push(c),
            }
        }
    }
    if key.len() <= MAX_READABLE {
        return key;
    }
    // Keep the first part (the record kind) readable.
    let kind: String = parts.first().map(|p| p.chars().take(16).collect()).unwrap_or_default();
    format!("{kind} #{:016x}{:016x}", fnv1a64(key.as_bytes(), FNV_OFFSET), fnv1a64(key.as_bytes(), FNV_OFFSET_2))
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
/// A second offset basis: two 64-bit FNV-1a hashes (128 bits) make accidental
/// collisions of long keys practically impossible without pulling in a hash crate. Not
/// cryptographic; nothing is gained by forcing a collision (a greylisting client can
/// simply retry).
const FNV_OFFSET_2: u64 = 0x6c62_272e_07bb_0142;

fn fnv1a64(bytes: &[u8], offset: u64) -> u64 {
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    bytes.iter().fold(offset, |hash, &b| (hash ^ u64::from(b)).wrapping_mul(PRIME))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readable_and_unambiguous() {
        assert_eq!(
            make(&["t", "192.0.2.0/24", "a@example.org", "b@example.com"]),
            "t 192.0.2.0/24 a@example.org b@example.com"
        );
        assert_ne!(make(&["t", "a b", "c"]), make(&["t", "a", "b c"]));
        assert_ne!(make(&["t", "a\\", "sb"]), make(&["t", "a", "\\sb"]));
        assert_eq!(make(&["t", "", "b"]), "t  b", "an empty part (the null sender) keeps its place");
    }

    #[test]
    fn long_keys_are_hashed_stably() {
        let long = "x".repeat(300);
        let key = make(&["t", "192.0.2.0/24", &long, "b@example.com"]);
        assert!(key.starts_with("t #") && key.len() == 3 + 32, "{key}");
        assert_eq!(key, make(&["t", "192.0.2.0/24", &long, "b@example.com"]));
        assert_ne!(key, make(&["t", "192.0.2.0/24", &long, "c@example.com"]));
        // FNV-1a test vector: the hash must never change between builds.
        assert_eq!(fnv1a64(b"a", FNV_OFFSET), 0xaf63_dc4c_8601_ec8c);
    }
}
