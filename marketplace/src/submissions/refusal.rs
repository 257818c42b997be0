//! Which validation findings refuse a submission outright, with nothing stored, and as what
//! HTTP error. The error's code is the finding's own, so an author meets one set of codes
//! whether they validate locally (`plinth plugin build`) or submit; every other error finding
//! stores the submission as rejected by validation, with its report.

use plinth_package::Report;

use crate::error::Error;

/// The HTTP answer of a refusing finding.
#[derive(Debug, Clone, Copy)]
enum Answer {
    /// 400: the package itself is wrong.
    BadRequest,
    /// 403: the caller may not submit it (not theirs, not their key).
    Forbidden,
    /// 409: it conflicts with what is published or in review.
    Conflict,
}

/// The findings that refuse a submission, in the order they are reported when several do.
const REFUSING: &[(&str, Answer)] = &[
    ("wrong_publisher", Answer::Forbidden),
    ("display_text", Answer::BadRequest),
    ("signature_missing", Answer::BadRequest),
    ("signature_unknown_key", Answer::Forbidden),
    ("signature_key_revoked", Answer::Forbidden),
    ("signature_digest_mismatch", Answer::BadRequest),
    ("signature_invalid", Answer::BadRequest),
    ("version_not_greater", Answer::Conflict),
];

/// The refusal `report` calls for, if it has a refusing error: the first refusing code's
/// status and code, with every message of that code (e.g. each display-text rule broken).
pub(crate) fn refusal(report: &Report) -> Option<Error> {
    REFUSING.iter().find_map(|&(code, answer)| {
        let messages: Vec<&str> = report
            .errors()
            .filter(|finding| finding.code == code)
            .map(|finding| finding.message.as_str())
            .collect();
        if messages.is_empty() {
            return None;
        }
        let message = messages.join("; ");
        Some(match answer {
            Answer::BadRequest => Error::bad_request(code, message),
            Answer::Forbidden => Error::forbidden(code, message),
            Answer::Conflict => Error::conflict(code, message),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(error: Option<Error>) -> Option<(u16, &'static str)> {
        match error? {
            Error::BadRequest { code, .. } => Some((400, code)),
            Error::Forbidden { code, .. } => Some((403, code)),
            Error::Conflict { code, .. } => Some((409, code)),
            _ => None,
        }
    }

    #[test]
    fn only_refusing_findings_refuse() {
        let mut report = Report::default();
        report.warning("lookalike_id", "looks like another");
        report.error("import_not_permitted", "imports kv");
        assert!(refusal(&report).is_none(), "stored as rejected instead");
        report.error("version_not_greater", "not greater");
        assert_eq!(code(refusal(&report)), Some((409, "version_not_greater")));
        report.error("signature_unknown_key", "unknown key");
        assert_eq!(code(refusal(&report)), Some((403, "signature_unknown_key")));
    }

    #[test]
    fn every_message_of_the_refusing_code_is_kept() {
        let mut report = Report::default();
        report.error("display_text", "field `plugin.name`: bidi control");
        report.error("display_text", "field `plugin.description`: too long");
        let Some(Error::BadRequest { code, message }) = refusal(&report) else {
            panic!("a 400 for display text");
        };
        assert_eq!(code, "display_text");
        assert!(message.contains("plugin.name") && message.contains("plugin.description"));
    }
}
