//! The generator's own seeded PRNG (SplitMix64): the same seed gives the same numbers on every
//! machine, independent of any crate's algorithm choices.

/// SplitMix64 (Steele, Lea, Flood 2014): 64-bit state, one multiply-xorshift chain per draw.
#[derive(Debug, Clone)]
pub struct Rng {
    /// The state, advanced by the golden-ratio increment on every draw.
    state: u64,
}

impl Rng {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Rng { state: seed }
    }

    /// A generator for the `index`-th child of `seed` (fingers of a set, impressions of a finger).
    pub fn derive(seed: u64, index: u64) -> Self {
        let mut r = Rng::new(seed ^ index.wrapping_mul(0xD1B5_4A32_D192_ED03));
        let s = r.next_u64();
        Rng::new(s)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }

    /// Uniform in [lo, hi).
    pub fn range(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * self.unit()
    }

    /// Uniform integer in [0, n) (0 when n is 0).
    pub fn below(&mut self, n: u32) -> u32 {
        if n == 0 {
            return 0;
        }
        (((self.next_u64() >> 32) * u64::from(n)) >> 32) as u32
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f32) -> bool {
        self.unit() < p
    }

    /// Standard normal (Box-Muller).
    pub fn normal(&mut self) -> f32 {
        let u = self.unit().max(1e-7);
        let v = self.unit();
        (-2.0 * u.ln()).sqrt() * (std::f32::consts::TAU * v).cos()
    }
}

/// A smooth random field: a sum of a few plane waves with random direction, wavelength and
/// phase, amplitude about 1. Used for orientation perturbation, density, distortion and
/// illumination.
#[derive(Debug, Clone)]
pub struct SmoothField {
    /// (kx, ky, phase, weight) of each wave.
    waves: Vec<(f32, f32, f32, f32)>,
}

impl SmoothField {
    /// `n` waves of wavelength between `min_wavelength` and `max_wavelength` pixels.
    pub fn new(rng: &mut Rng, n: usize, min_wavelength: f32, max_wavelength: f32) -> Self {
        let w = (2.0 / n.max(1) as f32).sqrt();
        let waves = (0..n)
            .map(|_| {
                let a = rng.range(0.0, std::f32::consts::TAU);
                let k = std::f32::consts::TAU / rng.range(min_wavelength, max_wavelength);
                (
                    k * a.cos(),
                    k * a.sin(),
                    rng.range(0.0, std::f32::consts::TAU),
                    w,
                )
            })
            .collect();
        SmoothField { waves }
    }

    /// The field's value at (x, y), roughly in [-1.5, 1.5].
    pub fn at(&self, x: f32, y: f32) -> f32 {
        self.waves
            .iter()
            .map(|&(kx, ky, p, w)| w * (kx * x + ky * y + p).sin())
            .sum()
    }
}
