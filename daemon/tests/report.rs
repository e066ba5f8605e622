//! Reports people look at: `bench fvc --report`, `bench compare` and `extract --show`, run
//! through the real binary on the project's synthetic fixtures.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use test_support::{paths, process};

fn idcardd(args: &[&str]) -> std::process::Output {
    let out = process::run(env!("CARGO_BIN_EXE_idcardd"), args);
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("panicked"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn ok(args: &[&str]) -> String {
    let out = idcardd(args);
    assert!(
        out.status.success(),
        "idcardd {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Whether the font the plots use is installed (scripts/setup.sh installs fonts-dejavu-core).
fn font_installed() -> bool {
    let found = Path::new("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf").exists()
        || std::env::var_os("IDCARDD_FONT").is_some();
    if !found {
        eprintln!("SKIP text checks: no DejaVuSans.ttf (install fonts-dejavu-core)");
    }
    found
}

/// One `bench fvc --report` run on the fixtures shared by the tests (it takes a while).
struct Run {
    _dir: tempfile::TempDir,
    report: PathBuf,
    /// A second run of the same set with compact card templates, for `bench compare`.
    compact: PathBuf,
}

fn run() -> &'static Run {
    static RUN: OnceLock<Run> = OnceLock::new();
    RUN.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let report = dir.path().join("plain");
        let compact = dir.path().join("compact");
        let fx = paths::fingerprints();
        let fx = fx.to_str().unwrap();
        ok(&[
            "bench",
            "fvc",
            fx,
            "--timing-seconds",
            "0.05",
            "--label",
            "fixtures",
            "--report",
            report.to_str().unwrap(),
        ]);
        ok(&[
            "bench",
            "fvc",
            fx,
            "--timing-seconds",
            "0.05",
            "--card-format",
            "compact",
            "--label",
            "fixtures compact",
            "--report",
            compact.to_str().unwrap(),
        ]);
        Run {
            _dir: dir,
            report,
            compact,
        }
    })
}

#[test]
fn bench_report_writes_every_file() {
    let dir = &run().report;
    for (png, min_w, min_h) in [
        ("det.png", 800, 600),
        ("histogram.png", 800, 600),
        ("worst-genuine-1.png", 600, 480),
        ("worst-impostor-1.png", 600, 480),
    ] {
        let image = png::read(&dir.join(png));
        assert!(image.width >= min_w && image.height >= min_h, "{png}");
        assert!(image.distinct_colours() > 20, "{png} looks blank");
    }
    // The DET plot carries both series in their palette colours.
    let det = png::read(&dir.join("det.png"));
    assert!(
        det.count(|p| p == [0, 114, 178]) > 200,
        "first series missing"
    );
    assert!(
        det.count(|p| p == [213, 94, 0]) > 200,
        "second series missing"
    );
    // Thumbnails show red endings and blue bifurcations.
    let thumb = png::read(&dir.join("worst-genuine-1.png"));
    assert!(thumb.count(|p| p == [230, 20, 20]) > 100);
    assert!(thumb.count(|p| p == [0, 90, 255]) > 100);

    for svg in ["det.svg", "histogram.svg"] {
        let text = std::fs::read_to_string(dir.join(svg)).unwrap();
        assert!(text.trim_start().starts_with("<svg"), "{svg}");
        assert!(text.trim_end().ends_with("</svg>"), "{svg}");
        assert_eq!(
            text.matches("<svg").count(),
            text.matches("</svg>").count(),
            "{svg}"
        );
        if font_installed() {
            let labels: &[&str] = if svg == "det.svg" {
                &[
                    "False match rate (FMR)",
                    "False non-match rate (FNMR)",
                    "fixtures: extended impostors",
                ]
            } else {
                &[
                    "Comparison score",
                    "Share of pairs per bin",
                    "genuine pairs",
                ]
            };
            for label in labels {
                assert!(text.contains(label), "{svg} lacks {label:?}");
            }
        }
    }

    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).unwrap()).unwrap();
    for key in [
        "schema",
        "label",
        "version",
        "dir",
        "dpi",
        "source",
        "card_format",
        "figures",
        "det",
        "histogram",
        "stage_timing",
        "worst_genuine",
        "worst_impostor",
        "images",
    ] {
        assert!(json.get(key).is_some(), "report.json lacks {key}");
    }
    for key in [
        "set",
        "images",
        "failures_to_enrol",
        "extract_ms",
        "minutiae_mean",
        "compare_per_s",
        "compare_with_prep_per_s",
        "genuine_pairs",
        "fvc_impostor_pairs",
        "extended_impostor_pairs",
        "fvc",
        "extended",
    ] {
        assert!(json["figures"].get(key).is_some(), "figures lack {key}");
    }
    assert_eq!(json["schema"], "idcardd-bench-report/1");
    // The fixture set is F fingers x I impressions: F x I(I-1)/2 genuine pairs, every other
    // pair is cross-finger.
    let (fingers, impressions) = fixture_shape();
    let images = fingers * impressions;
    assert_eq!(json["figures"]["images"], images);
    let expected_genuine = fingers * impressions * (impressions - 1) / 2;
    let expected_impostor = images * (images - 1) / 2 - expected_genuine;
    let genuine: u64 = json["histogram"]["genuine"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_u64().unwrap())
        .sum();
    let impostor: u64 = json["histogram"]["impostor"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_u64().unwrap())
        .sum();
    assert_eq!((genuine, impostor), (expected_genuine, expected_impostor));
    let det = json["det"]["extended"].as_array().unwrap();
    assert_eq!(det.first().unwrap()["fmr"], 1.0);
    assert_eq!(det.first().unwrap()["fnmr"], 0.0);
    assert_eq!(det.last().unwrap()["fmr"], 0.0);
    assert_eq!(det.last().unwrap()["fnmr"], 1.0);
    let stages: Vec<&str> = json["stage_timing"]["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["stage"].as_str().unwrap())
        .collect();
    let mut expected: Vec<&str> = matcher::transparency::STAGES.to_vec();
    expected.push("total");
    assert_eq!(stages, expected);
    assert_eq!(json["stage_timing"]["images"], images);
    for s in json["stage_timing"]["stages"].as_array().unwrap() {
        let (median, p95) = (
            s["median_ms"].as_f64().unwrap(),
            s["p95_ms"].as_f64().unwrap(),
        );
        assert!(median >= 0.0 && p95 >= median, "{s}");
    }
    let worst_genuine = json["worst_genuine"].as_array().unwrap();
    assert_eq!(worst_genuine.len(), 3);
    let scores: Vec<f64> = worst_genuine
        .iter()
        .map(|p| p["score"].as_f64().unwrap())
        .collect();
    assert!(scores.windows(2).all(|w| w[0] <= w[1]), "{scores:?}");
    let worst_impostor = json["worst_impostor"].as_array().unwrap();
    let scores: Vec<f64> = worst_impostor
        .iter()
        .map(|p| p["score"].as_f64().unwrap())
        .collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{scores:?}");

    let html = std::fs::read_to_string(dir.join("index.html")).unwrap();
    let mut images: Vec<String> = json["images"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    for pair in worst_genuine.iter().chain(worst_impostor) {
        images.push(pair["image"].as_str().expect("thumbnail drawn").to_string());
    }
    assert_eq!(images.len(), 10);
    for image in &images {
        assert!(dir.join(image).is_file(), "{image} missing");
        assert!(
            html.contains(&format!("\"{image}\"")),
            "index.html lacks {image}"
        );
    }
    assert!(html.contains("report.json"));
    assert!(html.contains("Extraction time per stage") && html.contains("enhancement"));
}

#[test]
fn bench_compare_overlays_named_series() {
    let run = run();
    let out = tempfile::tempdir().unwrap();
    let a = run.report.join("report.json");
    let b = run.compact.join("report.json");
    let stdout = ok(&[
        "bench",
        "compare",
        a.to_str().unwrap(),
        b.to_str().unwrap(),
        "--out",
        out.path().to_str().unwrap(),
    ]);
    assert!(stdout.contains("2 series"), "{stdout}");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("compare.json")).unwrap())
            .unwrap();
    assert_eq!(
        json["series"],
        serde_json::json!(["fixtures", "fixtures compact"])
    );
    let det = png::read(&out.path().join("det.png"));
    assert!(
        det.count(|p| p == [0, 114, 178]) > 200,
        "first series missing"
    );
    assert!(
        det.count(|p| p == [213, 94, 0]) > 200,
        "second series missing"
    );
    let svg = std::fs::read_to_string(out.path().join("det.svg")).unwrap();
    if font_installed() {
        assert!(
            svg.contains("\nfixtures (EER"),
            "legend lacks the first run"
        );
        assert!(
            svg.contains("\nfixtures compact (EER"),
            "legend lacks the second run"
        );
    }
    let html = std::fs::read_to_string(out.path().join("index.html")).unwrap();
    assert!(html.contains("\"det.png\"") && html.contains("fixtures compact"));

    // The same report twice still gives two distinguishable series.
    let twice = tempfile::tempdir().unwrap();
    ok(&[
        "bench",
        "compare",
        a.to_str().unwrap(),
        a.to_str().unwrap(),
        "--out",
        twice.path().to_str().unwrap(),
    ]);
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(twice.path().join("compare.json")).unwrap())
            .unwrap();
    let names = json["series"].as_array().unwrap();
    assert_ne!(names[0], names[1]);
}

#[test]
fn bench_compare_refuses_what_is_not_a_report() {
    let dir = tempfile::tempdir().unwrap();
    let bogus = dir.path().join("bogus.json");
    std::fs::write(&bogus, "{\"set\": 1}").unwrap();
    let truncated = dir.path().join("truncated.json");
    std::fs::write(&truncated, "{\"schema\": \"idcardd-bench-report/1\"").unwrap();
    for bad in [&bogus, &truncated, &dir.path().join("absent.json")] {
        let out = idcardd(&[
            "bench",
            "compare",
            bad.to_str().unwrap(),
            bad.to_str().unwrap(),
            "--out",
            dir.path().join("out").to_str().unwrap(),
        ]);
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(bad.file_name().unwrap().to_str().unwrap()),
            "{err}"
        );
    }
}

#[test]
fn extract_show_draws_what_the_extractor_saw() {
    let dir = tempfile::tempdir().unwrap();
    let scan = paths::fingerprints().join("1_1.png");
    let overlay = dir.path().join("overlay.png");
    let fp = dir.path().join("fp.json");
    ok(&[
        "extract",
        scan.to_str().unwrap(),
        "--show",
        overlay.to_str().unwrap(),
        "--out",
        fp.to_str().unwrap(),
    ]);
    let image = png::read(&overlay);
    assert_eq!((image.width, image.height), (288, 384), "the scan's size");
    let fp: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&fp).unwrap()).unwrap();
    let minutiae = fp["minutiae"].as_array().unwrap();
    assert!(minutiae.len() > 10);
    let (red, blue) = ([230u8, 20, 20], [0u8, 90, 255]);
    for m in minutiae {
        let (x, y) = (m["x"].as_f64().unwrap(), m["y"].as_f64().unwrap());
        let want = if m["kind"] == "ending" { red } else { blue };
        // The circle (radius 5 at this size) passes within 6 px of the minutia.
        let mut found = false;
        for dy in -6i64..=6 {
            for dx in -6i64..=6 {
                let (px, py) = (x.round() as i64 + dx, y.round() as i64 + dy);
                if image.get(px, py) == Some(want) {
                    found = true;
                }
            }
        }
        assert!(found, "no mark of colour {want:?} at minutia ({x}, {y})");
    }
    // Orientation segments (amber) and a tinted background (blue outweighs red) are drawn too.
    assert!(
        image.count(|p| p == [255, 170, 0]) > 300,
        "no orientation field"
    );
    let corner = image.get(1, 1).unwrap();
    assert!(
        corner[2] > corner[0] + 40,
        "background not tinted: {corner:?}"
    );
    // The scan is still there: the fingerprint's pixels stay gray (it covers about a third).
    let gray = image.count(|p| p[0] == p[1] && p[1] == p[2]);
    assert!(gray > image.width * image.height / 5, "{gray} gray pixels");

    // The old stage dump moved to --stages.
    let stages = dir.path().join("stages");
    ok(&[
        "extract",
        scan.to_str().unwrap(),
        "--stages",
        stages.to_str().unwrap(),
    ]);
    assert!(stages.join("skeleton.png").is_file());
}

#[test]
fn extract_show_on_an_unusable_scan_fails_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    // A flat gray image: no ridges, extraction must refuse it, and still draw what it saw.
    let flat = dir.path().join("flat.png");
    png::write_gray(&flat, 200, 200, 128);
    let overlay = dir.path().join("overlay.png");
    let out = idcardd(&[
        "extract",
        flat.to_str().unwrap(),
        "--show",
        overlay.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("flat.png"), "{err}");
    let image = png::read(&overlay);
    assert_eq!((image.width, image.height), (200, 200));
}

/// A small PNG reader and writer (8-bit gray, RGB and RGBA, no interlacing), enough to check
/// the reports' pictures without an image crate.
mod png {
    use std::path::Path;

    pub struct Image {
        pub width: usize,
        pub height: usize,
        /// RGB, row-major.
        pub rgb: Vec<[u8; 3]>,
    }

    impl Image {
        pub fn get(&self, x: i64, y: i64) -> Option<[u8; 3]> {
            if x < 0 || y < 0 || x as usize >= self.width || y as usize >= self.height {
                return None;
            }
            Some(self.rgb[y as usize * self.width + x as usize])
        }
        pub fn count(&self, f: impl Fn([u8; 3]) -> bool) -> usize {
            self.rgb.iter().filter(|&&p| f(p)).count()
        }
        pub fn distinct_colours(&self) -> usize {
            let mut v = self.rgb.clone();
            v.sort();
            v.dedup();
            v.len()
        }
    }

    pub fn read(path: &Path) -> Image {
        let bytes =
            std::fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        assert_eq!(
            &bytes[..8],
            b"\x89PNG\r\n\x1a\n",
            "{} is not a PNG",
            path.display()
        );
        let mut pos = 8;
        let (mut width, mut height, mut colour_type) = (0usize, 0usize, 0u8);
        let mut data = Vec::new();
        while pos + 8 <= bytes.len() {
            let len = u32::from_be_bytes(bytes[pos..pos + 4].try_into().unwrap()) as usize;
            let kind = &bytes[pos + 4..pos + 8];
            let body = &bytes[pos + 8..pos + 8 + len];
            match kind {
                b"IHDR" => {
                    width = u32::from_be_bytes(body[0..4].try_into().unwrap()) as usize;
                    height = u32::from_be_bytes(body[4..8].try_into().unwrap()) as usize;
                    assert_eq!(body[8], 8, "8-bit samples");
                    colour_type = body[9];
                    assert_eq!(body[12], 0, "not interlaced");
                }
                b"IDAT" => data.extend_from_slice(body),
                b"IEND" => break,
                _ => {}
            }
            pos += 12 + len;
        }
        let channels = match colour_type {
            0 => 1,
            2 => 3,
            4 => 2,
            6 => 4,
            other => panic!("colour type {other}"),
        };
        let raw = inflate::zlib(&data);
        let stride = width * channels;
        assert_eq!(raw.len(), height * (stride + 1), "{}", path.display());
        let mut pixels = vec![0u8; height * stride];
        for y in 0..height {
            let filter = raw[y * (stride + 1)];
            let line = &raw[y * (stride + 1) + 1..(y + 1) * (stride + 1)];
            for x in 0..stride {
                let a = if x >= channels {
                    pixels[y * stride + x - channels]
                } else {
                    0
                };
                let b = if y > 0 {
                    pixels[(y - 1) * stride + x]
                } else {
                    0
                };
                let c = if x >= channels && y > 0 {
                    pixels[(y - 1) * stride + x - channels]
                } else {
                    0
                };
                let predictor = match filter {
                    0 => 0,
                    1 => a,
                    2 => b,
                    3 => ((a as u16 + b as u16) / 2) as u8,
                    4 => {
                        let p = a as i16 + b as i16 - c as i16;
                        let (pa, pb, pc) = (
                            (p - a as i16).abs(),
                            (p - b as i16).abs(),
                            (p - c as i16).abs(),
                        );
                        if pa <= pb && pa <= pc {
                            a
                        } else if pb <= pc {
                            b
                        } else {
                            c
                        }
                    }
                    f => panic!("filter {f}"),
                };
                pixels[y * stride + x] = line[x].wrapping_add(predictor);
            }
        }
        let rgb = pixels
            .chunks(channels)
            .map(|p| match channels {
                1 | 2 => [p[0]; 3],
                _ => [p[0], p[1], p[2]],
            })
            .collect();
        Image { width, height, rgb }
    }

    /// Writes a uniform 8-bit gray PNG with stored (uncompressed) deflate blocks.
    pub fn write_gray(path: &Path, width: u32, height: u32, value: u8) {
        let mut raw = Vec::new();
        for _ in 0..height {
            raw.push(0u8);
            raw.extend(std::iter::repeat_n(value, width as usize));
        }
        let mut z = vec![0x78, 0x01];
        let chunks: Vec<&[u8]> = raw.chunks(65535).collect();
        for (i, c) in chunks.iter().enumerate() {
            z.push(u8::from(i + 1 == chunks.len()));
            z.extend_from_slice(&(c.len() as u16).to_le_bytes());
            z.extend_from_slice(&(!(c.len() as u16)).to_le_bytes());
            z.extend_from_slice(c);
        }
        let (mut a, mut b) = (1u32, 0u32);
        for &x in &raw {
            a = (a + x as u32) % 65521;
            b = (b + a) % 65521;
        }
        z.extend_from_slice(&((b << 16) | a).to_be_bytes());
        let mut ihdr = Vec::new();
        ihdr.extend_from_slice(&width.to_be_bytes());
        ihdr.extend_from_slice(&height.to_be_bytes());
        ihdr.extend_from_slice(&[8, 0, 0, 0, 0]);
        let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
        for (kind, body) in [(&b"IHDR"[..], &ihdr[..]), (b"IDAT", &z), (b"IEND", &[])] {
            out.extend_from_slice(&(body.len() as u32).to_be_bytes());
            let mut crc_data = kind.to_vec();
            crc_data.extend_from_slice(body);
            out.extend_from_slice(&crc_data);
            out.extend_from_slice(&crc32(&crc_data).to_be_bytes());
        }
        std::fs::write(path, out).unwrap();
    }

    fn crc32(data: &[u8]) -> u32 {
        let mut crc = 0xffff_ffffu32;
        for &b in data {
            crc ^= b as u32;
            for _ in 0..8 {
                crc = if crc & 1 != 0 {
                    (crc >> 1) ^ 0xedb8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }

    /// RFC 1950/1951 decompression (stored, fixed and dynamic Huffman blocks).
    mod inflate {
        struct Bits<'a> {
            data: &'a [u8],
            pos: usize,
            bit: u32,
        }

        impl Bits<'_> {
            fn get(&mut self, n: u32) -> u32 {
                let mut v = 0;
                for i in 0..n {
                    let byte = self.data[self.pos];
                    v |= (((byte >> self.bit) & 1) as u32) << i;
                    self.bit += 1;
                    if self.bit == 8 {
                        self.bit = 0;
                        self.pos += 1;
                    }
                }
                v
            }
        }

        /// Canonical Huffman code: counts per length and symbols in code order.
        struct Huffman {
            counts: [u16; 16],
            symbols: Vec<u16>,
        }

        impl Huffman {
            fn new(lengths: &[u8]) -> Huffman {
                let mut counts = [0u16; 16];
                for &l in lengths {
                    counts[l as usize] += 1;
                }
                counts[0] = 0;
                let mut offsets = [0u16; 16];
                for i in 1..16 {
                    offsets[i] = offsets[i - 1] + counts[i - 1];
                }
                let mut symbols = vec![0u16; lengths.len()];
                for (s, &l) in lengths.iter().enumerate() {
                    if l != 0 {
                        symbols[offsets[l as usize] as usize] = s as u16;
                        offsets[l as usize] += 1;
                    }
                }
                Huffman { counts, symbols }
            }

            fn decode(&self, bits: &mut Bits) -> u16 {
                let (mut code, mut first, mut index) = (0i32, 0i32, 0i32);
                for len in 1..16 {
                    code |= bits.get(1) as i32;
                    let count = self.counts[len] as i32;
                    if code - count < first {
                        return self.symbols[(index + code - first) as usize];
                    }
                    index += count;
                    first += count;
                    first <<= 1;
                    code <<= 1;
                }
                panic!("bad Huffman code");
            }
        }

        const LEN_BASE: [u16; 29] = [
            3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99,
            115, 131, 163, 195, 227, 258,
        ];
        const LEN_EXTRA: [u8; 29] = [
            0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0,
        ];
        const DIST_BASE: [u16; 30] = [
            1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025,
            1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577,
        ];
        const DIST_EXTRA: [u8; 30] = [
            0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12,
            12, 13, 13,
        ];

        pub fn zlib(data: &[u8]) -> Vec<u8> {
            assert_eq!(data[0] & 0x0f, 8, "deflate");
            let mut bits = Bits {
                data: &data[2..],
                pos: 0,
                bit: 0,
            };
            let mut out = Vec::new();
            loop {
                let last = bits.get(1);
                match bits.get(2) {
                    0 => {
                        if bits.bit != 0 {
                            bits.bit = 0;
                            bits.pos += 1;
                        }
                        let p = bits.pos;
                        let len = u16::from_le_bytes([bits.data[p], bits.data[p + 1]]) as usize;
                        out.extend_from_slice(&bits.data[p + 4..p + 4 + len]);
                        bits.pos = p + 4 + len;
                    }
                    1 => {
                        let mut l = [0u8; 288];
                        l[..144].fill(8);
                        l[144..256].fill(9);
                        l[256..280].fill(7);
                        l[280..].fill(8);
                        block(
                            &mut bits,
                            &mut out,
                            &Huffman::new(&l),
                            &Huffman::new(&[5; 30]),
                        );
                    }
                    2 => {
                        let hlit = bits.get(5) as usize + 257;
                        let hdist = bits.get(5) as usize + 1;
                        let hclen = bits.get(4) as usize + 4;
                        const ORDER: [usize; 19] = [
                            16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15,
                        ];
                        let mut cl = [0u8; 19];
                        for &i in ORDER.iter().take(hclen) {
                            cl[i] = bits.get(3) as u8;
                        }
                        let code = Huffman::new(&cl);
                        let mut lengths = Vec::with_capacity(hlit + hdist);
                        while lengths.len() < hlit + hdist {
                            match code.decode(&mut bits) {
                                s @ 0..=15 => lengths.push(s as u8),
                                16 => {
                                    let prev = *lengths.last().unwrap();
                                    let n = 3 + bits.get(2);
                                    lengths.extend(std::iter::repeat_n(prev, n as usize));
                                }
                                17 => {
                                    let n = 3 + bits.get(3);
                                    lengths.extend(std::iter::repeat_n(0, n as usize));
                                }
                                _ => {
                                    let n = 11 + bits.get(7);
                                    lengths.extend(std::iter::repeat_n(0, n as usize));
                                }
                            }
                        }
                        let lit = Huffman::new(&lengths[..hlit]);
                        let dist = Huffman::new(&lengths[hlit..]);
                        block(&mut bits, &mut out, &lit, &dist);
                    }
                    t => panic!("block type {t}"),
                }
                if last == 1 {
                    return out;
                }
            }
        }

        fn block(bits: &mut Bits, out: &mut Vec<u8>, lit: &Huffman, dist: &Huffman) {
            loop {
                let s = lit.decode(bits) as usize;
                if s < 256 {
                    out.push(s as u8);
                } else if s == 256 {
                    return;
                } else {
                    let s = s - 257;
                    let len = LEN_BASE[s] as usize + bits.get(LEN_EXTRA[s] as u32) as usize;
                    let d = dist.decode(bits) as usize;
                    let back = DIST_BASE[d] as usize + bits.get(DIST_EXTRA[d] as u32) as usize;
                    let start = out.len() - back;
                    for i in 0..len {
                        out.push(out[start + i]);
                    }
                }
            }
        }
    }
}

/// (fingers, impressions per finger) of the FVC-named PNG scans in fixtures/fingerprints.
fn fixture_shape() -> (u64, u64) {
    let dir = paths::fingerprints();
    let mut fingers = std::collections::BTreeMap::<String, u64>::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        if let Some(stem) = name.strip_suffix(".png") {
            let (finger, _) = stem.split_once('_').unwrap();
            *fingers.entry(finger.to_string()).or_default() += 1;
        }
    }
    let impressions = *fingers.values().next().unwrap();
    assert!(fingers.values().all(|&n| n == impressions), "{fingers:?}");
    (fingers.len() as u64, impressions)
}
