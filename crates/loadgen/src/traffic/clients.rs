//! Who sends the events: browsers on desktops and phones, the shop's own app, crawlers;
//! with the addresses they come from (IPv4 and IPv6, home lines, mobile carriers, clouds).

use std::net::{Ipv4Addr, Ipv6Addr};

use rand::Rng;

use super::random::{chance, weighted};

/// What kind of client a device is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ClientKind {
    /// A desktop or laptop browser.
    Desktop,
    /// A phone or tablet browser.
    MobileWeb,
    /// The shop's native app: screen paths, its own event names, `Z` timestamps.
    App,
}

/// Desktop browsers, by rough market share.
const DESKTOP: &[(&str, f64)] = &[
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
        38.0,
    ),
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
        11.0,
    ),
    (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
        12.0,
    ),
    (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
        10.0,
    ),
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0",
        7.0,
    ),
    (
        "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
        3.0,
    ),
    (
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
        3.0,
    ),
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 OPR/115.0.0.0",
        2.0,
    ),
    (
        "Opera/9.49 (X11; Linux x86_64) Presto/2.9.188 Version/11.00",
        0.3,
    ),
];

/// Phone and tablet browsers.
const MOBILE: &[(&str, f64)] = &[
    (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
        22.0,
    ),
    (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
        18.0,
    ),
    (
        "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36",
        30.0,
    ),
    (
        "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/27.0 Chrome/125.0.0.0 Mobile Safari/537.36",
        8.0,
    ),
    (
        "Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
        6.0,
    ),
    (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/131.0.6778.73 Mobile/15E148 Safari/604.1",
        5.0,
    ),
    (
        "Mozilla/5.0 (Linux; Android 14; SM-S921B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36 Instagram 358.0.0.0.0",
        3.0,
    ),
    (
        "Mozilla/5.0 (Android 14; Mobile; rv:133.0) Gecko/133.0 Firefox/133.0",
        2.0,
    ),
];

/// The shop's app on iOS and Android.
const APP: &[(&str, f64)] = &[
    ("XccShop/5.12.0 (iPhone; iOS 18.1; Scale/3.00)", 50.0),
    ("XccShop/5.11.2 (iPhone; iOS 17.5; Scale/3.00)", 15.0),
    (
        "XccShop/5.12.0 (Linux; U; Android 14; Pixel 8 Build/AP2A.240905.003)",
        20.0,
    ),
    (
        "XccShop/5.12.0 (Linux; U; Android 13; SM-A536B Build/TP1A.220624.014)",
        15.0,
    ),
];

/// A crawler: its user agent, where it comes from, how many pages it fetches.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bot {
    pub user_agent: &'static str,
    /// IPv4 /24 prefix (first three octets) it crawls from, or `None` for IPv6 `v6_prefix`.
    pub v4_prefix: Option<[u8; 3]>,
    /// IPv6 /32 prefix, used when `v4_prefix` is `None`.
    pub v6_prefix: [u16; 2],
}

/// Crawlers and scrapers with the address ranges they are known to use.
const BOTS: &[(Bot, f64)] = &[
    (
        Bot {
            user_agent: "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
            v4_prefix: Some([66, 249, 66]),
            v6_prefix: [0, 0],
        },
        30.0,
    ),
    (
        Bot {
            user_agent: "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.6778.69 Mobile Safari/537.36 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
            v4_prefix: Some([66, 249, 68]),
            v6_prefix: [0, 0],
        },
        15.0,
    ),
    (
        Bot {
            user_agent: "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
            v4_prefix: Some([157, 55, 39]),
            v6_prefix: [0, 0],
        },
        15.0,
    ),
    (
        Bot {
            user_agent: "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
            v4_prefix: Some([54, 36, 148]),
            v6_prefix: [0, 0],
        },
        10.0,
    ),
    (
        Bot {
            user_agent: "Mozilla/5.0 (compatible; SemrushBot/7~bl; +http://www.semrush.com/bot.html)",
            v4_prefix: Some([185, 191, 171]),
            v6_prefix: [0, 0],
        },
        7.0,
    ),
    (
        Bot {
            user_agent: "Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)",
            v4_prefix: Some([95, 108, 213]),
            v6_prefix: [0, 0],
        },
        5.0,
    ),
    (
        Bot {
            user_agent: "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15 (Applebot/0.1; +http://www.apple.com/go/applebot)",
            v4_prefix: Some([17, 241, 219]),
            v6_prefix: [0, 0],
        },
        5.0,
    ),
    (
        Bot {
            user_agent: "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.2; +https://openai.com/gptbot)",
            v4_prefix: Some([20, 171, 207]),
            v6_prefix: [0, 0],
        },
        5.0,
    ),
    (
        Bot {
            user_agent: "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
            v4_prefix: None,
            v6_prefix: [0x2a03, 0x2880],
        },
        5.0,
    ),
    (
        Bot {
            user_agent: "python-requests/2.32.3",
            v4_prefix: Some([34, 141, 0]),
            v6_prefix: [0, 0],
        },
        3.0,
    ),
];

/// A device a visitor uses: its user agent and kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Device {
    pub user_agent: &'static str,
    pub kind: ClientKind,
}

impl Device {
    /// A device drawn by market share: about 40 % desktop, 45 % mobile web, 15 % app.
    pub fn random(rng: &mut impl Rng) -> Device {
        let kind = *weighted(
            rng,
            &[
                (ClientKind::Desktop, 40.0),
                (ClientKind::MobileWeb, 45.0),
                (ClientKind::App, 15.0),
            ],
        );
        Device::of_kind(rng, kind)
    }

    /// A device of the given kind.
    pub fn of_kind(rng: &mut impl Rng, kind: ClientKind) -> Device {
        let agents = match kind {
            ClientKind::Desktop => DESKTOP,
            ClientKind::MobileWeb => MOBILE,
            ClientKind::App => APP,
        };
        Device {
            user_agent: weighted::<&str>(rng, agents),
            kind,
        }
    }

    /// Phones and the app roam between networks; desktops sit on a home or office line.
    pub fn is_mobile(&self) -> bool {
        self.kind != ClientKind::Desktop
    }
}

/// A crawler, by how often each visits.
pub(crate) fn random_bot(rng: &mut impl Rng) -> Bot {
    *weighted(rng, BOTS)
}

/// An address of `bot`'s range.
pub(crate) fn bot_address(rng: &mut impl Rng, bot: &Bot) -> String {
    match bot.v4_prefix {
        Some([a, b, c]) => Ipv4Addr::new(a, b, c, rng.random_range(1..255)).to_string(),
        None => Ipv6Addr::new(
            bot.v6_prefix[0],
            bot.v6_prefix[1],
            0xf000 | rng.random_range(0..0x0fff),
            rng.random_range(0..0x10),
            0xface,
            0xb00c,
            0,
            rng.random_range(1..0x100),
        )
        .to_string(),
    }
}

/// A visitor's network: a fixed line (stable IPv4, or an IPv6 /64 with privacy
/// addresses) or a mobile carrier (a new address from a carrier pool each session).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Network {
    /// The line's IPv4 address (NAT), used when `v6` is `None`.
    v4: Ipv4Addr,
    /// The line's IPv6 /64 prefix, if it has IPv6.
    v6: Option<[u16; 4]>,
}

impl Network {
    /// A home or office line; about a third have IPv6.
    pub fn fixed(rng: &mut impl Rng) -> Network {
        Network {
            v4: public_ipv4(rng),
            v6: chance(rng, 0.35).then(|| ipv6_prefix(rng)),
        }
    }

    /// A mobile carrier's network for one session: carrier-grade NAT on IPv4, or IPv6
    /// (most carriers hand phones IPv6 now).
    pub fn mobile(rng: &mut impl Rng) -> Network {
        Network {
            v4: public_ipv4(rng),
            v6: chance(rng, 0.5).then(|| ipv6_prefix(rng)),
        }
    }

    /// The address one session is seen from.
    pub fn session_address(&self, rng: &mut impl Rng) -> String {
        match self.v6 {
            Some([a, b, c, d]) => Ipv6Addr::new(
                a,
                b,
                c,
                d,
                rng.random(),
                rng.random(),
                rng.random(),
                rng.random(),
            )
            .to_string(),
            None => self.v4.to_string(),
        }
    }
}

/// A global unicast /64 from the regional registries' blocks.
fn ipv6_prefix(rng: &mut impl Rng) -> [u16; 4] {
    const BLOCKS: &[u16] = &[
        0x2001, 0x2003, 0x2a00, 0x2a01, 0x2a02, 0x2600, 0x2601, 0x2406, 0x2409, 0x2800,
    ];
    [
        BLOCKS[rng.random_range(0..BLOCKS.len())],
        rng.random_range(0x0200..0xffff),
        rng.random(),
        rng.random(),
    ]
}

/// A public unicast IPv4 address: not private, loopback, link-local, CGNAT-shared,
/// multicast, reserved or documentation space.
pub(crate) fn public_ipv4(rng: &mut impl Rng) -> Ipv4Addr {
    loop {
        let address = Ipv4Addr::from(rng.random::<u32>());
        let [a, b, c, _] = address.octets();
        let special = address.is_private()
            || address.is_loopback()
            || address.is_link_local()
            || address.is_multicast()
            || address.is_broadcast()
            || a == 0
            || a >= 240
            || (a == 100 && (64..128).contains(&b))
            || (a == 192 && b == 0 && (c == 0 || c == 2))
            || (a == 198 && (b == 18 || b == 19 || (b == 51 && c == 100)))
            || (a == 203 && b == 0 && c == 113);
        if !special {
            return address;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn addresses_parse_and_are_public() {
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let mut v6 = 0;
        for _ in 0..2000 {
            let network = if chance(&mut rng, 0.5) {
                Network::fixed(&mut rng)
            } else {
                Network::mobile(&mut rng)
            };
            let address: std::net::IpAddr =
                network.session_address(&mut rng).parse().expect("parses");
            match address {
                std::net::IpAddr::V4(v4) => assert!(!v4.is_private() && !v4.is_loopback(), "{v4}"),
                std::net::IpAddr::V6(_) => v6 += 1,
            }
        }
        assert!((400..1200).contains(&v6), "{v6} IPv6 of 2000");
        for _ in 0..200 {
            let bot = random_bot(&mut rng);
            let address: std::net::IpAddr = bot_address(&mut rng, &bot).parse().expect("parses");
            assert_eq!(address.is_ipv6(), bot.v4_prefix.is_none());
        }
    }
}
