//! Keeping credentials out of logs and error messages.

/// `url` with its password replaced by `***` (`rtsp://admin:***@cam/stream`); URLs without a
/// password are returned unchanged.
pub fn redact_url(url: &str) -> String {
    redact(url, |userinfo| match userinfo.split_once(':') {
        Some((user, _password)) => format!("{user}:***"),
        None => userinfo.to_owned(),
    })
}

/// `text` with every `user:password@` (or `user@`) of a URL inside it replaced by `***@`: for
/// messages from GStreamer or the network, which may quote a URL.
pub fn redact_text(text: &str) -> String {
    redact(text, |_| "***".to_owned())
}

/// Rewrites the user-info part (before `@` in the authority after `://`) of every URL in `text`.
fn redact(text: &str, rewrite: impl Fn(&str) -> String) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(scheme_end) = rest.find("://") {
        let authority_start = scheme_end + 3;
        out.push_str(&rest[..authority_start]);
        rest = &rest[authority_start..];
        // The authority ends at the path, query, fragment or whitespace.
        let authority_len = rest
            .find(|c: char| c == '/' || c == '?' || c == '#' || c.is_whitespace())
            .unwrap_or(rest.len());
        let authority = &rest[..authority_len];
        match authority.rfind('@') {
            Some(at) => {
                out.push_str(&rewrite(&authority[..at]));
                out.push_str(&authority[at..]);
            }
            None => out.push_str(authority),
        }
        rest = &rest[authority_len..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_urls() {
        let cases = [
            (
                "rtsp://admin:hunter2@10.0.0.5:554/Streaming/101",
                "rtsp://admin:***@10.0.0.5:554/Streaming/101",
            ),
            ("rtsp://admin@10.0.0.5/x", "rtsp://admin@10.0.0.5/x"),
            ("rtsp://10.0.0.5/x", "rtsp://10.0.0.5/x"),
            ("rtsps://u:p%40ss:w@host", "rtsps://u:***@host"),
            (
                "rtsp://u:p@[::1]:8554/a?b=c@d",
                "rtsp://u:***@[::1]:8554/a?b=c@d",
            ),
            ("not a url", "not a url"),
            ("", ""),
        ];
        for (url, expected) in cases {
            assert_eq!(redact_url(url), expected, "{url}");
        }
    }

    #[test]
    fn redacts_text() {
        let cases = [
            (
                "Could not open rtsp://admin:hunter2@cam1/live (timeout)",
                "Could not open rtsp://***@cam1/live (timeout)",
            ),
            (
                "a rtsp://u:p@h1/x and http://v:q@h2 end",
                "a rtsp://***@h1/x and http://***@h2 end",
            ),
            ("rtsp://cam1/live", "rtsp://cam1/live"),
            ("user:pass@ without a scheme", "user:pass@ without a scheme"),
        ];
        for (text, expected) in cases {
            let got = redact_text(text);
            assert_eq!(got, expected, "{text}");
            assert!(!got.contains("hunter2"));
        }
    }
}
