//! The enrichment columns of `events`: what the enrichers derived from each event, and
//! its session (assigned when the batch is complete).

use std::sync::Arc;

use deltalake::arrow::array::{
    ArrayRef, BooleanBuilder, Float64Builder, Int64Builder, StringBuilder,
};

use super::sized::FinishSized;

/// What the enrichers derived from one event; `None` where an enricher is off or had
/// nothing to say. See ARCHITECTURE.md for what each column means.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct EventEnrichment<'a> {
    /// Browser family (`Chrome`).
    pub browser_family: Option<&'a str>,
    /// Browser version (`131.0.0.0`).
    pub browser_version: Option<&'a str>,
    /// Operating system family (`Windows`).
    pub os_family: Option<&'a str>,
    /// Operating system version.
    pub os_version: Option<&'a str>,
    /// Device family (`iPhone`).
    pub device_family: Option<&'a str>,
    /// Device brand (`Apple`).
    pub device_brand: Option<&'a str>,
    /// Device model.
    pub device_model: Option<&'a str>,
    /// `desktop`, `mobile`, `tablet`, `tv`, `console`, `wearable`, `bot` or `unknown`.
    pub device_type: Option<&'a str>,
    /// ISO country code of the IP.
    pub geo_country: Option<&'a str>,
    /// Region (first subdivision) of the IP.
    pub geo_region: Option<&'a str>,
    /// City of the IP.
    pub geo_city: Option<&'a str>,
    /// Latitude of the IP's location.
    pub geo_latitude: Option<f64>,
    /// Longitude of the IP's location.
    pub geo_longitude: Option<f64>,
    /// `search`, `social`, `email`, `paid`, `internal`, `direct` or `unknown`.
    pub referrer_medium: Option<&'a str>,
    /// Known referring site (`Google`).
    pub referrer_source: Option<&'a str>,
    /// Search term in the referrer.
    pub referrer_term: Option<&'a str>,
    /// `utm_source` of the page URL.
    pub utm_source: Option<&'a str>,
    /// `utm_medium`.
    pub utm_medium: Option<&'a str>,
    /// `utm_campaign`.
    pub utm_campaign: Option<&'a str>,
    /// `utm_term`.
    pub utm_term: Option<&'a str>,
    /// `utm_content`.
    pub utm_content: Option<&'a str>,
    /// Google Ads click id.
    pub gclid: Option<&'a str>,
    /// Meta click id.
    pub fbclid: Option<&'a str>,
    /// Microsoft Advertising click id.
    pub msclkid: Option<&'a str>,
    /// Whether the user agent is a bot.
    pub is_bot: Option<bool>,
    /// The pattern or rule that made it a bot.
    pub bot_reason: Option<&'a str>,
}

/// The session of one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionColumns<'a> {
    /// Session id.
    pub session_id: &'a str,
    /// 1-based session number of the visitor.
    pub session_index: i64,
    /// 1-based event number within the session.
    pub event_index: i64,
}

impl<'a> EventEnrichment<'a> {
    fn text_before_coordinates(&self) -> [Option<&'a str>; 11] {
        [
            self.browser_family,
            self.browser_version,
            self.os_family,
            self.os_version,
            self.device_family,
            self.device_brand,
            self.device_model,
            self.device_type,
            self.geo_country,
            self.geo_region,
            self.geo_city,
        ]
    }

    fn text_after_coordinates(&self) -> [Option<&'a str>; 11] {
        [
            self.referrer_medium,
            self.referrer_source,
            self.referrer_term,
            self.utm_source,
            self.utm_medium,
            self.utm_campaign,
            self.utm_term,
            self.utm_content,
            self.gclid,
            self.fbclid,
            self.msclkid,
        ]
    }
}

/// Builders of the enrichment columns, in schema order.
#[derive(Debug)]
pub(crate) struct EnrichmentBuilder {
    text_before: [StringBuilder; 11],
    latitude: Float64Builder,
    longitude: Float64Builder,
    text_after: [StringBuilder; 11],
    is_bot: BooleanBuilder,
    bot_reason: StringBuilder,
}

impl EnrichmentBuilder {
    pub(crate) fn new() -> Self {
        EnrichmentBuilder {
            text_before: std::array::from_fn(|_| StringBuilder::new()),
            latitude: Float64Builder::new(),
            longitude: Float64Builder::new(),
            text_after: std::array::from_fn(|_| StringBuilder::new()),
            is_bot: BooleanBuilder::new(),
            bot_reason: StringBuilder::new(),
        }
    }

    pub(crate) fn push(&mut self, row: &EventEnrichment<'_>) {
        for (builder, value) in self
            .text_before
            .iter_mut()
            .zip(row.text_before_coordinates())
        {
            builder.append_option(value);
        }
        self.latitude.append_option(row.geo_latitude);
        self.longitude.append_option(row.geo_longitude);
        for (builder, value) in self.text_after.iter_mut().zip(row.text_after_coordinates()) {
            builder.append_option(value);
        }
        self.is_bot.append_option(row.is_bot);
        self.bot_reason.append_option(row.bot_reason);
    }

    /// The columns, then the session columns for `rows` rows: from `sessions` when it
    /// has one entry per row, else null.
    pub(crate) fn finish(
        &mut self,
        rows: usize,
        sessions: Option<&[SessionColumns<'_>]>,
    ) -> Vec<ArrayRef> {
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(30);
        for builder in &mut self.text_before {
            columns.push(builder.finish_sized());
        }
        columns.push(self.latitude.finish_sized());
        columns.push(self.longitude.finish_sized());
        for builder in &mut self.text_after {
            columns.push(builder.finish_sized());
        }
        columns.push(self.is_bot.finish_sized());
        columns.push(self.bot_reason.finish_sized());
        let sessions = sessions.filter(|s| s.len() == rows);
        let id_bytes = sessions.map_or(0, |s| s.iter().map(|s| s.session_id.len()).sum());
        let mut id = StringBuilder::with_capacity(rows, id_bytes);
        let mut index = Int64Builder::with_capacity(rows);
        let mut event_index = Int64Builder::with_capacity(rows);
        match sessions {
            Some(sessions) => {
                for s in sessions {
                    id.append_value(s.session_id);
                    index.append_value(s.session_index);
                    event_index.append_value(s.event_index);
                }
            }
            None => {
                id.append_nulls(rows);
                index.append_nulls(rows);
                event_index.append_nulls(rows);
            }
        }
        columns.push(Arc::new(id.finish()));
        columns.push(Arc::new(index.finish()));
        columns.push(Arc::new(event_index.finish()));
        columns
    }
}
