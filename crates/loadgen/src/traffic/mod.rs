//! Realistic synthetic clickstream traffic of the seed's shape, simulated on a virtual
//! clock so that a seed (and start time) fully determines the output.
//!
//! The model: a population of customers (a few loyal ones who come back every day, many
//! occasional ones), anonymous visitors and crawlers start sessions at a rate that follows
//! the time of day; each session walks through the shop (see [`session`]) with human think
//! times, from a device (desktop or mobile browser, the shop's app) and a network (home
//! line or mobile carrier, IPv4 or IPv6). Sessions overlap; events come out in timestamp
//! order. A configurable share of events is broken the way real clients break them.

mod catalog;
mod clients;
mod invalid;
mod random;
mod session;
mod sources;

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use chrono::{DateTime, Duration as ChronoDuration, TimeZone, Timelike, Utc};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::object::Object;
use catalog::{Catalog, Page};
use clients::{ClientKind, Device, Network, bot_address, random_bot};
use random::{chance, exponential, skewed_index};
use session::{Session, Visitor};

/// What traffic to simulate.
#[derive(Debug, Clone)]
pub struct TrafficConfig {
    /// Seed of every random choice: the same seed and settings give the same events.
    pub seed: u64,
    /// The virtual clock's start: the first session begins here.
    pub start: DateTime<Utc>,
    /// Known customers (accounts) that come back across days.
    pub customers: usize,
    /// Products in the catalog.
    pub products: usize,
    /// Sessions started per simulated day, on average (about 6 events each).
    pub sessions_per_day: f64,
    /// Share of sessions that are crawlers.
    pub bot_share: f64,
    /// Share of sessions by people without an account (or not logging in).
    pub anonymous_share: f64,
    /// Share of events broken on purpose so the server rejects them (0 to 1).
    pub invalid_share: f64,
    /// The first event's `id`; ids then count up.
    pub first_id: i64,
}

impl Default for TrafficConfig {
    fn default() -> Self {
        Self {
            seed: 42,
            start: default_start(),
            customers: 5_000,
            products: 2_000,
            sessions_per_day: 2_000.0,
            bot_share: 0.08,
            anonymous_share: 0.35,
            invalid_share: 0.0,
            first_id: 1,
        }
    }
}

/// The default start of the virtual clock, fixed so output does not depend on when it is
/// generated: Monday 2024-06-03 00:00 UTC.
pub fn default_start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 6, 3, 0, 0, 0)
        .single()
        .unwrap_or(DateTime::UNIX_EPOCH)
}

/// One generated event and whether it was made to be valid.
#[derive(Debug, Clone)]
pub struct GeneratedEvent {
    /// The event, keys in the seed's order (`id`, `type`, `event`).
    pub event: Object,
    /// False for events broken on purpose (the server must reject them).
    pub valid: bool,
    /// The visit the event belongs to, numbered from 0 in start order: ground truth for
    /// checking sessionization (think times within a visit stay under 30 minutes).
    pub visit: u64,
    /// Whether a crawler sent it: ground truth for checking bot detection.
    pub bot: bool,
}

/// A customer of the population.
#[derive(Debug, Clone)]
struct Customer {
    id: i64,
    devices: Vec<Device>,
    home: Network,
    in_session: bool,
}

/// Relative session starts per hour of the day (UTC, a European shop): quiet at night,
/// busy in the evening.
const HOURLY: [f64; 24] = [
    0.35, 0.22, 0.15, 0.12, 0.12, 0.18, 0.35, 0.65, 0.9, 1.0, 1.1, 1.2, 1.3, 1.2, 1.15, 1.1, 1.15,
    1.3, 1.5, 1.65, 1.6, 1.35, 0.95, 0.6,
];

/// The traffic, as an endless iterator of events in timestamp order.
#[derive(Debug)]
pub struct Traffic {
    config: TrafficConfig,
    /// Drives the model (who, what, when).
    rng: ChaCha8Rng,
    /// Decides which events are broken, on its own stream so the share does not change
    /// the rest of the traffic.
    invalid_rng: ChaCha8Rng,
    catalog: Catalog,
    customers: Vec<Customer>,
    /// Running visits with their numbers.
    sessions: Vec<Option<(u64, Session)>>,
    visits_started: u64,
    free_slots: Vec<usize>,
    /// (time in µs since start, tie-breaker, session slot) of each session's next event.
    queue: BinaryHeap<Reverse<(i64, u64, usize)>>,
    next_arrival_us: i64,
    sequence: u64,
    next_id: i64,
    hourly_mean: f64,
}

impl Traffic {
    /// A simulation with `config`.
    pub fn new(config: TrafficConfig) -> Traffic {
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
        let mut invalid_rng = ChaCha8Rng::seed_from_u64(config.seed);
        invalid_rng.set_stream(1);
        let customers = (0..config.customers.max(1))
            .map(|index| {
                let kind = if chance(&mut rng, 0.3) {
                    ClientKind::App
                } else {
                    ClientKind::MobileWeb
                };
                let phone = Device::of_kind(&mut rng, kind);
                let mut devices = vec![phone];
                if chance(&mut rng, 0.6) {
                    devices.push(Device::of_kind(&mut rng, ClientKind::Desktop));
                }
                Customer {
                    // Account ids: unique, not dense, four to six digits like the seed's 1404.
                    id: 1_000 + index as i64 * 17 + rng.random_range(0..17),
                    devices,
                    home: Network::fixed(&mut rng),
                    in_session: false,
                }
            })
            .collect();
        let hourly_mean = HOURLY.iter().sum::<f64>() / 24.0;
        let mut traffic = Traffic {
            catalog: Catalog::new(config.products),
            next_id: config.first_id,
            config,
            rng,
            invalid_rng,
            customers,
            sessions: Vec::new(),
            visits_started: 0,
            free_slots: Vec::new(),
            queue: BinaryHeap::new(),
            next_arrival_us: 0,
            sequence: 0,
            hourly_mean,
        };
        traffic.next_arrival_us = traffic.arrival_gap_us(0);
        traffic
    }

    /// Microseconds until the next session starts after `now_us`: a Poisson process whose
    /// rate follows the hour of the day.
    fn arrival_gap_us(&mut self, now_us: i64) -> i64 {
        let hour = (self.config.start + ChronoDuration::microseconds(now_us)).hour() as usize;
        let per_sec =
            self.config.sessions_per_day.max(0.001) / 86_400.0 * HOURLY[hour] / self.hourly_mean;
        (exponential(&mut self.rng, 1.0 / per_sec) * 1e6) as i64 + 1
    }

    fn start_session(&mut self) -> Session {
        let rng = &mut self.rng;
        if chance(rng, self.config.bot_share) {
            let bot = random_bot(rng);
            let ip = bot_address(rng, &bot);
            let pages = rng.random_range(3..40);
            let first = if chance(rng, 0.5) {
                Page::RobotsTxt
            } else {
                Page::Home
            };
            return Session::bot(bot, pages, ip, first);
        }
        let category = self.catalog.category(rng);
        let page = match *random::weighted(rng, &[(0, 0.35), (1, 0.35), (2, 0.30)]) {
            0 => Page::Home,
            1 => Page::Category(category),
            _ => Page::Product(self.catalog.product_in(rng, category).id),
        };
        let query = self.catalog.query(rng, category);
        let day = ((self.next_arrival_us / 1_000_000) / 86_400) as u32;
        let landing = sources::landing(rng, &page, &query, day);
        let customer = (!chance(rng, self.config.anonymous_share))
            .then(|| {
                // Loyal customers (low indices) come back far more often; one in a session
                // already is not starting another.
                (0..3)
                    .map(|_| skewed_index(rng, self.customers.len(), 2.0))
                    .find(|&i| !self.customers[i].in_session)
            })
            .flatten();
        match customer {
            Some(index) => {
                let customer = &mut self.customers[index];
                customer.in_session = true;
                let device = customer.devices[rng.random_range(0..customer.devices.len())];
                let ip = if device.is_mobile() && chance(rng, 0.7) {
                    Network::mobile(rng).session_address(rng)
                } else {
                    customer.home.session_address(rng)
                };
                // App users stay logged in; on the web a third browse logged out until
                // they put something in the cart.
                let logged_in = device.kind == ClientKind::App || chance(rng, 0.67);
                let visitor = Visitor::Customer {
                    index,
                    id: customer.id,
                    logged_in,
                };
                Session::human(visitor, device, ip, page, landing, category)
            }
            None => {
                let device = Device::random(rng);
                let network = if device.is_mobile() {
                    Network::mobile(rng)
                } else {
                    Network::fixed(rng)
                };
                let ip = network.session_address(rng);
                Session::human(Visitor::Anonymous, device, ip, page, landing, category)
            }
        }
    }

    fn timestamp(&self, at_us: i64, app: bool) -> String {
        let at = self.config.start + ChronoDuration::microseconds(at_us);
        if app {
            // The app's SDK: second precision, explicit UTC.
            at.format("%Y-%m-%dT%H:%M:%SZ").to_string()
        } else {
            // The web tracker: naive local-free timestamps with microseconds (UTC implied).
            at.format("%Y-%m-%dT%H:%M:%S%.6f").to_string()
        }
    }

    fn push(&mut self, at_us: i64, slot: usize) {
        self.sequence += 1;
        self.queue.push(Reverse((at_us, self.sequence, slot)));
    }
}

impl Iterator for Traffic {
    type Item = GeneratedEvent;

    fn next(&mut self) -> Option<GeneratedEvent> {
        loop {
            let due = self.queue.peek().map(|Reverse((at, _, _))| *at);
            if due.is_none_or(|at| self.next_arrival_us < at) {
                let at = self.next_arrival_us;
                let session = (self.visits_started, self.start_session());
                self.visits_started += 1;
                let slot = match self.free_slots.pop() {
                    Some(slot) => {
                        self.sessions[slot] = Some(session);
                        slot
                    }
                    None => {
                        self.sessions.push(Some(session));
                        self.sessions.len() - 1
                    }
                };
                self.push(at, slot);
                self.next_arrival_us = at + self.arrival_gap_us(at);
                continue;
            }
            let Reverse((at, _, slot)) = self.queue.pop()?;
            let (visit, mut session) = self.sessions[slot].take()?;
            let bot = session.is_bot();
            let id = self.next_id;
            self.next_id += 1;
            let app = session.is_app();
            let timestamp = self.timestamp(at, app);
            let mut event = session.emit(id, &timestamp);
            match session.advance(&mut self.rng, &self.catalog) {
                Some(think_secs) => {
                    self.sessions[slot] = Some((visit, session));
                    self.push(at + (think_secs * 1e6) as i64, slot);
                }
                None => {
                    if let Some(index) = session.customer_index() {
                        self.customers[index].in_session = false;
                    }
                    self.free_slots.push(slot);
                }
            }
            let valid = !chance(&mut self.invalid_rng, self.config.invalid_share);
            if !valid {
                invalid::corrupt(&mut self.invalid_rng, &mut event);
            }
            return Some(GeneratedEvent {
                event,
                valid,
                visit,
                bot,
            });
        }
    }
}

#[cfg(test)]
mod tests;
