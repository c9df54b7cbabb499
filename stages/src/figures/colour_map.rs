//! matplotlib's sequential colour maps (ColorBrewer's, as matplotlib ships them: nine stops,
//! light to dark), one table each, and the colour at a value.

use plotters::style::RGBColor;

/// A sequential colour map: nine stops, light to dark.
pub struct ColourMap([(u8, u8, u8); 9]);

pub const GREYS: ColourMap = ColourMap([
    (255, 255, 255),
    (240, 240, 240),
    (217, 217, 217),
    (189, 189, 189),
    (150, 150, 150),
    (115, 115, 115),
    (82, 82, 82),
    (37, 37, 37),
    (0, 0, 0),
]);

pub const BLUES: ColourMap = ColourMap([
    (247, 251, 255),
    (222, 235, 247),
    (198, 219, 239),
    (158, 202, 225),
    (107, 174, 214),
    (66, 146, 198),
    (33, 113, 181),
    (8, 81, 156),
    (8, 48, 107),
]);

pub const ORANGES: ColourMap = ColourMap([
    (255, 245, 235),
    (254, 230, 206),
    (253, 208, 162),
    (253, 174, 107),
    (253, 141, 60),
    (241, 105, 19),
    (217, 72, 1),
    (166, 54, 3),
    (127, 39, 4),
]);

pub const REDS: ColourMap = ColourMap([
    (255, 245, 240),
    (254, 224, 210),
    (252, 187, 161),
    (252, 146, 114),
    (251, 106, 74),
    (239, 59, 44),
    (203, 24, 29),
    (165, 15, 21),
    (103, 0, 13),
]);

pub const PURPLES: ColourMap = ColourMap([
    (252, 251, 253),
    (239, 237, 245),
    (218, 218, 235),
    (188, 189, 220),
    (158, 154, 200),
    (128, 125, 186),
    (106, 81, 163),
    (84, 39, 143),
    (63, 0, 125),
]);

pub const GREENS: ColourMap = ColourMap([
    (247, 252, 245),
    (229, 245, 224),
    (199, 233, 192),
    (161, 217, 155),
    (116, 196, 118),
    (65, 171, 93),
    (35, 139, 69),
    (0, 109, 44),
    (0, 68, 27),
]);

impl ColourMap {
    /// The colour at `v` in [0, 1] (0 when `v` is not finite), linear between `stops` evenly
    /// spaced stops of the nine: 9 is matplotlib's own map; 5 and 3 (every second or fourth
    /// stop) are coarser, and are what our figures were first drawn with, so they keep them:
    /// their PNG bytes are part of the stages' output digests.
    pub fn at(&self, v: f64, stops: usize) -> RGBColor {
        debug_assert!(matches!(stops, 3 | 5 | 9), "{stops} stops");
        let every = (self.0.len() - 1) / (stops - 1);
        let v = if v.is_finite() {
            v.clamp(0.0, 1.0)
        } else {
            0.0
        };
        let t = v * (stops - 1) as f64;
        let i = (t.floor() as usize).min(stops - 2);
        let f = t - i as f64;
        let mix = |a: u8, b: u8| (a as f64 + (b as f64 - a as f64) * f).round() as u8;
        let (a, b) = (self.0[i * every], self.0[(i + 1) * every]);
        RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stops_are_hit_exactly_and_halfway_is_the_mean() {
        assert_eq!(BLUES.at(0.0, 9), RGBColor(247, 251, 255));
        assert_eq!(BLUES.at(0.125, 9), RGBColor(222, 235, 247));
        assert_eq!(BLUES.at(0.5, 3), RGBColor(107, 174, 214));
        assert_eq!(BLUES.at(0.25, 5), RGBColor(198, 219, 239));
        assert_eq!(BLUES.at(1.0, 5), RGBColor(8, 48, 107));
        // Halfway between stops 0 and 4 of Greys: (255 + 150) / 2 = 202.5, rounded up.
        assert_eq!(GREYS.at(0.25, 3), RGBColor(203, 203, 203));
        assert_eq!(REDS.at(f64::INFINITY, 3), REDS.at(0.0, 3));
    }
}
