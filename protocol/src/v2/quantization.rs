//! Quantized numbers: a range and a step, the grid index sent on the wire and the float32 value
//! stored. Server and clients compute `value_of` with the same formula, which is what makes a
//! version 2 mirror equal to the server's state bit for bit.
//!
//! The value of index `k` is `float32(min + k × step)`: computed in float64, rounded once to
//! float32. A quantization is only accepted when every grid point survives that rounding (the
//! index of a stored value is the index it came from), so storing and sending never disagree.

use super::bits::bits_for;
use super::schema::SchemaError;

/// A quantized number's range and step; see the module doc for the exact formula.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quantization {
    pub(crate) min: f64,
    pub(crate) step: f64,
    pub(crate) steps: u64,
}

impl Quantization {
    /// Numbers in `[min, max]` by `step`, e.g. `Quantization::new(0.0, 1000.0, 0.05)` takes 15 bits.
    ///
    /// Refused unless every representable value survives a round trip through `float32`
    /// (the step must be well above the float32 spacing at the range's ends) and there are at
    /// most 2^32 steps.
    ///
    /// ```
    /// use ludus_protocol::v2::Quantization;
    /// let position = Quantization::new(0.0, 1000.0, 0.05).unwrap();
    /// assert_eq!(position.bits(), 15);
    /// assert_eq!(position.snap(12.3456), 12.35);
    /// ```
    pub fn new(min: f64, max: f64, step: f64) -> Result<Self, SchemaError> {
        let invalid = |reason| SchemaError::InvalidQuantization {
            min,
            max,
            step,
            reason,
        };
        if !(min.is_finite() && max.is_finite() && step.is_finite()) {
            return Err(invalid("bounds and step must be finite"));
        }
        if step <= 0.0 || max < min {
            return Err(invalid("step must be positive and max at least min"));
        }
        let steps = ((max - min) / step).round();
        if steps > f64::from(u32::MAX) {
            return Err(invalid("more than 2^32 steps"));
        }
        Self::from_steps(min, step, steps as u64)
            .map_err(|_| invalid("step below float32 precision"))
    }

    /// The form sent on the wire: `min`, `step` and the number of steps.
    pub(crate) fn from_steps(min: f64, step: f64, steps: u64) -> Result<Self, SchemaError> {
        let quantization = Self { min, step, steps };
        let largest = min.abs().max(quantization.value_of(steps).abs() as f64);
        let exact = step > 4.0 * largest * f64::from(f32::EPSILON)
            && min.is_finite()
            && step.is_finite()
            && steps <= u64::from(u32::MAX);
        if exact {
            Ok(quantization)
        } else {
            Err(SchemaError::Malformed(
                "quantization step below float32 precision",
            ))
        }
    }

    /// Bits per value.
    pub fn bits(&self) -> u32 {
        bits_for(self.steps)
    }

    /// The index of the grid point nearest `x` (NaN goes to the lowest point).
    pub fn index_of(&self, x: f64) -> u64 {
        let index = ((x - self.min) / self.step).round();
        if index >= self.steps as f64 {
            self.steps
        } else if index > 0.0 {
            index as u64
        } else {
            0
        }
    }

    /// The value of grid point `index`: `float32(min + index × step)`.
    pub fn value_of(&self, index: u64) -> f32 {
        (self.min + index as f64 * self.step) as f32
    }

    /// `x` snapped to the grid, as stored and sent.
    pub fn snap(&self, x: f64) -> f32 {
        self.value_of(self.index_of(x))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn position() -> Quantization {
        Quantization::new(0.0, 1000.0, 0.05).expect("valid")
    }

    #[test]
    fn every_grid_point_survives_float32() {
        let quantization = position();
        for index in 0..=quantization.steps {
            let value = quantization.value_of(index);
            assert_eq!(quantization.index_of(f64::from(value)), index);
        }
    }

    #[test]
    fn out_of_range_and_nan_are_clamped() {
        let quantization = position();
        assert_eq!(quantization.snap(-5.0), 0.0);
        assert_eq!(quantization.snap(1e9), 1000.0);
        assert_eq!(quantization.snap(f64::NAN), 0.0);
    }

    #[test]
    fn a_step_below_float32_precision_is_refused() {
        assert!(Quantization::new(0.0, 1e6, 0.01).is_err());
        assert!(Quantization::new(0.0, 1.0, 0.0).is_err());
        assert!(Quantization::new(1.0, 0.0, 0.1).is_err());
    }
}
