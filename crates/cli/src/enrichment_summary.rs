//! What the web UI shows about enrichment: which enrichers run, the geo data, and the
//! credits that data's licence asks for.

use clickstream_process::EnrichSetup;
use clickstream_ui::{Attribution, EnricherState, EnrichmentSummary};

/// Summarises `setup` for the overview page.
pub fn enrichment_summary(setup: &EnrichSetup) -> EnrichmentSummary {
    let c = &setup.config;
    let on = |name: &str, enabled: bool, detail: String| EnricherState {
        name: name.to_owned(),
        enabled,
        detail,
    };
    let geo_detail = if !c.geo.enabled {
        String::new()
    } else if setup.geo_databases.is_empty() {
        "no database: run scripts/setup-geoip or set enrich.geo.databases".to_owned()
    } else {
        format!("{} database file(s)", setup.geo_databases.len())
    };
    let privacy = [
        c.privacy.anonymize_ip.then_some("IP anonymised"),
        c.privacy.pseudonymize.then_some("HMAC pseudonyms"),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>();
    let enrichers = vec![
        on("user_agent", c.user_agent.enabled, "uap-core".to_owned()),
        on("geo", c.geo.enabled, geo_detail),
        on("referrer", c.referrer.enabled, String::new()),
        on("campaign", c.campaign.enabled, String::new()),
        on("bots", c.bots.enabled, String::new()),
        on(
            "sessions",
            c.sessions.enabled,
            format!(
                "{} min inactivity gap",
                c.sessions.inactivity_gap_ms / 60_000
            ),
        ),
        on(
            "duplicates",
            c.duplicates.enabled,
            format!("{} min window", c.duplicates.window_ms / 60_000),
        ),
        on("privacy", !privacy.is_empty(), privacy.join(", ")),
    ];
    let geo_databases: Vec<String> = setup
        .geo_databases
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    let uses_db_ip = setup.geo_databases.iter().any(|path| {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().to_ascii_lowercase())
            .unwrap_or_default();
        name.contains("dbip")
            || name.contains("db-ip")
            || path.with_file_name("DBIP-LICENSE").exists()
    });
    let attributions = uses_db_ip
        .then(|| Attribution {
            text: "IP geolocation by DB-IP (CC BY 4.0)".to_owned(),
            url: "https://db-ip.com".to_owned(),
        })
        .into_iter()
        .collect();
    EnrichmentSummary {
        enrichers,
        geo_databases,
        attributions,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn db_ip_files_bring_their_credit_and_others_do_not() {
        let mut setup = EnrichSetup {
            config: Default::default(),
            geo_databases: vec![PathBuf::from("/nowhere/dbip-city-ipv4.mmdb")],
            ..Default::default()
        };
        let summary = enrichment_summary(&setup);
        assert_eq!(summary.attributions.len(), 1);
        assert!(summary.attributions[0].text.contains("DB-IP"));
        assert_eq!(summary.enrichers.len(), 8);
        assert!(
            summary
                .enrichers
                .iter()
                .any(|e| e.name == "geo" && e.enabled)
        );

        setup.geo_databases = vec![PathBuf::from("/nowhere/GeoIP2-City.mmdb")];
        assert!(enrichment_summary(&setup).attributions.is_empty());

        setup.geo_databases.clear();
        let summary = enrichment_summary(&setup);
        let geo = summary
            .enrichers
            .iter()
            .find(|e| e.name == "geo")
            .expect("geo");
        assert!(geo.detail.contains("setup-geoip"), "{}", geo.detail);
    }
}
