//! The TrueType font plotters draws text with.
//!
//! plotters' `ab_glyph` text engine knows no font of its own: one must be registered at run
//! time. [`ensure`] registers the first of [`CANDIDATES`] that exists (or the file named by
//! `IDCARDD_FONT`) under the family [`FAMILY`]; plots ask [`available`] and leave text out when
//! no font was found, rather than fail.

use std::sync::OnceLock;

use plotters::style::FontStyle;

/// Family name the plots use.
pub const FAMILY: &str = "sans-serif";

/// Fonts tried in order (Debian's fonts-dejavu-core first).
pub const CANDIDATES: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/truetype/freefont/FreeSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
];

/// Whether a font was registered (decided once per process).
static REGISTERED: OnceLock<bool> = OnceLock::new();

/// Registers a font once; returns whether text can be drawn.
pub fn ensure() -> bool {
    *REGISTERED.get_or_init(|| {
        let from_env = std::env::var_os("IDCARDD_FONT").map(std::path::PathBuf::from);
        let paths = from_env
            .into_iter()
            .chain(CANDIDATES.iter().map(std::path::PathBuf::from));
        for path in paths {
            let Ok(bytes) = std::fs::read(&path) else {
                continue;
            };
            // plotters keeps fonts for the life of the process and wants them 'static; this
            // leaks one font file, once.
            let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
            let normal = plotters::style::register_font(FAMILY, FontStyle::Normal, bytes);
            let bold = plotters::style::register_font(FAMILY, FontStyle::Bold, bytes);
            if normal.is_ok() && bold.is_ok() {
                tracing::debug!(font = %path.display(), "plot font registered");
                return true;
            }
        }
        tracing::warn!("no TrueType font found (install fonts-dejavu-core): plots without text");
        false
    })
}

/// Whether text can be drawn (registers a font on first use).
pub fn available() -> bool {
    ensure()
}
