//! Small sampling helpers over any `Rng`, so the model reads as probabilities.

use rand::Rng;

/// Picks one item by weight. `items` must not be empty and weights must not all be zero.
pub(crate) fn weighted<'a, T>(rng: &mut impl Rng, items: &'a [(T, f64)]) -> &'a T {
    let total: f64 = items.iter().map(|(_, w)| w).sum();
    let mut point = rng.random::<f64>() * total;
    for (item, weight) in items {
        if point < *weight {
            return item;
        }
        point -= weight;
    }
    // Rounding can leave `point` a hair above the last weight.
    &items[items.len() - 1].0
}

/// True with probability `p`.
pub(crate) fn chance(rng: &mut impl Rng, p: f64) -> bool {
    rng.random::<f64>() < p
}

/// An index in `0..n` skewed towards 0: index `i` is about `skew` times likelier than
/// index `2i`. Popular products, loyal customers.
pub(crate) fn skewed_index(rng: &mut impl Rng, n: usize, skew: f64) -> usize {
    let u: f64 = rng.random();
    ((u.powf(skew) * n as f64) as usize).min(n.saturating_sub(1))
}

/// A standard normal sample (Box–Muller).
pub(crate) fn normal(rng: &mut impl Rng) -> f64 {
    let u1: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// A log-normal duration in seconds with the given median and spread, clamped to
/// `[min, max]`: human think times.
pub(crate) fn lognormal_secs(
    rng: &mut impl Rng,
    median: f64,
    sigma: f64,
    min: f64,
    max: f64,
) -> f64 {
    (median * (sigma * normal(rng)).exp()).clamp(min, max)
}

/// An exponential sample with the given mean: gaps between independent arrivals.
pub(crate) fn exponential(rng: &mut impl Rng, mean: f64) -> f64 {
    let u: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
    -u.ln() * mean
}

/// `len` random lowercase letters and digits: click ids, short-link slugs.
pub(crate) fn token(rng: &mut impl Rng, len: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    (0..len)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn weighted_follows_the_weights() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let items = [("a", 1.0), ("b", 3.0), ("never", 0.0)];
        let b = (0..10_000)
            .filter(|_| *weighted(&mut rng, &items) == "b")
            .count();
        assert!((7_000..8_000).contains(&b), "{b}");
    }

    #[test]
    fn skewed_index_prefers_small_indices_and_stays_in_range() {
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let draws: Vec<usize> = (0..10_000)
            .map(|_| skewed_index(&mut rng, 100, 2.5))
            .collect();
        assert!(draws.iter().all(|&i| i < 100));
        let low = draws.iter().filter(|&&i| i < 10).count();
        let high = draws.iter().filter(|&&i| i >= 90).count();
        assert!(low > 5 * high, "low {low}, high {high}");
    }

    #[test]
    fn lognormal_is_clamped() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        for _ in 0..1000 {
            let s = lognormal_secs(&mut rng, 10.0, 2.0, 1.0, 60.0);
            assert!((1.0..=60.0).contains(&s));
        }
    }
}
