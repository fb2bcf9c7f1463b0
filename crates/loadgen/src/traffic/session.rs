//! One visit: who, on what device, from where, and the walk through the shop. Each step
//! emits one event; the next step is drawn from where the visitor is now, so funnels
//! (page_view → search → visit_personal_recommendation → add_to_cart → placed_order) thin
//! out step by step, and think times between steps stay under the 30-minute inactivity
//! gap that ends a session.

use rand::Rng;
use serde_json::{Value, json};

use super::catalog::{Catalog, Page, Product};
use super::clients::{Bot, ClientKind, Device};
use super::random::{chance, lognormal_secs, weighted};
use super::sources::Landing;
use crate::object::Object;

/// Longest pause inside a session, seconds: under the usual 30-minute inactivity timeout.
pub(crate) const MAX_THINK_SECS: f64 = 25.0 * 60.0;

/// What the visitor does next.
#[derive(Debug, Clone, PartialEq)]
enum Step {
    PageView(Page),
    Search(String),
    Recommendation(Product, i64),
    AddToCart(Product),
    PlacedOrder,
    Exit,
}

/// Who is visiting.
#[derive(Debug, Clone)]
pub(crate) enum Visitor {
    /// A known customer (index into the population), logged in or not yet.
    Customer {
        index: usize,
        id: i64,
        logged_in: bool,
    },
    /// Someone without an account, or not logging in.
    Anonymous,
    /// A crawler with a number of pages still to fetch.
    Bot { pages_left: u32 },
}

/// A session in progress.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    pub visitor: Visitor,
    device: Device,
    ip: String,
    next: Step,
    landing: Option<Landing>,
    previous_page: Option<String>,
    product: Option<Product>,
    category: usize,
    cart: Option<Product>,
}

impl Session {
    /// A human visit landing on `page`, with the landing's URL and referrer.
    pub fn human(
        visitor: Visitor,
        device: Device,
        ip: String,
        page: Page,
        landing: Landing,
        category: usize,
    ) -> Session {
        let product = match page {
            Page::Product(id) => Some(Product { id, category }),
            _ => None,
        };
        Session {
            visitor,
            device,
            ip,
            next: Step::PageView(page),
            landing: Some(landing),
            previous_page: None,
            product,
            category,
            cart: None,
        }
    }

    /// A crawl by `bot` from `ip`, starting at `page`.
    pub fn bot(bot: Bot, pages: u32, ip: String, page: Page) -> Session {
        Session {
            visitor: Visitor::Bot { pages_left: pages },
            device: Device {
                user_agent: bot.user_agent,
                kind: ClientKind::Desktop,
            },
            ip,
            next: Step::PageView(page),
            landing: None,
            previous_page: None,
            product: None,
            category: 0,
            cart: None,
        }
    }

    /// Whether the session is in the shop's app (which formats timestamps its own way).
    pub fn is_app(&self) -> bool {
        self.device.kind == ClientKind::App
    }

    /// Whether a crawler runs this session.
    pub fn is_bot(&self) -> bool {
        matches!(self.visitor, Visitor::Bot { .. })
    }

    /// The customer index this session belongs to, if any (to free it at the end).
    pub fn customer_index(&self) -> Option<usize> {
        match self.visitor {
            Visitor::Customer { index, .. } => Some(index),
            _ => None,
        }
    }

    /// The event of the current step at `timestamp` (already formatted for the client).
    pub fn emit(&mut self, id: i64, timestamp: &str) -> Object {
        let app = self.device.kind == ClientKind::App;
        let customer_id = match self.visitor {
            Visitor::Customer {
                id,
                logged_in: true,
                ..
            } => json!(id),
            _ => Value::Null,
        };
        let mut details = Object::new()
            .with("user_agent", json!(self.device.user_agent))
            .with("ip", json!(self.ip))
            .with("customer_id", customer_id)
            .with("timestamp", json!(timestamp));
        let here = |page: &Page| if app { page.path() } else { page.url() };
        let kind = match &self.next {
            Step::PageView(page) => {
                let url = match self.landing.take() {
                    // An app is opened, not linked to: no referrer, no campaign URL.
                    Some(_) if app => page.path(),
                    Some(landing) => {
                        self.previous_page = landing.referrer;
                        landing.url
                    }
                    None => here(page),
                };
                details.set("page", json!(url));
                // Crawlers send no referrer; people's browsers send the page they came from.
                let crawler = matches!(self.visitor, Visitor::Bot { .. });
                if let Some(referrer) = self.previous_page.take().filter(|_| !crawler) {
                    details.set("referrer", json!(referrer));
                }
                self.previous_page = Some(url);
                match (page, app) {
                    (Page::Product(id), true) => {
                        details.set("product", json!(id));
                        "view"
                    }
                    (_, true) => "click",
                    _ => "page_view",
                }
            }
            Step::Search(query) => {
                let page = Page::Search(query.clone());
                details.set("query", json!(query));
                details.set(
                    "page",
                    json!(if app {
                        "/search".to_string()
                    } else {
                        page.url()
                    }),
                );
                self.previous_page = Some(here(&page));
                "search"
            }
            Step::Recommendation(product, position) => {
                details.set("product", json!(product.id));
                details.set("position", json!(position));
                "visit_personal_recommendation"
            }
            Step::AddToCart(product) => {
                details.set("product", json!(product.id));
                details.set("page", json!(here(&Page::Product(product.id))));
                "add_to_cart"
            }
            Step::PlacedOrder => {
                if app {
                    // The app's older event name for an order, with the product bought.
                    if let Some(product) = self.cart {
                        details.set("product", json!(product.id));
                    }
                    details.set("page", json!(Page::Checkout.path()));
                    if let Some(previous) = &self.previous_page {
                        details.set("referrer", json!(previous));
                    }
                    "purchase"
                } else {
                    details.set("page", json!(Page::OrderConfirmation.url()));
                    "placed_order"
                }
            }
            Step::Exit => "page_view",
        };
        Object::new()
            .with("id", json!(id))
            .with("type", json!(kind))
            .with("event", details)
    }

    /// Moves to the next step; returns the think time in seconds before it, or `None` when
    /// the visitor leaves.
    pub fn advance(&mut self, rng: &mut impl Rng, catalog: &Catalog) -> Option<f64> {
        if let Visitor::Bot { pages_left, .. } = &mut self.visitor {
            *pages_left = pages_left.saturating_sub(1);
            if *pages_left == 0 {
                return None;
            }
            let page = if chance(rng, 0.7) {
                let category = rng.random_range(0..12);
                Page::Product(catalog.product_in(rng, category).id)
            } else if chance(rng, 0.9) {
                Page::Category(rng.random_range(0..12))
            } else {
                Page::Sitemap
            };
            self.next = Step::PageView(page);
            return Some(lognormal_secs(rng, 2.0, 0.7, 0.2, 30.0));
        }
        let logged_in = matches!(
            self.visitor,
            Visitor::Customer {
                logged_in: true,
                ..
            }
        );
        let reco = if logged_in { 1.0 } else { 0.0 };
        let current = std::mem::replace(&mut self.next, Step::Exit);
        let (next, think_median) = match current {
            Step::PageView(Page::Product(id)) => {
                let product = self.product.unwrap_or(Product {
                    id,
                    category: self.category,
                });
                let choice = *weighted(
                    rng,
                    &[
                        (0, 0.15),
                        (1, 0.22),
                        (2, 0.10 * reco),
                        (3, 0.12),
                        (4, 0.09),
                        (5, 0.32),
                    ],
                );
                let step = match choice {
                    0 => Step::AddToCart(product),
                    1 => self.view_product(catalog.related(rng, product)),
                    2 => self.recommend(rng, catalog),
                    3 => self.search(rng, catalog),
                    4 => Step::PageView(Page::Category(self.category)),
                    _ => Step::Exit,
                };
                (step, 30.0)
            }
            Step::PageView(_) => {
                let choice = *weighted(
                    rng,
                    &[(0, 0.38), (1, 0.10), (2, 0.20), (3, 0.08 * reco), (4, 0.24)],
                );
                let step = match choice {
                    0 => self.view_product(catalog.product_in(rng, self.category)),
                    1 => {
                        self.category = catalog.category(rng);
                        Step::PageView(Page::Category(self.category))
                    }
                    2 => self.search(rng, catalog),
                    3 => self.recommend(rng, catalog),
                    _ => Step::Exit,
                };
                (step, 20.0)
            }
            Step::Search(_) => {
                let choice = *weighted(rng, &[(0, 0.50), (1, 0.15), (2, 0.35)]);
                let step = match choice {
                    0 => self.view_product(catalog.product_in(rng, self.category)),
                    1 => self.search(rng, catalog),
                    _ => Step::Exit,
                };
                (step, 12.0)
            }
            Step::Recommendation(product, _) => {
                let choice = *weighted(rng, &[(0, 0.30), (1, 0.35), (2, 0.10), (3, 0.25)]);
                let step = match choice {
                    0 => Step::AddToCart(product),
                    1 => self.view_product(product),
                    2 => self.recommend(rng, catalog),
                    _ => Step::Exit,
                };
                (step, 20.0)
            }
            Step::AddToCart(product) => {
                self.cart = Some(product);
                // Checking out needs an account: a known customer logs in here.
                if let Visitor::Customer { logged_in, .. } = &mut self.visitor {
                    *logged_in = true;
                }
                let choice = *weighted(rng, &[(0, 0.32), (1, 0.28), (2, 0.10), (3, 0.30)]);
                let step = match choice {
                    0 => Step::PlacedOrder,
                    1 => self.view_product(catalog.related(rng, product)),
                    2 => self.search(rng, catalog),
                    _ => Step::Exit,
                };
                (step, 45.0)
            }
            Step::PlacedOrder => {
                let step = if chance(rng, 0.12) {
                    Step::PageView(Page::Home)
                } else {
                    Step::Exit
                };
                (step, 40.0)
            }
            Step::Exit => (Step::Exit, 0.0),
        };
        if next == Step::Exit {
            return None;
        }
        self.next = next;
        Some(lognormal_secs(rng, think_median, 0.9, 1.0, MAX_THINK_SECS))
    }

    fn view_product(&mut self, product: Product) -> Step {
        self.product = Some(product);
        self.category = product.category;
        Step::PageView(Page::Product(product.id))
    }

    fn search(&mut self, rng: &mut impl Rng, catalog: &Catalog) -> Step {
        let query = catalog.query(rng, self.category);
        if let Some(category) = catalog.category_of_query(&query) {
            self.category = category;
        }
        Step::Search(query)
    }

    fn recommend(&mut self, rng: &mut impl Rng, catalog: &Catalog) -> Step {
        let product = match self.product {
            Some(seen) => catalog.related(rng, seen),
            None => catalog.popular_product(rng),
        };
        self.product = Some(product);
        Step::Recommendation(product, rng.random_range(1..=10))
    }
}
