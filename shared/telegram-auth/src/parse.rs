//! Strict query-string parsing of initData, with duplicate-key rejection.
//!
//! The same parse result feeds both signature verification and field
//! extraction, so what is verified is exactly what is used. Rules:
//! pairs are separated by `&` (empty segments are skipped, as browsers do);
//! every pair must contain `=`; `+` decodes to a space and `%XX` to a byte;
//! the decoded text must be UTF-8; keys must be 1..=64 characters of
//! `[A-Za-z0-9_]`; raw `;` and ASCII control characters are refused; and a
//! key may occur only once (parsers that keep the first vs. the last of a
//! repeated key are a classic forgery vector).

use crate::AuthError;

/// Upper bound on the raw initData length. Real initData is a few hundred
/// bytes to a few KiB; this bounds the work done on hostile input.
pub(crate) const MAX_INIT_DATA_LEN: usize = 16 * 1024;
const MAX_KEY_LEN: usize = 64;

/// Decoded initData fields, sorted by key, keys unique.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Fields {
    pairs: Vec<(String, String)>,
}

impl Fields {
    /// The decoded value of `key`, if present.
    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .binary_search_by(|(k, _)| k.as_str().cmp(key))
            .ok()
            .map(|i| self.pairs[i].1.as_str())
    }

    /// `key=value` lines of all fields except `excluded`, sorted by key and
    /// joined with `\n`, per Telegram's data-check-string definition.
    pub(crate) fn data_check_string(&self, excluded: &[&str]) -> String {
        let mut out = String::new();
        for (k, v) in self
            .pairs
            .iter()
            .filter(|(k, _)| !excluded.contains(&k.as_str()))
        {
            if !out.is_empty() {
                out.push('\n');
            }
            out.push_str(k);
            out.push('=');
            out.push_str(v);
        }
        out
    }
}

fn malformed(reason: &'static str) -> AuthError {
    AuthError::MalformedInitData { reason }
}

/// Parses raw initData (the part after `tma `) into sorted, unique fields.
pub(crate) fn parse_query(input: &str) -> Result<Fields, AuthError> {
    if input.len() > MAX_INIT_DATA_LEN {
        return Err(malformed("longer than 16 KiB"));
    }
    if input.bytes().any(|b| b == b';' || b.is_ascii_control()) {
        return Err(malformed("contains `;` or a control character"));
    }
    let mut pairs = Vec::new();
    for segment in input.split('&').filter(|s| !s.is_empty()) {
        let (raw_key, raw_value) = segment
            .split_once('=')
            .ok_or_else(|| malformed("a pair has no `=`"))?;
        let key = percent_decode(raw_key)?;
        if key.is_empty()
            || key.len() > MAX_KEY_LEN
            || !key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            return Err(malformed(
                "a key is empty, too long or not made of [A-Za-z0-9_]",
            ));
        }
        pairs.push((key, percent_decode(raw_value)?));
    }
    pairs.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    if let Some(w) = pairs.windows(2).find(|w| w[0].0 == w[1].0) {
        return Err(AuthError::DuplicateKey {
            key: w[0].0.clone(),
        });
    }
    Ok(Fields { pairs })
}

/// `application/x-www-form-urlencoded` decoding that rejects bad escapes and
/// non-UTF-8 results instead of silently replacing them.
fn percent_decode(s: &str) -> Result<String, AuthError> {
    let bytes = s.as_bytes();
    if !bytes.iter().any(|&b| b == b'%' || b == b'+') {
        return Ok(s.to_owned());
    }
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' => {
                let hi = bytes.get(i + 1).and_then(|&b| hex_value(b));
                let lo = bytes.get(i + 2).and_then(|&b| hex_value(b));
                match (hi, lo) {
                    (Some(hi), Some(lo)) => out.push(hi << 4 | lo),
                    _ => return Err(malformed("invalid percent-encoding")),
                }
                i += 3;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| malformed("percent-decoded text is not UTF-8"))
}

fn hex_value(b: u8) -> Option<u8> {
    char::from(b)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

#[cfg(test)]
mod tests {
    use super::{Fields, MAX_INIT_DATA_LEN, parse_query};
    use crate::AuthError;

    fn parse(s: &str) -> Result<Fields, AuthError> {
        parse_query(s)
    }

    #[test]
    fn decodes_and_sorts() {
        let f = parse("b=x%20y+z&a=%7B%22k%22%3A1%7D&c=%D0%9F%D1%80%D0%B8").unwrap();
        assert_eq!(f.get("a"), Some("{\"k\":1}"));
        assert_eq!(f.get("b"), Some("x y z"));
        assert_eq!(f.get("c"), Some("При"));
        assert_eq!(f.get("d"), None);
        assert_eq!(f.data_check_string(&[]), "a={\"k\":1}\nb=x y z\nc=При");
        assert_eq!(f.data_check_string(&["b"]), "a={\"k\":1}\nc=При");
    }

    #[test]
    fn empty_values_and_segments_are_kept_and_skipped() {
        let f = parse("&a=&&b=1&").unwrap();
        assert_eq!(f.get("a"), Some(""));
        assert_eq!(f.data_check_string(&[]), "a=\nb=1");
        assert_eq!(parse("").unwrap().data_check_string(&[]), "");
    }

    #[test]
    fn rejects_duplicate_keys_anywhere() {
        for s in [
            "hash=00&a=1&hash=11",
            "user=1&a=2&user=1",
            "a=1&b=2&a=1",
            // Duplicates are detected on decoded keys.
            "user=1&us%65r=2",
        ] {
            let err = parse(s).unwrap_err();
            assert_eq!(err.code(), "duplicate_key", "{s}");
        }
        assert_eq!(
            parse("x=1&x=2").unwrap_err(),
            AuthError::DuplicateKey { key: "x".into() }
        );
    }

    #[test]
    fn rejects_malformed_input() {
        let long = "a=".to_owned() + &"x".repeat(MAX_INIT_DATA_LEN);
        for s in [
            "here comes something wrong;",
            "a=1;b=2",
            "novalue",
            "=1",
            "a%3D=1",
            "a b=1",
            "a=%",
            "a=%4",
            "a=%zz",
            "a=%FF",
            "a=1\nb=2",
            long.as_str(),
        ] {
            let err = parse(s).unwrap_err();
            assert_eq!(err.code(), "malformed_init_data", "{s:?}");
        }
    }
}
