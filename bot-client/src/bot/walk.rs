//! The bots' arena inputs.

use ludus_protocol::Value;
use std::f64::consts::PI;

/// How far the random walk turns per input, in radians (at most ±0.4).
const MAX_TURN_RADIANS: f64 = 0.4;

/// Arena inputs: a direction that turns a little at random each step, so bots wander the map
/// the way a player holding a stick does instead of jittering in place.
pub(super) struct RandomWalk {
    pub(super) rng: fastrand::Rng,
    heading: f64,
}

impl RandomWalk {
    pub(super) fn new(seed: u64) -> Self {
        let mut rng = fastrand::Rng::with_seed(seed);
        let heading = rng.f64() * 2.0 * PI;
        Self { rng, heading }
    }

    /// The next arena payload, `{"dx": f64, "dy": f64}` of unit length.
    pub(super) fn step(&mut self) -> Value {
        self.heading += (self.rng.f64() * 2.0 - 1.0) * MAX_TURN_RADIANS;
        Value::Map(vec![
            (Value::from("dx"), Value::from(self.heading.cos())),
            (Value::from("dy"), Value::from(self.heading.sin())),
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_walk_payloads_are_unit_directions_and_repeatable() {
        let mut first = RandomWalk::new(3);
        let mut second = RandomWalk::new(3);
        for _ in 0..100 {
            let payload = first.step();
            assert_eq!(payload, second.step());
            let Value::Map(entries) = payload else {
                panic!("payload is a map");
            };
            let component = |key: &str| {
                entries
                    .iter()
                    .find(|(name, _)| name.as_str() == Some(key))
                    .and_then(|(_, value)| value.as_f64())
                    .expect("component present")
            };
            let length = component("dx").hypot(component("dy"));
            assert!((length - 1.0).abs() < 1e-9);
        }
    }
}
