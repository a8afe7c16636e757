//! Projection SQL names its tables `{t}_...`; `{t}` becomes the version's table prefix
//! (`<name>_v<version>`), so one text serves every version of a projection.

/// Substitutes `prefix` for `{t}` in `sql`.
///
/// # Panics
/// If `prefix` is not a plain SQL identifier (`[a-z0-9_]`, not starting with a digit): it is
/// spliced into the statements, so it must come from code, never from input.
pub fn render(sql: &str, prefix: &str) -> String {
    let plain = !prefix.is_empty()
        && !prefix.starts_with(|c: char| c.is_ascii_digit())
        && prefix
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    assert!(
        plain,
        "table prefix {prefix:?} is not a plain SQL identifier"
    );
    sql.replace("{t}", prefix)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prefix_replaces_every_placeholder() {
        assert_eq!(
            render("SELECT * FROM {t}_a JOIN {t}_b", "wallets_v2"),
            "SELECT * FROM wallets_v2_a JOIN wallets_v2_b"
        );
    }

    #[test]
    #[should_panic(expected = "not a plain SQL identifier")]
    fn a_prefix_that_is_not_an_identifier_is_refused() {
        render("{t}", "x; DROP TABLE y");
    }
}
