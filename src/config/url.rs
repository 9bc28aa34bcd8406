//! The two kinds of URL in the configuration (`rtsp(s)://` cameras, `mqtt(s)://` broker), split
//! by hand: `scheme://[user[:password]@]host[:port][/path][?query][#fragment]`, with IPv6 hosts in
//! brackets (`[::1]`).
//!
//! Error messages from [`parse_url`] never quote the URL (it may hold a password): the caller
//! quotes [`redact`]ed text instead.

use super::Secret;

/// A URL split into its parts; user and password percent-decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Url {
    /// Lower case.
    pub scheme: String,
    pub username: Option<String>,
    pub password: Option<Secret>,
    /// Without the brackets of an IPv6 address.
    pub host: String,
    pub port: Option<u16>,
    /// Path, query and fragment as written: empty or starting with `/`, `?` or `#`.
    pub rest: String,
}

impl Url {
    /// A user or a password is in the URL.
    pub fn has_credentials(&self) -> bool {
        self.username.is_some() || self.password.is_some()
    }

    /// The URL as text, without user and password.
    pub fn without_credentials(&self) -> String {
        let mut out = format!("{}://", self.scheme);
        if self.host.contains(':') {
            out.push('[');
            out.push_str(&self.host);
            out.push(']');
        } else {
            out.push_str(&self.host);
        }
        if let Some(port) = self.port {
            out.push(':');
            out.push_str(&port.to_string());
        }
        out.push_str(&self.rest);
        out
    }
}

/// Splits `text` into a [`Url`]. The error is a sentence that does not quote `text`.
pub(crate) fn parse_url(text: &str) -> Result<Url, String> {
    if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("contains spaces or control characters".to_owned());
    }
    let Some((scheme, after)) = text.split_once("://") else {
        return Err("is not a URL (expected scheme://host...)".to_owned());
    };
    let mut scheme_chars = scheme.chars();
    let scheme_ok = scheme_chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && scheme_chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if !scheme_ok {
        return Err("has no valid scheme before `://`".to_owned());
    }
    let authority_end = after.find(['/', '?', '#']).unwrap_or(after.len());
    let (authority, rest) = after.split_at(authority_end);

    let (userinfo, hostport) = match authority.rfind('@') {
        Some(at) => (Some(&authority[..at]), &authority[at + 1..]),
        None => (None, authority),
    };
    if userinfo.is_none() && rest.contains('@') {
        return Err(
            "has `@` after the host: if the password contains `/`, `?`, `#` or `@`, write them \
             as %2F, %3F, %23 and %40"
                .to_owned(),
        );
    }
    let (username, password) = match userinfo {
        None => (None, None),
        Some(userinfo) => {
            let (user, password) = match userinfo.split_once(':') {
                Some((user, password)) => (user, Some(password)),
                None => (userinfo, None),
            };
            let user =
                percent_decode(user).ok_or("has a badly %-encoded user name (write `%` as %25)")?;
            let password = password
                .map(percent_decode)
                .map(|p| p.ok_or("has a badly %-encoded password (write `%` as %25)"))
                .transpose()?;
            (
                Some(user).filter(|u| !u.is_empty()),
                password.map(Secret::new),
            )
        }
    };

    let (host, port) = if let Some(bracketed) = hostport.strip_prefix('[') {
        let Some((host, after_host)) = bracketed.split_once(']') else {
            return Err("has an IPv6 host without its closing `]`".to_owned());
        };
        if !host.contains(':')
            || !host
                .chars()
                .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.')
        {
            return Err(format!("has a bad IPv6 address `[{host}]`"));
        }
        let port = match after_host {
            "" => None,
            _ => match after_host.strip_prefix(':') {
                Some(port) => Some(port),
                None => return Err("has text after the IPv6 host that is not `:port`".to_owned()),
            },
        };
        (host, port)
    } else {
        if hostport.matches(':').count() > 1 {
            return Err("has an IPv6 host without brackets (write it as [::1])".to_owned());
        }
        match hostport.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (hostport, None),
        }
    };
    if host.is_empty() {
        return Err("has no host".to_owned());
    }
    if let Some(bad) = host
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | ':')))
    {
        return Err(format!("has a host with `{bad}`, which is not allowed"));
    }
    let port = match port {
        None => None,
        Some(port) => match port.parse::<u16>() {
            Ok(p) if p > 0 && port.bytes().all(|b| b.is_ascii_digit()) => Some(p),
            _ => return Err(format!("has port `{port}`, expected a number 1..65535")),
        },
    };
    Ok(Url {
        scheme: scheme.to_ascii_lowercase(),
        username,
        password,
        host: host.to_owned(),
        port,
        rest: rest.to_owned(),
    })
}

/// `url` with its password replaced by `***` (`rtsp://admin:***@cam/x`); a URL without a
/// password comes back unchanged. The one redactor for URLs in messages and logs.
///
/// For a URL as a person wrote it, maybe malformed: everything between the first `:` after the
/// scheme and the last `@` is hidden, so a password with `/`, `?` or `@` in it is hidden whole.
/// Errs on the side of hiding too much (an `@` in the path hides the host as well).
pub fn redact_url(url: &str) -> String {
    let start = url.find("://").map_or(0, |i| i + 3);
    let Some(at) = url[start..].rfind('@').map(|i| start + i) else {
        return url.to_owned();
    };
    match url[start..at].find(':').map(|i| start + i) {
        Some(colon) => format!("{}***{}", &url[..=colon], &url[at..]),
        None => url.to_owned(),
    }
}

/// `text` with every URL in it (a word containing `://`) passed through [`redact_url`]: for
/// messages from GStreamer or the network, which may quote a URL.
pub fn redact_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while !rest.is_empty() {
        let word_end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        let word = &rest[..word_end];
        if word.contains("://") {
            out.push_str(&redact_url(word));
        } else {
            out.push_str(word);
        }
        rest = &rest[word_end..];
        let space_end = rest
            .find(|c: char| !c.is_whitespace())
            .unwrap_or(rest.len());
        out.push_str(&rest[..space_end]);
        rest = &rest[space_end..];
    }
    out
}

/// `%XX` decoding; `None` for a bad escape or bytes that are not UTF-8.
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text.get(i + 1..i + 3)?;
            if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return None;
            }
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_urls_are_split() {
        // text, scheme, user, password, host, port, rest, without credentials
        #[allow(clippy::type_complexity)]
        let cases: &[(
            &str,
            &str,
            Option<&str>,
            Option<&str>,
            &str,
            Option<u16>,
            &str,
            &str,
        )] = &[
            (
                "rtsp://10.0.0.21:554/stream1",
                "rtsp",
                None,
                None,
                "10.0.0.21",
                Some(554),
                "/stream1",
                "rtsp://10.0.0.21:554/stream1",
            ),
            (
                "RTSPS://cam.local/live?ch=1#x",
                "rtsps",
                None,
                None,
                "cam.local",
                None,
                "/live?ch=1#x",
                "rtsps://cam.local/live?ch=1#x",
            ),
            (
                "rtsp://admin:s3cr3t@10.0.0.1/s",
                "rtsp",
                Some("admin"),
                Some("s3cr3t"),
                "10.0.0.1",
                None,
                "/s",
                "rtsp://10.0.0.1/s",
            ),
            (
                "rtsp://ad%20min:p%40ss%2Fw:rd@cam:8554",
                "rtsp",
                Some("ad min"),
                Some("p@ss/w:rd"),
                "cam",
                Some(8554),
                "",
                "rtsp://cam:8554",
            ),
            (
                "rtsp://admin:p@ss@cam/",
                "rtsp",
                Some("admin"),
                Some("p@ss"),
                "cam",
                None,
                "/",
                "rtsp://cam/",
            ),
            (
                "rtsp://viewer@cam/",
                "rtsp",
                Some("viewer"),
                None,
                "cam",
                None,
                "/",
                "rtsp://cam/",
            ),
            (
                "rtsp://:pw@cam/",
                "rtsp",
                None,
                Some("pw"),
                "cam",
                None,
                "/",
                "rtsp://cam/",
            ),
            (
                "mqtt://[::1]:1883",
                "mqtt",
                None,
                None,
                "::1",
                Some(1883),
                "",
                "mqtt://[::1]:1883",
            ),
            (
                "mqtts://[fe80::1:2]",
                "mqtts",
                None,
                None,
                "fe80::1:2",
                None,
                "",
                "mqtts://[fe80::1:2]",
            ),
            (
                "mqtt://broker_1.example:65535",
                "mqtt",
                None,
                None,
                "broker_1.example",
                Some(65535),
                "",
                "mqtt://broker_1.example:65535",
            ),
        ];
        for &(text, scheme, user, password, host, port, rest, clean) in cases {
            let url = parse_url(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(url.scheme, scheme, "{text}");
            assert_eq!(url.username.as_deref(), user, "{text}");
            assert_eq!(
                url.password.as_ref().map(Secret::expose),
                password,
                "{text}"
            );
            assert_eq!(url.host, host, "{text}");
            assert_eq!(url.port, port, "{text}");
            assert_eq!(url.rest, rest, "{text}");
            assert_eq!(url.without_credentials(), clean, "{text}");
            assert_eq!(
                url.has_credentials(),
                user.is_some() || password.is_some(),
                "{text}"
            );
        }
    }

    #[test]
    fn bad_urls_are_refused_without_quoting_them() {
        let cases: &[(&str, &str)] = &[
            ("10.0.0.1/stream", "is not a URL"),
            ("rtsp:/10.0.0.1", "is not a URL"),
            ("://host", "no valid scheme"),
            ("1tp://host", "no valid scheme"),
            ("rtsp:///stream1", "has no host"),
            ("rtsp://", "has no host"),
            ("rtsp://user:pw@/x", "has no host"),
            ("rtsp://host:/x", "port ``"),
            ("rtsp://host:0/x", "port `0`"),
            ("rtsp://host:65536", "port `65536`"),
            ("rtsp://host:+554", "port `+554`"),
            ("rtsp://host:rtsp", "port `rtsp`"),
            ("rtsp://::1/x", "without brackets"),
            ("rtsp://[::1/x", "closing `]`"),
            ("rtsp://[::1]x/", "not `:port`"),
            ("rtsp://[zz::1]/", "bad IPv6"),
            ("rtsp://[127.0.0.1]/", "bad IPv6"),
            ("rtsp://ho$t/", "host with `$`"),
            ("rtsp://cam /x", "spaces"),
            ("rtsp://cam/\tx", "control"),
            ("rtsp://admin:pa/ss@cam/", "has `@` after the host"),
            ("rtsp://admin:50%@cam/", "badly %-encoded password"),
            ("rtsp://adm%zzin@cam/", "badly %-encoded user"),
            ("rtsp://admin:%ff@cam/", "badly %-encoded password"),
        ];
        for &(text, expected) in cases {
            let err = parse_url(text).expect_err(text);
            assert!(err.contains(expected), "{text}: `{err}` lacks `{expected}`");
            assert!(!err.contains("pa/ss") && !err.contains("50%"), "{err}");
        }
    }

    #[test]
    fn redaction_hides_the_password() {
        let cases: &[(&str, &str)] = &[
            ("rtsp://cam/x", "rtsp://cam/x"),
            ("rtsp://admin@cam/x", "rtsp://admin@cam/x"),
            ("rtsp://admin:s3cr3t@cam/x", "rtsp://admin:***@cam/x"),
            ("rtsp://admin:pa/ss@cam/x", "rtsp://admin:***@cam/x"),
            ("rtsp://admin:p@ss@cam/x", "rtsp://admin:***@cam/x"),
            ("rtsp://admin:p?ss@cam/x", "rtsp://admin:***@cam/x"),
            ("rtsps://u:p%40ss:w@host", "rtsps://u:***@host"),
            (
                "rtsp://admin:hunter2@10.0.0.5:554/Streaming/101",
                "rtsp://admin:***@10.0.0.5:554/Streaming/101",
            ),
            ("admin:s3cr3t@cam", "admin:***@cam"),
            ("http://a:b@c", "http://a:***@c"),
            // Too much hidden rather than too little.
            ("rtsp://cam:554/a@b", "rtsp://cam:***@b"),
            ("rtsp://u:p@[::1]:8554/a?b=c@d", "rtsp://u:***@d"),
            ("not a url", "not a url"),
            ("", ""),
        ];
        for &(text, expected) in cases {
            assert_eq!(redact_url(text), expected, "{text}");
        }
    }

    #[test]
    fn redaction_in_text_hides_every_password() {
        let cases = [
            (
                "Could not open rtsp://admin:hunter2@cam1/live (timeout)",
                "Could not open rtsp://admin:***@cam1/live (timeout)",
            ),
            (
                "a rtsp://u:hunter2@h1/x and\thttp://v:hunter2@h2 end",
                "a rtsp://u:***@h1/x and\thttp://v:***@h2 end",
            ),
            (
                "(rtsp://admin:pa/hunter2@cam/x)",
                "(rtsp://admin:***@cam/x)",
            ),
            ("rtsp://cam1/live", "rtsp://cam1/live"),
            ("user:pass@ without a scheme", "user:pass@ without a scheme"),
            ("  spaces  kept  ", "  spaces  kept  "),
        ];
        for (text, expected) in cases {
            let got = redact_text(text);
            assert_eq!(got, expected, "{text}");
            assert!(!got.contains("hunter2"));
        }
    }
}
