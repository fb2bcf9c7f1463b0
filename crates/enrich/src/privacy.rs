//! Privacy: IP anonymisation (the last octet of IPv4, the last 80 bits of IPv6 set to
//! zero, as Snowplow's and Google Analytics' IP masking do) and keyed pseudonymisation
//! (HMAC-SHA256 with a secret from the configuration) of `customer_id`, `ip` and string
//! ids (Segment's `userId`, `anonymousId`, `previousId`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::EnrichError;
use crate::config::PrivacyConfig;

/// Shortest secret accepted for pseudonymisation.
pub const MIN_SECRET_BYTES: usize = 16;

/// `ip` with its host part zeroed: `/24` of IPv4, `/48` of IPv6 kept.
pub fn anonymize_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            IpAddr::V4(Ipv4Addr::new(a, b, c, 0))
        }
        IpAddr::V6(v6) => {
            // An IPv4 address written as IPv6 is anonymised as IPv4.
            if let Some(v4) = v6.to_ipv4_mapped() {
                return anonymize_ip(IpAddr::V4(v4));
            }
            let bits = u128::from(v6) & !((1u128 << 80) - 1);
            IpAddr::V6(Ipv6Addr::from(bits))
        }
    }
}

/// The configured privacy transformations.
#[derive(Clone)]
pub struct Privacy {
    anonymize_ip: bool,
    key: Option<Hmac<Sha256>>,
}

/// An event's identifying fields after the privacy transformations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Protected {
    /// The IP as it may be stored: anonymised and/or a pseudonym.
    pub ip: String,
    /// The customer id as it may be stored: a pseudonym when pseudonymising.
    pub customer_id: Option<i64>,
}

impl Privacy {
    /// The transformations `config` asks for; `None` when it asks for none.
    pub fn new(config: &PrivacyConfig) -> Result<Option<Privacy>, EnrichError> {
        let key = if config.pseudonymize {
            let secret = config.secret.as_ref().ok_or_else(|| {
                EnrichError::Privacy("pseudonymize is on but no secret is set".into())
            })?;
            if secret.expose().len() < MIN_SECRET_BYTES {
                return Err(EnrichError::Privacy(format!(
                    "the secret must be at least {MIN_SECRET_BYTES} bytes"
                )));
            }
            Some(
                Hmac::<Sha256>::new_from_slice(secret.expose().as_bytes())
                    .map_err(|e| EnrichError::Privacy(e.to_string()))?,
            )
        } else {
            None
        };
        if !config.anonymize_ip && key.is_none() {
            return Ok(None);
        }
        Ok(Some(Privacy {
            anonymize_ip: config.anonymize_ip,
            key,
        }))
    }

    /// Applies the transformations. An IP that does not parse cannot be anonymised and is
    /// replaced by an empty string when anonymising.
    pub fn protect(&self, ip: &str, customer_id: Option<i64>) -> Protected {
        Protected {
            ip: self.protect_ip(Some(ip)).unwrap_or_default(),
            customer_id: customer_id.map(|id| self.protect_customer_id(id)),
        }
    }

    /// The IP as it may be stored: anonymised and/or a pseudonym. `None` when there is no
    /// IP (absent or empty) or, when anonymising, it does not parse.
    pub fn protect_ip(&self, ip: Option<&str>) -> Option<String> {
        let ip = ip.filter(|ip| !ip.is_empty())?;
        let ip = if self.anonymize_ip {
            anonymize_ip(ip.trim().parse::<IpAddr>().ok()?).to_string()
        } else {
            ip.to_string()
        };
        match &self.key {
            Some(key) => Some(hex(&hmac(key, b"ip\0", ip.as_bytes())[..16])),
            None => Some(ip),
        }
    }

    /// A string id as it may be stored: its pseudonym (32 lowercase hex digits) when
    /// pseudonymising, else the id itself. `domain` names what kind of id it is
    /// (`user_id`, `anonymous_id`), so that one value gets unrelated pseudonyms in
    /// different domains.
    pub fn protect_id(&self, domain: &str, id: &str) -> String {
        self.pseudonym(domain, id).unwrap_or_else(|| id.to_string())
    }

    /// The pseudonym of a string id in `domain`; `None` when not pseudonymising.
    pub(crate) fn pseudonym(&self, domain: &str, id: &str) -> Option<String> {
        let key = self.key.as_ref()?;
        let mut mac = key.clone();
        // The length prefix keeps (domain, id) pairs apart whatever bytes they hold, and
        // the leading tag keeps them apart from the `ip` and `customer_id` pseudonyms.
        mac.update(b"id\0");
        mac.update(&(domain.len() as u64).to_be_bytes());
        mac.update(domain.as_bytes());
        mac.update(id.as_bytes());
        let digest: [u8; 32] = mac.finalize().into_bytes().into();
        Some(hex(&digest[..16]))
    }

    /// The customer id as it may be stored: a pseudonym when pseudonymising.
    fn protect_customer_id(&self, id: i64) -> i64 {
        let Some(key) = &self.key else {
            return id;
        };
        let digest = hmac(key, b"customer_id\0", id.to_string().as_bytes());
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        // Non-negative, so pseudonyms read like ids; 63 bits keep collisions negligible
        // for any realistic number of customers.
        (u64::from_be_bytes(first) >> 1) as i64
    }
}

fn hmac(key: &Hmac<Sha256>, domain: &[u8], value: &[u8]) -> [u8; 32] {
    let mut mac = key.clone();
    mac.update(domain);
    mac.update(value);
    mac.finalize().into_bytes().into()
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 15) as usize] as char);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;

    #[test]
    fn anonymises_ipv4_and_ipv6() {
        let cases = [
            ("81.2.69.142", "81.2.69.0"),
            ("10.0.0.255", "10.0.0.0"),
            ("2001:db8:85a3:8d3:1319:8a2e:370:7348", "2001:db8:85a3::"),
            ("::ffff:81.2.69.142", "81.2.69.0"),
            ("::1", "::"),
        ];
        for (ip, expected) in cases {
            let ip: IpAddr = ip.parse().expect("ip");
            assert_eq!(anonymize_ip(ip).to_string(), expected);
        }
    }

    fn privacy(anonymize_ip: bool, secret: Option<&str>) -> Result<Option<Privacy>, EnrichError> {
        Privacy::new(&PrivacyConfig {
            anonymize_ip,
            pseudonymize: secret.is_some(),
            secret: secret.map(Secret::new),
        })
    }

    #[test]
    fn nothing_configured_is_nothing_to_do() {
        assert!(privacy(false, None).expect("config").is_none());
    }

    #[test]
    fn pseudonymising_needs_a_long_enough_secret() {
        assert!(privacy(false, Some("short")).is_err());
        let missing = Privacy::new(&PrivacyConfig {
            pseudonymize: true,
            ..PrivacyConfig::default()
        });
        assert!(missing.is_err());
    }

    #[test]
    fn pseudonyms_are_keyed_stable_and_distinct() {
        let a = privacy(false, Some("0123456789abcdef-one"))
            .expect("ok")
            .expect("some");
        let b = privacy(false, Some("0123456789abcdef-two"))
            .expect("ok")
            .expect("some");
        let first = a.protect("81.2.69.142", Some(1404));
        assert_eq!(first, a.protect("81.2.69.142", Some(1404)));
        assert_ne!(first, b.protect("81.2.69.142", Some(1404)));
        assert_ne!(first.ip, a.protect("81.2.69.143", Some(1404)).ip);
        assert_ne!(
            first.customer_id,
            a.protect("81.2.69.142", Some(1405)).customer_id
        );
        assert_eq!(first.ip.len(), 32);
        assert!(first.customer_id.is_some_and(|id| id >= 0 && id != 1404));
        assert_eq!(a.protect("81.2.69.142", None).customer_id, None);
    }

    #[test]
    fn anonymisation_happens_before_pseudonymisation() {
        let both = privacy(true, Some("0123456789abcdef-one"))
            .expect("ok")
            .expect("some");
        // Same /24: same pseudonym.
        assert_eq!(
            both.protect("81.2.69.142", None).ip,
            both.protect("81.2.69.7", None).ip
        );
        let only_anon = privacy(true, None).expect("ok").expect("some");
        assert_eq!(only_anon.protect("81.2.69.142", Some(7)).ip, "81.2.69.0");
        assert_eq!(
            only_anon.protect("81.2.69.142", Some(7)).customer_id,
            Some(7)
        );
        assert_eq!(only_anon.protect("not an ip", None).ip, "");
    }

    #[test]
    fn an_absent_ip_stays_absent() {
        for config in [(true, None), (false, Some(SECRET)), (true, Some(SECRET))] {
            let p = privacy(config.0, config.1).expect("ok").expect("some");
            assert_eq!(p.protect_ip(None), None);
            assert_eq!(p.protect_ip(Some("")), None);
            // A present IP comes out as `protect` stores it.
            let ip = "81.2.69.142";
            assert_eq!(p.protect_ip(Some(ip)), Some(p.protect(ip, None).ip));
        }
        let only_anon = privacy(true, None).expect("ok").expect("some");
        assert_eq!(only_anon.protect_ip(Some("not an ip")), None);
    }

    const SECRET: &str = "0123456789abcdef-one";

    #[test]
    fn id_pseudonyms_are_keyed_by_secret_and_domain() {
        let a = privacy(false, Some(SECRET)).expect("ok").expect("some");
        let b = privacy(false, Some("0123456789abcdef-two"))
            .expect("ok")
            .expect("some");
        let id = "user-1404";
        let pseudonym = a.protect_id("user_id", id);
        assert_eq!(pseudonym, a.protect_id("user_id", id));
        assert_eq!(pseudonym.len(), 32);
        assert!(
            pseudonym
                .bytes()
                .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
        );
        assert_ne!(pseudonym, b.protect_id("user_id", id));
        assert_ne!(pseudonym, a.protect_id("anonymous_id", id));
        assert_ne!(pseudonym, a.protect_id("user_id", "user-1405"));
        // Domain and id do not run into each other.
        assert_ne!(a.protect_id("user_id", "x"), a.protect_id("user_idx", ""));
        // Nor into the IP's pseudonyms.
        assert_ne!(
            a.protect_id("ip", "81.2.69.142"),
            a.protect("81.2.69.142", None).ip
        );
    }

    #[test]
    fn ids_are_kept_when_not_pseudonymising() {
        let only_anon = privacy(true, None).expect("ok").expect("some");
        assert_eq!(only_anon.protect_id("user_id", "user-1404"), "user-1404");
    }
}
