//! Which callback URLs are accepted.
//!
//! A callback must start with one of the operator's prefixes
//! (`WEBHOOK_ALLOW`), compared on the URL as the `url` crate normalises it
//! (lower-case scheme and host, default port dropped), and a prefix only
//! matches whole pieces: `https://hooks.example.com` does not admit
//! `https://hooks.example.com.evil.net/`. A callback whose host is an
//! internal address (loopback, private, link-local, cloud metadata,
//! unspecified) or an internal name (`localhost`, `metadata.google.internal`)
//! is refused unless a matching prefix names that host itself: a broad
//! prefix such as `https://` never reaches inside the network.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use url::{Host, Url};

use super::WebhookSettings;

/// The longest `callback_url` accepted.
pub const MAX_URL_CHARS: usize = 2048;

/// Host names that lead inside the network whatever they resolve to.
const INTERNAL_NAMES: [&str; 3] = ["localhost", "metadata.google.internal", "metadata"];

/// One allowed prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
struct AllowPrefix {
    /// The normalised prefix text.
    text: String,
    /// The host it names, when it names one.
    host: Option<String>,
}

/// `WEBHOOK_ALLOW`: the URL prefixes callbacks may start with.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowList {
    prefixes: Vec<AllowPrefix>,
}

impl AllowList {
    /// Parses a comma-separated list of `http://` or `https://` prefixes
    /// (a bare `https://` allows every public https host); `None` when an
    /// entry is not such a prefix or has a user, query or fragment.
    pub fn parse(text: &str) -> Option<AllowList> {
        let mut prefixes = Vec::new();
        for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            prefixes.push(parse_prefix(entry)?);
        }
        (!prefixes.is_empty()).then_some(AllowList { prefixes })
    }

    /// Whether no prefix is allowed (every callback is refused).
    pub fn is_empty(&self) -> bool {
        self.prefixes.is_empty()
    }

    /// The prefixes, comma-separated, as accepted.
    pub fn display(&self) -> String {
        self.prefixes
            .iter()
            .map(|p| p.text.as_str())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The hosts the prefixes name, lower-case: delivery may reach these
    /// even at internal addresses.
    pub fn named_hosts(&self) -> Vec<String> {
        self.prefixes
            .iter()
            .filter_map(|p| p.host.clone())
            .collect()
    }

    /// The prefixes `url` matches.
    fn matching<'a>(&'a self, url: &'a str) -> impl Iterator<Item = &'a AllowPrefix> + 'a {
        self.prefixes.iter().filter(move |prefix| {
            url.strip_prefix(prefix.text.as_str()).is_some_and(|rest| {
                prefix.text.ends_with('/') || rest.is_empty() || rest.starts_with(['/', '?', '#'])
            })
        })
    }
}

fn parse_prefix(entry: &str) -> Option<AllowPrefix> {
    let lower = entry.to_ascii_lowercase();
    if lower == "http://" || lower == "https://" {
        return Some(AllowPrefix {
            text: lower,
            host: None,
        });
    }
    if !(lower.starts_with("http://") || lower.starts_with("https://")) {
        return None;
    }
    let url = Url::parse(entry).ok()?;
    let ok = url.username().is_empty()
        && url.password().is_none()
        && url.query().is_none()
        && url.fragment().is_none();
    let host = url.host_str()?.to_owned();
    ok.then(|| AllowPrefix {
        text: url.as_str().to_owned(),
        host: Some(host),
    })
}

/// Why a `callback_url` is refused. Each message says what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallbackRefusal {
    #[error(
        "callback_url cannot be used: this daemon has no webhook secret to sign deliveries \
         with; the operator must set EXPORT_HOST_WEBHOOK_SECRET (and EXPORT_HOST_WEBHOOK_ALLOW), \
         or leave callback_url out"
    )]
    NoSecret,
    #[error(
        "callback_url cannot be used: this daemon allows no webhook destinations; the operator \
         must list the allowed URL prefixes in EXPORT_HOST_WEBHOOK_ALLOW, or leave callback_url out"
    )]
    NothingAllowed,
    #[error(
        "callback_url is not a valid absolute URL ({reason}); give an http:// or https:// URL"
    )]
    NotAUrl { reason: String },
    #[error("callback_url is longer than {MAX_URL_CHARS} characters; give a shorter URL")]
    TooLong,
    #[error("callback_url has the scheme `{scheme}`; only http:// and https:// URLs are called")]
    Scheme { scheme: String },
    #[error(
        "callback_url carries a user name or password; remove it (the receiver checks the \
         Export-Host-Signature header instead)"
    )]
    Userinfo,
    #[error(
        "callback_url {url} is not under any prefix the operator allows ({allowed}); use a URL \
         that starts with one of them, or ask the operator to add yours to \
         EXPORT_HOST_WEBHOOK_ALLOW"
    )]
    NotAllowed { url: String, allowed: String },
    #[error(
        "callback_url {url} points at {what}, which webhooks never call unless the operator \
         names that host in EXPORT_HOST_WEBHOOK_ALLOW; use a public address"
    )]
    Internal { url: String, what: String },
}

impl WebhookSettings {
    /// Checks a request's `callback_url`; the normalised URL to store.
    pub fn check_callback(&self, text: &str) -> Result<Url, CallbackRefusal> {
        if self.secret.is_none() {
            return Err(CallbackRefusal::NoSecret);
        }
        self.check_destination(text)
    }

    /// The destination checks alone (delivery repeats them, since the
    /// settings may have changed since submission).
    pub fn check_destination(&self, text: &str) -> Result<Url, CallbackRefusal> {
        if self.allow.is_empty() {
            return Err(CallbackRefusal::NothingAllowed);
        }
        if text.chars().count() > MAX_URL_CHARS {
            return Err(CallbackRefusal::TooLong);
        }
        let url = Url::parse(text.trim()).map_err(|err| CallbackRefusal::NotAUrl {
            reason: err.to_string(),
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(CallbackRefusal::Scheme {
                scheme: url.scheme().to_owned(),
            });
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(CallbackRefusal::Userinfo);
        }
        let Some(host) = url.host() else {
            return Err(CallbackRefusal::NotAUrl {
                reason: "it has no host".to_owned(),
            });
        };
        let host_text = url.host_str().unwrap_or_default();
        let (matched, named) = self
            .allow
            .matching(url.as_str())
            .fold((false, false), |(_, named), prefix| {
                (true, named || prefix.host.as_deref() == Some(host_text))
            });
        if !matched {
            return Err(CallbackRefusal::NotAllowed {
                url: url.to_string(),
                allowed: self.allow.display(),
            });
        }
        if !named {
            if let Some(what) = internal_host(&host) {
                return Err(CallbackRefusal::Internal {
                    url: url.to_string(),
                    what,
                });
            }
        }
        Ok(url)
    }
}

/// What makes `host` internal, or `None` for a public host.
fn internal_host(host: &Host<&str>) -> Option<String> {
    match host {
        Host::Ipv4(ip) => internal_ip(IpAddr::V4(*ip)).map(|what| format!("{ip} ({what})")),
        Host::Ipv6(ip) => internal_ip(IpAddr::V6(*ip)).map(|what| format!("{ip} ({what})")),
        Host::Domain(name) => {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            let internal = INTERNAL_NAMES.contains(&name.as_str()) || name.ends_with(".localhost");
            internal.then(|| format!("the internal host name {name}"))
        }
    }
}

/// What kind of non-public address `ip` is, or `None` when it is public.
pub fn internal_ip(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(ip) => internal_v4(ip),
        IpAddr::V6(ip) => internal_v6(ip),
    }
}

fn internal_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, ..] = ip.octets();
    if ip == Ipv4Addr::new(169, 254, 169, 254) {
        Some("the cloud metadata address")
    } else if ip.is_loopback() {
        Some("a loopback address")
    } else if ip.is_unspecified() || a == 0 {
        Some("an unspecified address")
    } else if ip.is_private() {
        Some("a private address")
    } else if ip.is_link_local() {
        Some("a link-local address")
    } else if a == 100 && (64..128).contains(&b) {
        Some("a shared (carrier-grade NAT) address")
    } else if ip.is_broadcast() || ip.is_multicast() || a >= 240 {
        Some("a broadcast, multicast or reserved address")
    } else {
        None
    }
}

fn internal_v6(ip: Ipv6Addr) -> Option<&'static str> {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return internal_v4(v4);
    }
    let first = ip.segments()[0];
    if ip == Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254) {
        Some("the cloud metadata address")
    } else if ip.is_loopback() {
        Some("a loopback address")
    } else if ip.is_unspecified() {
        Some("an unspecified address")
    } else if first & 0xfe00 == 0xfc00 {
        Some("a private (unique local) address")
    } else if first & 0xffc0 == 0xfe80 {
        Some("a link-local address")
    } else if ip.is_multicast() {
        Some("a multicast address")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhooks::WebhookSecret;

    fn settings(allow: &str) -> WebhookSettings {
        WebhookSettings {
            allow: AllowList::parse(allow).unwrap(),
            secret: WebhookSecret::parse("0123456789abcdef0123"),
            ..WebhookSettings::default()
        }
    }

    #[test]
    fn prefixes_match_whole_pieces_only() {
        let s = settings("https://hooks.example.com,http://127.0.0.1:9000/in/");
        assert!(s.check_callback("https://hooks.example.com/a?b=1").is_ok());
        assert!(s.check_callback("HTTPS://HOOKS.example.com:443/").is_ok());
        assert!(s
            .check_callback("https://hooks.example.com.evil.net/")
            .is_err());
        assert!(s.check_callback("https://hooks.example.com:8443/").is_err());
        assert!(s.check_callback("http://127.0.0.1:9000/in/x").is_ok());
        assert!(s.check_callback("http://127.0.0.1:9000/other").is_err());
    }

    #[test]
    fn internal_hosts_need_a_prefix_naming_them() {
        let s = settings("https://,http://");
        assert!(s.check_callback("https://example.com/hook").is_ok());
        for url in [
            "http://169.254.169.254/latest",
            "http://10.0.0.1/",
            "http://172.16.3.4/",
            "http://192.168.1.1/",
            "http://127.0.0.1:9000/",
            "http://0.0.0.0/",
            "http://[::1]/",
            "http://[fd00:ec2::254]/",
            "http://[fe80::1]/",
            "http://[::ffff:10.0.0.1]/",
            "http://metadata.google.internal/",
            "http://localhost:8080/",
        ] {
            assert!(
                matches!(s.check_callback(url), Err(CallbackRefusal::Internal { .. })),
                "{url}"
            );
        }
        let s = settings("http://127.0.0.1:9000/,http://localhost:8080");
        assert!(s.check_callback("http://127.0.0.1:9000/hook").is_ok());
        assert!(s.check_callback("http://localhost:8080/hook").is_ok());
    }

    #[test]
    fn refuses_other_schemes_userinfo_and_a_missing_secret() {
        let s = settings("https://");
        assert!(matches!(
            s.check_callback("ftp://example.com/"),
            Err(CallbackRefusal::Scheme { .. })
        ));
        assert!(matches!(
            s.check_callback("https://u:p@example.com/"),
            Err(CallbackRefusal::Userinfo)
        ));
        let no_secret = WebhookSettings { secret: None, ..s };
        assert_eq!(
            no_secret.check_callback("https://example.com/"),
            Err(CallbackRefusal::NoSecret)
        );
        assert!(AllowList::parse("ftp://x/").is_none());
        assert!(AllowList::parse("https://u@x/").is_none());
    }
}
