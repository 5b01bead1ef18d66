//! CPU feature tiers and their selection at run time.
//!
//! A plain `cargo build --release` targets the baseline CPU of the architecture; the faster
//! tiers are compiled into `#[target_feature]` functions and chosen once, at preparation, from
//! what the CPU reports. Users can force a tier with [`Isa`] in the interpreter options or with
//! the `FERROLITE_ISA` environment variable, e.g. to test every tier on one machine.

use std::fmt;
use std::str::FromStr;

/// A kernel tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Isa {
    /// Portable Rust, auto-vectorized for the architecture's baseline.
    Generic,
    /// x86-64 with AVX2 and FMA.
    Avx2,
    /// aarch64 Advanced SIMD.
    Neon,
    /// aarch64 Advanced SIMD with the dot product instructions (`sdot`, Armv8.2's
    /// optional `FEAT_DotProd`: Cortex-A55/A76 and later, Apple M1 and later). Float kernels
    /// are [`Isa::Neon`]'s; int8 convolutions multiply four int8 pairs per lane at once.
    NeonDot,
}

impl Isa {
    /// Every tier, fastest first.
    pub const ALL: [Isa; 4] = [Isa::Avx2, Isa::NeonDot, Isa::Neon, Isa::Generic];

    pub fn name(self) -> &'static str {
        match self {
            Isa::Generic => "generic",
            Isa::Avx2 => "avx2",
            Isa::Neon => "neon",
            Isa::NeonDot => "neon-dot",
        }
    }

    /// Whether this CPU can run the tier.
    pub fn is_available(self) -> bool {
        match self {
            Isa::Generic => true,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"),
            #[cfg(target_arch = "aarch64")]
            Isa::Neon => std::arch::is_aarch64_feature_detected!("neon"),
            #[cfg(target_arch = "aarch64")]
            Isa::NeonDot => {
                std::arch::is_aarch64_feature_detected!("neon")
                    && std::arch::is_aarch64_feature_detected!("dotprod")
            }
            #[allow(unreachable_patterns)]
            _ => false,
        }
    }

    /// The best tier this CPU runs.
    pub fn detect() -> Isa {
        Self::ALL
            .into_iter()
            .find(|i| i.is_available())
            .unwrap_or(Isa::Generic)
    }

    /// Every tier this CPU runs.
    pub fn available() -> Vec<Isa> {
        Self::ALL.into_iter().filter(|i| i.is_available()).collect()
    }

    /// The tier named by `FERROLITE_ISA`, if set. An unknown or unavailable name is an error.
    pub fn from_env() -> Result<Option<Isa>, String> {
        match std::env::var("FERROLITE_ISA") {
            Ok(v) if !v.is_empty() => v.parse::<Isa>().and_then(|i| i.require()).map(Some),
            _ => Ok(None),
        }
    }

    /// `self` if this CPU runs it, else [`Isa::Generic`]. Kernels call this on the tier they
    /// are given, so that a tier the CPU lacks can never reach a `#[target_feature]` function.
    pub fn or_generic(self) -> Isa {
        if self.is_available() {
            self
        } else {
            Isa::Generic
        }
    }

    /// The tier whose float kernels this tier runs (the dot product tier adds only integer
    /// kernels).
    pub fn float_tier(self) -> Isa {
        match self {
            Isa::NeonDot => Isa::Neon,
            other => other,
        }
    }

    /// `self` if this CPU runs it, else an error naming the tier.
    pub fn require(self) -> Result<Isa, String> {
        if self.is_available() {
            Ok(self)
        } else {
            Err(format!("this CPU cannot run the {} kernels", self.name()))
        }
    }
}

impl fmt::Display for Isa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Isa {
    type Err = String;

    fn from_str(s: &str) -> Result<Isa, String> {
        match s.to_ascii_lowercase().as_str() {
            "generic" => Ok(Isa::Generic),
            "avx2" => Ok(Isa::Avx2),
            "neon" => Ok(Isa::Neon),
            "neon-dot" => Ok(Isa::NeonDot),
            other => Err(format!(
                "unknown ISA '{other}' (expected generic, avx2, neon or neon-dot)"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for isa in Isa::ALL {
            assert_eq!(isa.name().parse::<Isa>(), Ok(isa));
        }
        assert!("sse9".parse::<Isa>().is_err());
    }

    #[test]
    fn detected_tier_is_available() {
        assert!(Isa::detect().is_available());
        assert!(Isa::Generic.is_available());
        for isa in Isa::ALL {
            assert!(isa.or_generic().is_available());
        }
    }
}
