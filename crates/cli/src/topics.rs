//! The topics of SPEC.md and the CSV that overrides their partition counts.

use std::path::Path;

use anyhow::{Context, bail};
use clickstream_event::{
    INVALID_TOPIC, LATEST_TOPIC, RAW_TOPIC, SEGMENT_INVALID_TOPIC, SEGMENT_TOPIC,
    UNIQUE_USERS_TOPIC,
};
use clickstream_log::TopicSpec;

/// The pipeline's topics (SPEC.md's four, and the Segment stream's two):
/// `default_partitions` each, unless `csv` (lines of
/// `topic,partitions,replication`, the last line possibly without a newline) says otherwise.
/// Topics named only in the CSV are created too.
pub fn topic_specs(csv: Option<&Path>, default_partitions: u32) -> anyhow::Result<Vec<TopicSpec>> {
    let mut specs: Vec<TopicSpec> = [
        RAW_TOPIC,
        INVALID_TOPIC,
        LATEST_TOPIC,
        UNIQUE_USERS_TOPIC,
        SEGMENT_TOPIC,
        SEGMENT_INVALID_TOPIC,
    ]
    .into_iter()
    .map(|name| TopicSpec {
        name: name.to_string(),
        partitions: default_partitions,
        replication: 1,
    })
    .collect();
    let Some(csv) = csv else {
        return Ok(specs);
    };
    let text = std::fs::read_to_string(csv)
        .with_context(|| format!("reading topics file {}", csv.display()))?;
    for spec in parse_topics_csv(&text).with_context(|| format!("in {}", csv.display()))? {
        match specs.iter_mut().find(|s| s.name == spec.name) {
            Some(existing) => *existing = spec,
            None => specs.push(spec),
        }
    }
    Ok(specs)
}

/// Parses `topic,partitions,replication` lines; blank lines, `#` comments and a
/// `topic,partitions,...` header are skipped.
pub fn parse_topics_csv(text: &str) -> anyhow::Result<Vec<TopicSpec>> {
    let mut specs = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with("topic,") {
            continue;
        }
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        let (name, partitions, replication) = match fields.as_slice() {
            [name, partitions] => (*name, *partitions, "1"),
            [name, partitions, replication] => (*name, *partitions, *replication),
            _ => bail!("line {}: expected topic,partitions,replication", number + 1),
        };
        let partitions: u32 = partitions
            .parse()
            .ok()
            .filter(|p| *p > 0)
            .with_context(|| {
                format!("line {}: partitions must be a positive integer", number + 1)
            })?;
        let replication: u16 = replication
            .parse()
            .with_context(|| format!("line {}: replication must be an integer", number + 1))?;
        specs.push(TopicSpec {
            name: name.to_string(),
            partitions,
            replication,
        });
    }
    Ok(specs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_seed_csv_without_final_newline() {
        let text = "acme.clickstream.raw.events,6,1\nacme.clickstream.unique.users,1,1";
        let specs = parse_topics_csv(text).expect("parses");
        assert_eq!(specs.len(), 2);
        assert_eq!(specs[1].name, "acme.clickstream.unique.users");
        assert_eq!(specs[1].partitions, 1);
    }

    #[test]
    fn csv_overrides_defaults_and_adds_topics() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("topics.csv");
        std::fs::write(
            &path,
            "topic,partitions,replication\nacme.clickstream.unique.users,1,1\nextra,3,1\n",
        )
        .expect("write");
        let specs = topic_specs(Some(&path), 6).expect("specs");
        let get = |n: &str| specs.iter().find(|s| s.name == n).map(|s| s.partitions);
        assert_eq!(get(RAW_TOPIC), Some(6));
        assert_eq!(get(UNIQUE_USERS_TOPIC), Some(1));
        assert_eq!(get("extra"), Some(3));
    }

    #[test]
    fn rejects_zero_partitions() {
        assert!(parse_topics_csv("t,0,1").is_err());
        assert!(parse_topics_csv("t").is_err());
    }
}
