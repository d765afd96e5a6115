//! Wildcard matching for actions, ARNs and `StringLike`: `*` is any run of
//! characters (also none), `?` exactly one character.
//!
//! The matcher is the iterative two-pointer one: on a mismatch it returns to
//! the last `*` and lets it take one more character. Time is O(pattern ×
//! text) at worst and never exponential, whatever the `*a*a*a…` pattern.

/// One element of a compiled pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tok {
    /// A character matched literally (also a `*` or `?` written `${*}`, `${?}`).
    Char(char),
    /// `*`
    Star,
    /// `?`
    One,
}

/// A compiled pattern, with fast paths for the shapes policies mostly use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Glob {
    /// `*` alone.
    Any,
    /// No wildcard at all.
    Exact(Box<str>),
    /// Literal text followed by one `*`.
    Prefix(Box<str>),
    /// Anything else.
    General(Box<[Tok]>),
}

impl Glob {
    pub(crate) fn compile(toks: &[Tok]) -> Glob {
        let literal = |toks: &[Tok]| -> Option<String> {
            toks.iter().map(|t| if let Tok::Char(c) = t { Some(*c) } else { None }).collect()
        };
        match toks {
            [Tok::Star] => Glob::Any,
            [head @ .., Tok::Star] if literal(head).is_some() => {
                Glob::Prefix(literal(head).unwrap_or_default().into_boxed_str())
            }
            _ => match literal(toks) {
                Some(text) => Glob::Exact(text.into_boxed_str()),
                None => Glob::General(toks.into()),
            },
        }
    }

    /// Pattern text where `*` and `?` are wildcards and nothing is escaped.
    pub(crate) fn from_pattern(pattern: &str) -> Glob {
        Glob::compile(&tokens(pattern))
    }

    /// Whether `text` matches; `fold` compares ASCII letters case-insensitively.
    #[inline]
    pub(crate) fn matches(&self, text: &str, fold: bool) -> bool {
        match self {
            Glob::Any => true,
            Glob::Exact(lit) => {
                if fold {
                    lit.eq_ignore_ascii_case(text)
                } else {
                    bytes_eq(lit.as_bytes(), text.as_bytes())
                }
            }
            Glob::Prefix(lit) => {
                text.len() >= lit.len()
                    && text.is_char_boundary(lit.len())
                    && if fold {
                        lit.eq_ignore_ascii_case(&text[..lit.len()])
                    } else {
                        bytes_eq(lit.as_bytes(), &text.as_bytes()[..lit.len()])
                    }
            }
            Glob::General(toks) => matches(toks, text, fold),
        }
    }
}

/// Byte equality written out: the strings compared here are a few bytes
/// long, where a call into libc's `bcmp` costs more than the comparison.
#[inline]
pub(crate) fn bytes_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut left = a.chunks_exact(8);
    let mut right = b.chunks_exact(8);
    for (x, y) in (&mut left).zip(&mut right) {
        if u64::from_ne_bytes(x.try_into().unwrap_or_default()) != u64::from_ne_bytes(y.try_into().unwrap_or_default())
        {
            return false;
        }
    }
    left.remainder().iter().zip(right.remainder()).all(|(x, y)| x == y)
}

/// Splits pattern text into tokens: `*` and `?` are wildcards.
pub(crate) fn tokens(pattern: &str) -> Vec<Tok> {
    pattern
        .chars()
        .map(|c| match c {
            '*' => Tok::Star,
            '?' => Tok::One,
            c => Tok::Char(c),
        })
        .collect()
}

/// The two-pointer matcher over characters of `text`.
pub(crate) fn matches(pattern: &[Tok], text: &str, fold: bool) -> bool {
    let eq = |a: char, b: char| if fold { a.eq_ignore_ascii_case(&b) } else { a == b };
    let (mut p, mut t) = (0usize, 0usize);
    // The last `*` seen and the text position it currently stops at.
    let mut backtrack: Option<(usize, usize)> = None;
    while let Some(c) = text[t..].chars().next() {
        match pattern.get(p) {
            Some(Tok::Star) => {
                backtrack = Some((p, t));
                p += 1;
                continue;
            }
            Some(Tok::One) => {
                p += 1;
                t += c.len_utf8();
                continue;
            }
            Some(Tok::Char(pc)) if eq(*pc, c) => {
                p += 1;
                t += c.len_utf8();
                continue;
            }
            _ => {}
        }
        match backtrack {
            Some((star, from)) => {
                // The star takes one more character; retry just after it.
                let taken = text[from..].chars().next().map_or(0, char::len_utf8);
                backtrack = Some((star, from + taken));
                p = star + 1;
                t = from + taken;
            }
            None => return false,
        }
    }
    pattern[p..].iter().all(|tok| *tok == Tok::Star)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// The obvious recursive matcher: exponential, fine on short strings.
    fn reference(p: &[char], t: &[char]) -> bool {
        match p.split_first() {
            None => t.is_empty(),
            Some(('*', rest)) => (0..=t.len()).any(|i| reference(rest, &t[i..])),
            Some(('?', rest)) => !t.is_empty() && reference(rest, &t[1..]),
            Some((c, rest)) => t.first() == Some(c) && reference(rest, &t[1..]),
        }
    }

    #[test]
    fn shapes() {
        assert_eq!(Glob::from_pattern("*"), Glob::Any);
        assert_eq!(Glob::from_pattern("abc"), Glob::Exact("abc".into()));
        assert_eq!(Glob::from_pattern("ab*"), Glob::Prefix("ab".into()));
        assert!(matches!(Glob::from_pattern("a*b"), Glob::General(_)));
        assert!(Glob::from_pattern("Get*").matches("getobject", true));
        assert!(!Glob::from_pattern("Get*").matches("getobject", false));
        assert!(Glob::from_pattern("a?c").matches("aéc", false));
        assert!(!Glob::from_pattern("éa*").matches("é", false));
        assert!(!Glob::from_pattern("ab*").matches("é", false));
    }

    #[test]
    fn no_blow_up() {
        let pattern = "*a".repeat(200) + "b";
        let text = "a".repeat(5000);
        let started = std::time::Instant::now();
        assert!(!Glob::from_pattern(&pattern).matches(&text, false));
        assert!(started.elapsed().as_secs() < 5);
    }

    proptest! {
        #[test]
        fn agrees_with_reference(pattern in "[ab*?é]{0,8}", text in "[abé]{0,10}") {
            let p: Vec<char> = pattern.chars().collect();
            let t: Vec<char> = text.chars().collect();
            prop_assert_eq!(Glob::from_pattern(&pattern).matches(&text, false), reference(&p, &t));
            prop_assert_eq!(matches(&tokens(&pattern), &text, false), reference(&p, &t));
        }
    }
}
