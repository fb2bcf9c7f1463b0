//! The shop the traffic visits: categories, products with skewed popularity, what people
//! search for, and the page URLs of each.

use rand::Rng;

use super::random::{chance, skewed_index};

/// The shop's origin, as in the seed's sample data.
pub(crate) const SHOP: &str = "https://xcc-webshop.com";

/// Category slugs and the searches that lead to them.
const CATEGORIES: &[(&str, &[&str])] = &[
    (
        "running-shoes",
        &[
            "running shoes",
            "trail running shoes",
            "marathon shoes",
            "runing shoes",
        ],
    ),
    (
        "boots",
        &["boots", "hiking boots", "chelsea boots", "waterproof boots"],
    ),
    (
        "sneakers",
        &[
            "sneakers",
            "white sneakers",
            "retro sneakers",
            "sneakers women",
        ],
    ),
    ("sandals", &["sandals", "leather sandals", "flip flops"]),
    (
        "jackets",
        &[
            "rain jacket",
            "down jacket",
            "softshell jacket",
            "jackets men",
        ],
    ),
    ("t-shirts", &["t shirt", "running shirt", "merino t-shirt"]),
    ("shorts", &["running shorts", "shorts", "bike shorts"]),
    (
        "socks",
        &["running socks", "wool socks", "compression socks"],
    ),
    ("backpacks", &["backpack", "hydration pack", "daypack 20l"]),
    (
        "watches",
        &["gps watch", "running watch", "heart rate monitor"],
    ),
    (
        "accessories",
        &["headlamp", "water bottle", "insoles", "shoe laces"],
    ),
    (
        "kids",
        &["kids shoes", "kids rain jacket", "school backpack"],
    ),
];

/// Searches that name no category (brands, sizes, sales).
const GENERIC_QUERIES: &[&str] = &[
    "sale",
    "gift card",
    "size 44",
    "black",
    "new arrivals",
    "vegan",
    "returns",
    "discount code",
];

/// Product ids run from here, four digits like the seed's `3221`.
const FIRST_PRODUCT: i64 = 1000;

/// Campaign names of newsletters and ads.
pub(crate) const CAMPAIGNS: &[&str] = &[
    "spring_sale",
    "summer_sale",
    "black_friday",
    "new_collection",
    "weekly_digest",
    "back_in_stock",
    "cart_reminder",
    "loyalty_bonus",
];

/// A product: its id and category.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Product {
    pub id: i64,
    pub category: usize,
}

/// The catalog: a fixed number of products spread over the categories.
#[derive(Debug, Clone)]
pub(crate) struct Catalog {
    products: usize,
}

impl Catalog {
    pub fn new(products: usize) -> Self {
        Self {
            products: products.max(1),
        }
    }

    /// A product by popularity: a few best-sellers, a long tail.
    pub fn popular_product(&self, rng: &mut impl Rng) -> Product {
        self.product(skewed_index(rng, self.products, 2.2))
    }

    /// A product of `category`, by popularity within it.
    pub fn product_in(&self, rng: &mut impl Rng, category: usize) -> Product {
        let per_category = self.products.div_ceil(CATEGORIES.len()).max(1);
        let rank = skewed_index(rng, per_category, 1.8);
        let index = (rank * CATEGORIES.len() + category).min(self.products - 1);
        self.product(index)
    }

    /// A product close to `product` (same category): recommendations, "also bought".
    pub fn related(&self, rng: &mut impl Rng, product: Product) -> Product {
        self.product_in(rng, product.category)
    }

    fn product(&self, index: usize) -> Product {
        // Scatter ids so popular products are not all at the start of the id range.
        let id = FIRST_PRODUCT + ((index as i64 * 7_919) % self.products.max(1) as i64);
        Product {
            id,
            category: index % CATEGORIES.len(),
        }
    }

    /// A category by popularity.
    pub fn category(&self, rng: &mut impl Rng) -> usize {
        skewed_index(rng, CATEGORIES.len(), 1.6)
    }

    /// What someone types to find `category` (or, now and then, something generic).
    pub fn query(&self, rng: &mut impl Rng, category: usize) -> String {
        if chance(rng, 0.12) {
            return GENERIC_QUERIES[rng.random_range(0..GENERIC_QUERIES.len())].to_string();
        }
        let queries = CATEGORIES[category % CATEGORIES.len()].1;
        queries[rng.random_range(0..queries.len())].to_string()
    }

    /// The category a query was about, if it names one.
    pub fn category_of_query(&self, query: &str) -> Option<usize> {
        CATEGORIES.iter().position(|(_, qs)| qs.contains(&query))
    }
}

/// A page of the shop, as a path (app screens) or a full URL (web pages).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Page {
    Home,
    Category(usize),
    Product(i64),
    Search(String),
    Checkout,
    OrderConfirmation,
    RobotsTxt,
    Sitemap,
}

impl Page {
    /// The path of the page, without the origin.
    pub fn path(&self) -> String {
        match self {
            Page::Home => "/".into(),
            Page::Category(c) => format!("/category/{}", CATEGORIES[c % CATEGORIES.len()].0),
            Page::Product(id) => format!("/product/{id}"),
            Page::Search(q) => format!("/search?q={}", form_encode(q)),
            Page::Checkout => "/checkout".into(),
            Page::OrderConfirmation => "/checkout/confirmation".into(),
            Page::RobotsTxt => "/robots.txt".into(),
            Page::Sitemap => "/sitemap.xml".into(),
        }
    }

    /// The full URL on the web shop.
    pub fn url(&self) -> String {
        format!("{SHOP}{}", self.path())
    }
}

/// `application/x-www-form-urlencoded` for a search query: spaces as `+`.
pub(crate) fn form_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b' ' => out.push('+'),
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(byte as char)
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn products_stay_in_the_catalog_and_in_their_category() {
        let catalog = Catalog::new(500);
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        for _ in 0..2000 {
            let p = catalog.popular_product(&mut rng);
            assert!((FIRST_PRODUCT..FIRST_PRODUCT + 500).contains(&p.id));
            let q = catalog.product_in(&mut rng, 3);
            assert_eq!(q.category, 3);
        }
    }

    #[test]
    fn search_pages_are_form_encoded() {
        assert_eq!(
            Page::Search("daypack 20l & more".into()).url(),
            "https://xcc-webshop.com/search?q=daypack+20l+%26+more"
        );
        assert_eq!(Page::Category(0).path(), "/category/running-shoes");
    }
}
