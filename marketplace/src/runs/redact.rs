//! Removing an install's secret configuration values from what a run recorded, before it is
//! stored: log lines, error messages, captured payloads and outputs.

use std::borrow::Cow;

use memchr::memmem::Finder;

/// What a secret is replaced with.
pub const REDACTED: &str = "[redacted]";

/// The secrets of one install, ready to search for.
#[derive(Debug)]
pub(crate) struct Redactor<'a> {
    finders: Vec<Finder<'a>>,
}

impl<'a> Redactor<'a> {
    /// A redactor for `secrets` (empty ones are ignored).
    pub(crate) fn new(secrets: &'a [String]) -> Self {
        Redactor {
            finders: secrets
                .iter()
                .filter(|secret| !secret.is_empty())
                .map(|secret| Finder::new(secret.as_bytes()))
                .collect(),
        }
    }

    /// `bytes` with every secret replaced by [`REDACTED`].
    pub(crate) fn bytes(&self, bytes: &[u8]) -> Vec<u8> {
        let mut out = bytes.to_vec();
        for finder in &self.finders {
            if finder.find(&out).is_none() {
                continue;
            }
            let needle = finder.needle().len();
            let mut replaced = Vec::with_capacity(out.len());
            let mut from = 0;
            for at in finder.find_iter(&out) {
                // Matches do not overlap once one is replaced.
                if at < from {
                    continue;
                }
                replaced.extend_from_slice(&out[from..at]);
                replaced.extend_from_slice(REDACTED.as_bytes());
                from = at + needle;
            }
            replaced.extend_from_slice(&out[from..]);
            out = replaced;
        }
        out
    }

    /// `text` with every secret replaced by [`REDACTED`]: itself, without a copy, when it
    /// holds none.
    pub(crate) fn owned(&self, text: String) -> String {
        match self.cow(&text) {
            Cow::Borrowed(_) => text,
            Cow::Owned(redacted) => redacted,
        }
    }

    /// `text` with every secret replaced by [`REDACTED`]: borrowed, without a copy, when it
    /// holds none.
    pub(crate) fn cow<'t>(&self, text: &'t str) -> Cow<'t, str> {
        if self
            .finders
            .iter()
            .all(|finder| finder.find(text.as_bytes()).is_none())
        {
            return Cow::Borrowed(text);
        }
        Cow::Owned(self.text(text))
    }

    /// `text` with every secret replaced by [`REDACTED`].
    pub(crate) fn text(&self, text: &str) -> String {
        if self.finders.is_empty() {
            return text.to_owned();
        }
        // Secrets are whole strings, so replacing one in UTF-8 text leaves valid UTF-8.
        String::from_utf8(self.bytes(text.as_bytes()))
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_occurrence_of_every_secret_goes() {
        let secrets = vec![
            "hunter2".to_string(),
            String::new(),
            "https://hooks/T0k".to_string(),
        ];
        let redactor = Redactor::new(&secrets);
        assert_eq!(
            redactor.text("posting to https://hooks/T0k with hunter2hunter2 ok"),
            "posting to [redacted] with [redacted][redacted] ok"
        );
        assert_eq!(redactor.bytes(b"\xffhunter2\xfe"), b"\xff[redacted]\xfe");
        assert_eq!(redactor.text("nothing secret"), "nothing secret");
        assert_eq!(redactor.owned("nothing secret".into()), "nothing secret");
        assert_eq!(
            redactor.owned("a hunter2 b".into()),
            "a [redacted] b".to_string()
        );
        assert!(matches!(
            redactor.cow("nothing secret"),
            Cow::Borrowed("nothing secret")
        ));
        assert_eq!(redactor.cow("a hunter2 b"), "a [redacted] b");
    }

    #[test]
    fn overlapping_matches_are_replaced_once() {
        let secrets = vec!["aa".to_string()];
        assert_eq!(Redactor::new(&secrets).text("aaa"), "[redacted]a");
    }
}
