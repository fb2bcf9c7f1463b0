//! The parts of a URL the enrichers need, found without a full parse: the host of an
//! `http(s)` URL and the query and fragment of any URL.

use std::borrow::Cow;

/// The lowercase host of an `http://` or `https://` URL (no port, no user info, no
/// trailing dot). `None` for other schemes and for URLs without a host.
pub(crate) fn host_of(url: &str) -> Option<Cow<'_, str>> {
    let url = url.trim_start();
    let scheme_end = url.find("://")?;
    let scheme = &url[..scheme_end];
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return None;
    }
    let rest = &url[scheme_end + 3..];
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if host_port.starts_with('[') {
        // IPv6 literal: keep the brackets' content.
        &host_port[1..host_port.find(']')?]
    } else {
        host_port.split(':').next().unwrap_or_default()
    };
    let host = host.strip_suffix('.').unwrap_or(host);
    if host.is_empty() {
        return None;
    }
    Some(if host.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(host.to_ascii_lowercase())
    } else {
        Cow::Borrowed(host)
    })
}

/// The query (after `?`, before `#`) and fragment (after `#`) of a URL, when non-empty.
pub(crate) fn query_and_fragment(url: &str) -> (Option<&str>, Option<&str>) {
    let (before, fragment) = match url.split_once('#') {
        Some((before, fragment)) => (before, Some(fragment)),
        None => (url, None),
    };
    let query = before.split_once('?').map(|(_, q)| q);
    (
        query.filter(|q| !q.is_empty()),
        fragment.filter(|f| !f.is_empty()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts() {
        let cases = [
            ("https://www.Google.com/search?q=x", Some("www.google.com")),
            ("http://user:pw@example.org:8080/a", Some("example.org")),
            ("https://example.org.", Some("example.org")),
            ("https://example.org?x=1", Some("example.org")),
            ("https://[2001:db8::1]:443/", Some("2001:db8::1")),
            ("android-app://com.google.android.gm/", None),
            ("not a url", None),
            ("https:///path", None),
        ];
        for (url, host) in cases {
            assert_eq!(host_of(url).as_deref(), host, "{url}");
        }
    }

    #[test]
    fn queries_and_fragments() {
        assert_eq!(
            query_and_fragment("https://a/b?x=1#y=2"),
            (Some("x=1"), Some("y=2"))
        );
        assert_eq!(query_and_fragment("https://a/b#y?2"), (None, Some("y?2")));
        assert_eq!(query_and_fragment("https://a/b?"), (None, None));
    }
}
