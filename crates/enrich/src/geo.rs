//! Country, region, city and coordinates of an IP address from MaxMind-format databases:
//! GeoIP2/GeoLite2 City and DB-IP's own files (nested layout: `country.iso_code`,
//! `subdivisions[0].names.en`, `city.names.en`, `location.latitude`), or the flat layout
//! of the ip-location-db packages (`country_code`, `state1`, `city`, `latitude`).

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use maxminddb::{Mmap, Reader};
use serde::Deserialize;

use crate::EnrichError;

/// Where an address is.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GeoInfo {
    /// ISO 3166-1 alpha-2 country code (`GB`).
    pub country_code: Option<String>,
    /// First-level subdivision (`England`), in English.
    pub region: Option<String>,
    /// City (`London`), in English.
    pub city: Option<String>,
    /// Latitude in degrees.
    pub latitude: Option<f64>,
    /// Longitude in degrees.
    pub longitude: Option<f64>,
}

/// Identifies a database record: addresses of one network share it, so it is what a
/// cache of decoded locations is keyed by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GeoRecord {
    database: usize,
    offset: usize,
}

/// Which record shape a database has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    Nested,
    Flat,
}

struct Database {
    reader: Reader<Mmap>,
    layout: Layout,
    ip_version: u16,
    path: PathBuf,
}

/// The opened databases, asked in order.
pub struct GeoLocator {
    databases: Vec<Database>,
}

impl GeoLocator {
    /// Opens the databases, mapped into memory: the pages a lookup touches are read from
    /// the file (and shared with every other process mapping it), not a copy on the heap.
    ///
    /// The files must be replaced by renaming a new file over them, never rewritten in
    /// place while a clickstream process runs (`scripts/setup-geoip` renames): a mapped
    /// file changing under its reader is undefined behaviour. A renamed-over file stays
    /// readable by whoever mapped it until they close it; the new data is used from the
    /// next start.
    pub fn open(paths: &[PathBuf]) -> Result<Self, EnrichError> {
        let databases = paths
            .iter()
            .map(|path| Database::open(path))
            .collect::<Result<_, _>>()?;
        Ok(GeoLocator { databases })
    }

    /// The database files, in lookup order.
    pub fn paths(&self) -> impl Iterator<Item = &Path> {
        self.databases.iter().map(|d| d.path.as_path())
    }

    /// The record that holds `ip`'s location, from the first database that has one.
    pub fn record(&self, ip: IpAddr) -> Option<GeoRecord> {
        self.databases
            .iter()
            .enumerate()
            .filter(|(_, db)| ip.is_ipv4() || db.ip_version == 6)
            .find_map(|(index, db)| {
                let found = db.reader.lookup(ip).ok()?;
                let offset = found.offset()?;
                Some(GeoRecord {
                    database: index,
                    offset,
                })
            })
    }

    /// Decodes a record found by [`GeoLocator::record`] for `ip`. `None` when the record
    /// holds nothing this enricher uses.
    pub fn decode(&self, record: GeoRecord, ip: IpAddr) -> Option<GeoInfo> {
        let db = self.databases.get(record.database)?;
        let found = db.reader.lookup(ip).ok()?;
        let info = match db.layout {
            Layout::Nested => found.decode::<NestedRecord<'_>>().ok()??.into_info(),
            Layout::Flat => found.decode::<FlatRecord<'_>>().ok()??.into_info(),
        };
        (info != GeoInfo::default()).then_some(info)
    }

    /// Where `ip` is, uncached.
    pub fn lookup(&self, ip: IpAddr) -> Option<GeoInfo> {
        self.decode(self.record(ip)?, ip)
    }
}

impl Database {
    fn open(path: &Path) -> Result<Self, EnrichError> {
        let error = |detail: String| EnrichError::GeoDatabase {
            path: path.to_path_buf(),
            detail,
        };
        let file = std::fs::File::open(path).map_err(|e| error(e.to_string()))?;
        // SAFETY: the file is only read through the map, and the documented way to update
        // it (see `GeoLocator::open`) replaces it by a rename, which leaves this mapping on
        // the old inode; nothing in clickstream writes to it.
        #[allow(unsafe_code)]
        let map =
            unsafe { memmap2::MmapOptions::new().map(&file) }.map_err(|e| error(e.to_string()))?;
        // A lookup reads a few scattered pages of the search tree and one record: have the
        // kernel read those pages only, not its read-around window about each (which made
        // a catch-up hold ~80 MB of the DB-IP files for a few thousand addresses).
        if let Err(e) = map.advise(memmap2::Advice::Random) {
            tracing::debug!(path = %path.display(), error = %e, "madvise(MADV_RANDOM) refused; the map reads ahead");
        }
        let reader = Reader::from_source(map).map_err(|e| error(e.to_string()))?;
        let metadata = reader.metadata();
        // MaxMind's and DB-IP's own files use the nested GeoIP2 layout; ip-location-db's
        // conversions (database type `city`) use flat keys.
        let kind = metadata.database_type.to_ascii_lowercase();
        let layout =
            if kind.starts_with("geoip") || kind.starts_with("geolite") || kind.starts_with("dbip")
            {
                Layout::Nested
            } else {
                Layout::Flat
            };
        tracing::info!(
            path = %path.display(), database_type = %metadata.database_type,
            layout = ?layout, ip_version = metadata.ip_version, "geo-IP database opened"
        );
        let ip_version = metadata.ip_version;
        Ok(Database {
            reader,
            layout,
            ip_version,
            path: path.to_path_buf(),
        })
    }
}

fn non_empty(s: Option<&str>) -> Option<String> {
    s.filter(|s| !s.is_empty()).map(str::to_string)
}

#[derive(Deserialize)]
struct NestedRecord<'a> {
    #[serde(borrow, default)]
    country: Option<IsoCode<'a>>,
    #[serde(borrow, default)]
    subdivisions: Option<Vec<Named<'a>>>,
    #[serde(borrow, default)]
    city: Option<Named<'a>>,
    #[serde(default)]
    location: Option<Location>,
}

#[derive(Deserialize)]
struct IsoCode<'a> {
    #[serde(borrow, default)]
    iso_code: Option<&'a str>,
}

#[derive(Deserialize)]
struct Named<'a> {
    #[serde(borrow, default)]
    names: Option<EnglishName<'a>>,
}

#[derive(Deserialize)]
struct EnglishName<'a> {
    #[serde(borrow, default)]
    en: Option<&'a str>,
}

#[derive(Deserialize)]
struct Location {
    #[serde(default)]
    latitude: Option<f64>,
    #[serde(default)]
    longitude: Option<f64>,
}

impl NestedRecord<'_> {
    fn into_info(self) -> GeoInfo {
        let name = |n: Option<&Named<'_>>| non_empty(n.and_then(|n| n.names.as_ref()?.en));
        GeoInfo {
            country_code: non_empty(self.country.and_then(|c| c.iso_code)),
            region: name(self.subdivisions.as_ref().and_then(|s| s.first())),
            city: name(self.city.as_ref()),
            latitude: self.location.as_ref().and_then(|l| l.latitude),
            longitude: self.location.as_ref().and_then(|l| l.longitude),
        }
    }
}

#[derive(Deserialize)]
struct FlatRecord<'a> {
    #[serde(borrow, default)]
    country_code: Option<&'a str>,
    #[serde(borrow, default)]
    state1: Option<&'a str>,
    #[serde(borrow, default)]
    city: Option<&'a str>,
    // ip-location-db stores coordinates as 32-bit floats, which the decoder does not
    // widen to f64 on its own.
    #[serde(default)]
    latitude: Option<f32>,
    #[serde(default)]
    longitude: Option<f32>,
}

impl FlatRecord<'_> {
    fn into_info(self) -> GeoInfo {
        GeoInfo {
            country_code: non_empty(self.country_code),
            region: non_empty(self.state1),
            city: non_empty(self.city),
            // f32 in the file: round to what it holds (six decimals is ~0.1 m).
            latitude: self.latitude.map(|v| round6(f64::from(v))),
            longitude: self.longitude.map(|v| round6(f64::from(v))),
        }
    }
}

fn round6(v: f64) -> f64 {
    (v * 1e6).round() / 1e6
}
