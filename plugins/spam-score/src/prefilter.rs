//! A literal prefilter for body rules: most text contains none of the words a rule looks
//! for, and proving that with memchr is several times cheaper than running the regex.
//!
//! Why here and not in `regex`: its literal optimisations pick a SIMD multi-literal
//! searcher (Teddy) that exists only for x86_64 and aarch64; on wasm32 a case-insensitive
//! alternation such as `(?i)\b(viagra|cialis)\b` gets no prefilter at all, and the lazy
//! DFA steps through every byte (about 4 ns a byte in a plugin, the largest single cost
//! of the example chain on 100 KB mail).
//!
//! Every match of a pattern starts with one of the prefix literals `regex-syntax`
//! extracts from it; this filter answers "no match possible" only when no such literal
//! (compared ignoring ASCII case, which only adds candidates) occurs in the text.
//! Otherwise the regex decides, over the whole text, as before.

use regex_syntax::hir::literal::{ExtractKind, Extractor};

/// Distinct first bytes searched for at most: two memchr3 passes.
const MAX_FIRST_BYTES: usize = 6;

#[derive(Clone, Debug)]
pub struct Prefilter {
    /// The literals, ASCII-lower-cased and deduplicated.
    literals: Vec<Vec<u8>>,
    /// The bytes a literal may start with (both ASCII cases), in groups of up to three.
    first_bytes: Vec<Vec<u8>>,
}

impl Prefilter {
    /// A prefilter for `pattern`, or None when it would not help (a match may start
    /// anywhere, or with too many different bytes).
    pub fn new(pattern: &str) -> Option<Prefilter> {
        let hir = regex_syntax::ParserBuilder::new().build().parse(pattern).ok()?;
        let mut extractor = Extractor::new();
        extractor.kind(ExtractKind::Prefix);
        let seq = extractor.extract(&hir);
        let mut literals: Vec<Vec<u8>> =
            seq.literals()?.iter().map(|lit| lit.as_bytes().to_ascii_lowercase()).collect();
        if literals.is_empty() || literals.iter().any(Vec::is_empty) {
            return None;
        }
        literals.sort();
        literals.dedup();
        let mut first: Vec<u8> = literals.iter().flat_map(|lit| [lit[0], lit[0].to_ascii_uppercase()]).collect();
        first.sort_unstable();
        first.dedup();
        if first.len() > MAX_FIRST_BYTES {
            return None;
        }
        Some(Prefilter { literals, first_bytes: first.chunks(3).map(<[u8]>::to_vec).collect() })
    }

    /// False only when no match of the pattern is possible in `text`.
    pub fn may_match(&self, text: &[u8]) -> bool {
        self.first_bytes.iter().any(|group| {
            let mut starts: Box<dyn Iterator<Item = usize>> = match group[..] {
                [a] => Box::new(memchr::memchr_iter(a, text)),
                [a, b] => Box::new(memchr::memchr2_iter(a, b, text)),
                [a, b, c, ..] => Box::new(memchr::memchr3_iter(a, b, c, text)),
                [] => Box::new(std::iter::empty()),
            };
            starts.any(|at| {
                let rest = &text[at..];
                self.literals.iter().any(|lit| rest.len() >= lit.len() && rest[..lit.len()].eq_ignore_ascii_case(lit))
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_out_text_without_the_words() {
        let p = Prefilter::new(r"(?i)(?-u:\b)(viagra|cialis|pharmacy)(?-u:\b)").unwrap();
        assert!(!p.may_match(b"Lunch on Friday? The cafe opens at noon."));
        assert!(!p.may_match(b""));
        assert!(p.may_match(b"cheap VIAGRA here"));
        assert!(p.may_match(b"online Pharmacy"));
        // A candidate, not a match: the regex decides (here, no word boundary).
        assert!(p.may_match(b"xcialisx"));
    }

    #[test]
    fn no_prefilter_where_a_match_may_start_anywhere() {
        assert!(Prefilter::new(r"\w+@example\.org").is_none());
        assert!(Prefilter::new(r".*money").is_none());
        assert!(Prefilter::new(r"(?i)a|b|c|d").is_none(), "eight first bytes");
        assert!(Prefilter::new(r"x?").is_none(), "matches the empty string");
        assert!(Prefilter::new(r"(unclosed").is_none());
    }

    #[test]
    fn agrees_with_the_regex() {
        let patterns = [r"(?i)\b(you (have )?won|winner|lottery)\b", r"(?i)wire transfer", r"caf\u{e9}", r"(?i)straße"];
        let texts =
            ["You have WON!", "the lottery", "a WIRE TRANSFER", "café", "STRASSE", "strasse", "Straße", "nothing"];
        for pattern in patterns {
            let regex = regex::Regex::new(pattern).unwrap();
            let Some(p) = Prefilter::new(pattern) else { continue };
            for text in texts {
                if regex.is_match(text) {
                    assert!(p.may_match(text.as_bytes()), "{pattern} matches {text:?}");
                }
            }
        }
    }
}
