//! Billing e-mail leaving over SMTP.
//!
//! A [`Mailer`] is built once from [`MailSettings`] (an SMTP URL as lettre reads it and the
//! From address) and sends [`OutgoingMail`]: a plain-text UTF-8 body and, for an invoice, one
//! [`Attachment`] (the PDF), as `multipart/mixed`. [`MailError`] says whether sending again
//! later may work ([`MailError::Transient`]: the server was unreachable, timed out or answered
//! 4xx) or not ([`MailError::Permanent`]: it answered 5xx). What each e-mail says is in
//! [`templates`].
//!
//! The SMTP URL may hold credentials: neither [`MailSettings`]' nor [`Mailer`]'s `Debug`, nor
//! any error, shows them.

pub mod templates;

use std::fmt;
use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

/// How billing e-mail leaves: an SMTP URL as lettre reads it
/// (`smtp://user:pass@host:587?tls=required`, `smtps://host`, `smtp://127.0.0.1:2525` for
/// plain loopback) and the From address.
#[derive(Clone, PartialEq, Eq)]
pub struct MailSettings {
    /// `smtp://[user:pass@]host[:port][?tls=required|opportunistic]` or
    /// `smtps://[user:pass@]host[:port]`.
    pub smtp_url: String,
    /// The From mailbox, e.g. `Plinth billing <billing@plinth.example>`.
    pub from: String,
    /// How long one SMTP conversation step may take.
    pub timeout: Duration,
}

impl fmt::Debug for MailSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MailSettings")
            .field("smtp_url", &redacted(&self.smtp_url))
            .field("from", &self.from)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// One e-mail to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingMail {
    /// The recipient, `address` or `Name <address>`.
    pub to: String,
    /// The subject, one line.
    pub subject: String,
    /// The plain-text body.
    pub text: String,
    /// A file sent along, e.g. the invoice PDF.
    pub attachment: Option<Attachment>,
}

/// A file attached to an e-mail.
#[derive(Clone, PartialEq, Eq)]
pub struct Attachment {
    /// The file name the recipient sees, e.g. `PL-000042.pdf`.
    pub filename: String,
    /// Its media type, e.g. `application/pdf`.
    pub content_type: String,
    /// The file.
    pub bytes: Vec<u8>,
}

impl fmt::Debug for Attachment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Attachment")
            .field("filename", &self.filename)
            .field("content_type", &self.content_type)
            .field("bytes", &self.bytes.len())
            .finish()
    }
}

/// Why an e-mail was not sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MailError {
    /// The SMTP URL or the From address is unusable: a configuration error.
    #[error("the mail settings are unusable: {0}")]
    Settings(String),
    /// The recipient is not an e-mail address.
    #[error("not a recipient address: {0}")]
    Address(String),
    /// The server could not be reached, timed out or answered 4xx: try again later.
    #[error("the e-mail was not sent, for now: {0}")]
    Transient(String),
    /// The server answered 5xx, or the message cannot be sent as it is: give up.
    #[error("the e-mail cannot be sent: {0}")]
    Permanent(String),
}

impl MailError {
    /// Whether sending the same e-mail again later may work.
    pub fn is_transient(&self) -> bool {
        matches!(self, MailError::Transient(_))
    }
}

/// Sends e-mail through one SMTP server (a connection per e-mail).
#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    /// The SMTP URL without credentials, for `Debug` and logs.
    server: String,
}

impl fmt::Debug for Mailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mailer")
            .field("server", &self.server)
            .field("from", &self.from.to_string())
            .finish_non_exhaustive()
    }
}

impl Mailer {
    /// A mailer for `settings`; nothing is connected yet.
    ///
    /// # Errors
    ///
    /// [`MailError::Settings`] when the URL is not one lettre reads (scheme `smtp` or `smtps`,
    /// a host, `tls` absent, `required` or `opportunistic`) or `from` is not a mailbox.
    pub fn new(settings: &MailSettings) -> Result<Mailer, MailError> {
        let server = redacted(&settings.smtp_url);
        let from: Mailbox = settings.from.parse().map_err(|error| {
            MailError::Settings(format!(
                "the From address {:?} is not a mailbox: {error}",
                settings.from
            ))
        })?;
        // lettre's message for a bad URL names the part at fault, never the URL itself.
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(&settings.smtp_url)
            .map_err(|error| {
                MailError::Settings(format!("the SMTP URL {server} is unusable: {error}"))
            })?
            .timeout(Some(settings.timeout))
            .build();
        Ok(Mailer {
            transport,
            from,
            server,
        })
    }

    /// The SMTP server's URL without credentials.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// Sends `mail`.
    ///
    /// # Errors
    ///
    /// [`MailError::Address`] for a bad recipient; [`MailError::Transient`] when the server
    /// could not be reached, timed out or answered 4xx; [`MailError::Permanent`] when it
    /// answered 5xx or the message cannot be built (e.g. a bad attachment media type).
    pub async fn send(&self, mail: &OutgoingMail) -> Result<(), MailError> {
        let message = self.message(mail)?;
        match self.transport.send(message).await {
            Ok(_) => {
                tracing::debug!(server = %self.server, subject = %mail.subject, "e-mail sent");
                Ok(())
            }
            Err(error) => {
                let error = classify(&error);
                tracing::debug!(server = %self.server, %error, "e-mail not sent");
                Err(error)
            }
        }
    }

    /// `mail` as a MIME message from this mailer's From address.
    fn message(&self, mail: &OutgoingMail) -> Result<Message, MailError> {
        let to: Mailbox = mail.to.parse().map_err(|error| {
            MailError::Address(format!("{:?} is not a mailbox: {error}", mail.to))
        })?;
        let builder = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(one_line(&mail.subject))
            .message_id(None);
        let text = SinglePart::plain(mail.text.clone());
        let built = match &mail.attachment {
            None => builder.singlepart(text),
            Some(attachment) => {
                let content_type = ContentType::parse(&attachment.content_type).map_err(|_| {
                    MailError::Permanent(format!(
                        "the attachment's media type {:?} is not one",
                        attachment.content_type
                    ))
                })?;
                let file = lettre::message::Attachment::new(one_line(&attachment.filename))
                    .body(attachment.bytes.clone(), content_type);
                builder.multipart(MultiPart::mixed().singlepart(text).singlepart(file))
            }
        };
        built.map_err(|error| MailError::Permanent(format!("the message cannot be built: {error}")))
    }
}

/// What an SMTP failure means for trying again.
fn classify(error: &smtp::Error) -> MailError {
    if error.is_permanent() {
        MailError::Permanent(format!("the SMTP server refused it: {error}"))
    } else if error.is_transient() {
        MailError::Transient(format!("the SMTP server deferred it: {error}"))
    } else if error.is_timeout() {
        MailError::Transient(format!("the SMTP server timed out: {error}"))
    } else if error.is_client() {
        // lettre refused before asking the server: e.g. no authentication mechanism in common,
        // or non-ASCII the server does not accept. Sending again changes nothing.
        MailError::Permanent(format!("the SMTP conversation cannot succeed: {error}"))
    } else {
        // Connection, network, TLS or a garbled reply.
        MailError::Transient(format!("the SMTP server could not be reached: {error}"))
    }
}

/// `text` with line breaks and other control characters turned into spaces.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// `url` without the user and password of its authority (`smtp://***@host:587`).
fn redacted(url: &str) -> String {
    let (scheme, rest) = match url.find("://") {
        Some(at) => url.split_at(at + 3),
        None => ("", url),
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}***@{}", &rest[at + 1..]),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use plinth_test_support::smtp::SmtpSink;

    use super::*;

    fn settings(url: &str) -> MailSettings {
        MailSettings {
            smtp_url: url.to_owned(),
            from: "Plinth billing <billing@plinth.test>".to_owned(),
            timeout: Duration::from_secs(5),
        }
    }

    fn mail(attachment: Option<Attachment>) -> OutgoingMail {
        OutgoingMail {
            to: "Ada Admin <ada@acme.test>".to_owned(),
            subject: "Plinth invoice PL-000042 for 2026-12: 49.00 USD".to_owned(),
            text: "Hello Acme,\n\nInvoice PL-000042 is issued.\n".to_owned(),
            attachment,
        }
    }

    #[test]
    fn credentials_stay_out_of_debug_and_errors() {
        let url = "smtp://apikey:s3cr3t-pass@smtp.example.com:587?tls=required";
        assert_eq!(
            redacted(url),
            "smtp://***@smtp.example.com:587?tls=required"
        );
        assert_eq!(
            redacted("smtps://smtp.example.com"),
            "smtps://smtp.example.com"
        );
        assert_eq!(redacted("user:pw@host/x@y"), "***@host/x@y");

        let settings = settings(url);
        assert!(!format!("{settings:?}").contains("s3cr3t"));
        let mailer = Mailer::new(&settings).unwrap();
        let debug = format!("{mailer:?}");
        assert!(
            !debug.contains("s3cr3t") && debug.contains("smtp.example.com"),
            "{debug}"
        );

        let bad = MailSettings {
            smtp_url: "ftp://user:s3cr3t@host".to_owned(),
            ..settings
        };
        let error = Mailer::new(&bad).unwrap_err();
        assert!(matches!(error, MailError::Settings(_)), "{error:?}");
        assert!(!error.to_string().contains("s3cr3t"), "{error}");
    }

    #[test]
    fn bad_settings_and_addresses_are_refused() {
        assert!(matches!(
            Mailer::new(&settings("not a url")),
            Err(MailError::Settings(_))
        ));
        let mut no_from = settings("smtp://127.0.0.1:2525");
        no_from.from = "billing at plinth".to_owned();
        assert!(matches!(Mailer::new(&no_from), Err(MailError::Settings(_))));

        let mailer = Mailer::new(&settings("smtp://127.0.0.1:2525")).unwrap();
        let mut bad = mail(None);
        bad.to = "nobody".to_owned();
        assert!(matches!(mailer.message(&bad), Err(MailError::Address(_))));
        let mut bad_type = mail(Some(Attachment {
            filename: "x.pdf".to_owned(),
            content_type: "not a type".to_owned(),
            bytes: vec![1],
        }));
        assert!(matches!(
            mailer.message(&bad_type),
            Err(MailError::Permanent(_))
        ));
        bad_type.attachment = None;
        assert!(mailer.message(&bad_type).is_ok());
    }

    #[test]
    fn subjects_stay_on_one_line() {
        assert_eq!(one_line("a\r\nBcc: x@y\tz"), "a  Bcc: x@y z");
    }

    #[tokio::test]
    async fn plain_text_reaches_the_server() {
        let sink = SmtpSink::start().await.unwrap();
        let mailer = Mailer::new(&settings(&sink.url())).unwrap();
        let mut message = mail(None);
        message.subject = "Café: invoice €49".to_owned();
        message.text = "Hello Café Ünïcode,\n\nTotal: 49.00 €.\n".to_owned();
        mailer.send(&message).await.unwrap();

        let received = sink.wait_for(1, Duration::from_secs(10)).await.unwrap();
        let got = &received[0];
        assert_eq!(got.from, "billing@plinth.test");
        assert_eq!(got.to, vec!["ada@acme.test".to_owned()]);
        assert_eq!(got.subject(), "Café: invoice €49");
        assert_eq!(got.text(), "Hello Café Ünïcode,\n\nTotal: 49.00 €.");
        assert!(got.header("From").unwrap().contains("billing@plinth.test"));
        assert!(got.header("Message-ID").is_some());
        assert!(got.attachments().is_empty());
    }

    #[tokio::test]
    async fn an_attachment_goes_as_multipart_mixed() {
        let sink = SmtpSink::start().await.unwrap();
        let mailer = Mailer::new(&settings(&sink.url())).unwrap();
        let pdf: Vec<u8> = (0..=255u8).cycle().take(5000).collect();
        mailer
            .send(&mail(Some(Attachment {
                filename: "PL-000042.pdf".to_owned(),
                content_type: "application/pdf".to_owned(),
                bytes: pdf.clone(),
            })))
            .await
            .unwrap();

        let received = sink.wait_for(1, Duration::from_secs(10)).await.unwrap();
        let got = &received[0];
        assert!(
            got.header("Content-Type")
                .unwrap()
                .starts_with("multipart/mixed"),
            "{:?}",
            got.header("Content-Type")
        );
        assert_eq!(
            got.subject(),
            "Plinth invoice PL-000042 for 2026-12: 49.00 USD"
        );
        assert_eq!(got.text(), "Hello Acme,\n\nInvoice PL-000042 is issued.");
        assert_eq!(
            got.attachments(),
            vec![(
                "PL-000042.pdf".to_owned(),
                "application/pdf".to_owned(),
                pdf
            )]
        );
    }

    #[tokio::test]
    async fn refusals_are_transient_or_permanent_by_code() {
        let sink = SmtpSink::start().await.unwrap();
        let mailer = Mailer::new(&settings(&sink.url())).unwrap();

        sink.reject_recipients(Some("451 4.3.0 Try again later"));
        let error = mailer.send(&mail(None)).await.unwrap_err();
        assert!(matches!(error, MailError::Transient(_)), "{error:?}");
        assert!(error.is_transient());

        sink.reject_recipients(Some("550 5.1.1 No such user"));
        let error = mailer.send(&mail(None)).await.unwrap_err();
        assert!(matches!(error, MailError::Permanent(_)), "{error:?}");

        sink.reject_recipients(None);
        mailer.send(&mail(None)).await.unwrap();
        assert_eq!(sink.messages().len(), 1);
    }

    #[tokio::test]
    async fn an_unreachable_server_is_transient() {
        // A port that was free a moment ago: nothing listens there.
        let port = {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            listener.local_addr().unwrap().port()
        };
        let mailer = Mailer::new(&settings(&format!("smtp://127.0.0.1:{port}"))).unwrap();
        let error = mailer.send(&mail(None)).await.unwrap_err();
        assert!(matches!(error, MailError::Transient(_)), "{error:?}");
    }
}
