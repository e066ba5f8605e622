//! The `index.html` of a report: one page, no script, no external resource besides the report's
//! own images (referenced relative to the page, so the folder can be moved or served as is).

use crate::det::rate;
use crate::{Comparison, ReportJson, WorstPair};

/// Escapes text for HTML element content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:DejaVu Sans,Helvetica,Arial,sans-serif;margin:2em auto;\
max-width:1100px;color:#222;padding:0 1em}h1{font-size:1.6em}h2{margin-top:1.6em;\
border-bottom:1px solid #ccc}table{border-collapse:collapse;margin:.5em 0}\
td,th{border:1px solid #ccc;padding:.3em .7em;text-align:right}th{background:#f2f2f2}\
td:first-child,th:first-child{text-align:left}img{max-width:100%;border:1px solid #ddd}\
figure{margin:1em 0}figcaption{color:#555;font-size:.9em}.note{color:#555}";

fn head(title: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<h1>{}</h1>\n",
        escape(title),
        escape(title)
    )
}

fn figure(src: &str, alt: &str, caption: &str) -> String {
    format!(
        "<figure><img src=\"{}\" alt=\"{}\"><figcaption>{}</figcaption></figure>\n",
        escape(src),
        escape(alt),
        caption
    )
}

fn worst_section(title: &str, explain: &str, pairs: &[WorstPair]) -> String {
    let mut s = format!(
        "<h2>{}</h2>\n<p class=\"note\">{}</p>\n",
        escape(title),
        escape(explain)
    );
    if pairs.is_empty() {
        s += "<p class=\"note\">No such pairs in this set.</p>\n";
    }
    for p in pairs {
        let caption = format!(
            "{} vs {}: score {:.4}",
            escape(&p.probe),
            escape(&p.candidate),
            p.score
        );
        match &p.image {
            Some(img) => s += &figure(img, &caption, &caption),
            None => {
                s += &format!(
                    "<p>{caption}: no picture ({})</p>\n",
                    escape(p.note.as_deref().unwrap_or("not drawn"))
                )
            }
        }
    }
    s
}

/// The page of one `bench fvc --report` run.
pub fn fvc_page(r: &ReportJson) -> String {
    let f = &r.figures;
    let mut s = head(&format!("Fingerprint bench report: {}", r.label));
    s += &format!(
        "<p>Set <code>{}</code> ({} dpi, minutiae from {}{}), idcardd {}. {} images, {} failures \
         to enrol, {:.1} minutiae per image.</p>\n",
        escape(&r.dir),
        r.dpi,
        escape(&r.source),
        r.card_format
            .as_deref()
            .map(|c| format!(", candidates stored as {}", escape(c)))
            .unwrap_or_default(),
        escape(&r.version),
        f.images,
        f.failures_to_enrol.len(),
        f.minutiae_mean
    );
    s += "<h2>Accuracy</h2>\n<table>\n<tr><th>impostor set</th><th>genuine pairs</th>\
          <th>impostor pairs</th><th>EER</th><th>FMR100</th><th>FMR1000</th><th>ZeroFMR</th></tr>\n";
    for (name, pairs, rates) in [
        ("FVC (first impressions)", f.fvc_impostor_pairs, &f.fvc),
        (
            "extended (all cross-finger)",
            f.extended_impostor_pairs,
            &f.extended,
        ),
    ] {
        s += &format!(
            "<tr><td>{name}</td><td>{}</td><td>{pairs}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td>{}</td></tr>\n",
            f.genuine_pairs,
            rate(rates.eer),
            rate(rates.fmr100),
            rate(rates.fmr1000),
            rate(rates.zero_fmr)
        );
    }
    s += "</table>\n";
    if !f.failures_to_enrol.is_empty() {
        s += "<p>Failures to enrol:</p>\n<ul>\n";
        for fte in &f.failures_to_enrol {
            s += &format!("<li>{}</li>\n", escape(fte));
        }
        s += "</ul>\n";
    }
    s += &figure(
        &r.images.det_png,
        "DET curve",
        &format!(
            "DET curve: false non-match rate against false match rate, log scales; circles mark \
             the equal error rate. Vector version: <a href=\"{}\">{}</a>.",
            escape(&r.images.det_svg),
            escape(&r.images.det_svg)
        ),
    );
    s += &figure(
        &r.images.histogram_png,
        "Score histograms",
        &format!(
            "Genuine and impostor (extended) score distributions, each as a share of its own \
             pairs, log scale; dashed lines are the default decision thresholds. Vector version: \
             <a href=\"{}\">{}</a>.",
            escape(&r.images.histogram_svg),
            escape(&r.images.histogram_svg)
        ),
    );
    s += "<h2>Speed</h2>\n<table>\n<tr><th>figure</th><th>value</th></tr>\n";
    s += &format!(
        "<tr><td>extraction per image, median</td><td>{:.1} ms</td></tr>\n\
         <tr><td>extraction per image, p95</td><td>{:.1} ms</td></tr>\n\
         <tr><td>comparisons per second, one thread</td><td>{:.0}</td></tr>\n\
         <tr><td>comparisons per second with probe preparation</td><td>{:.0}</td></tr>\n</table>\n",
        f.extract_ms.median, f.extract_ms.p95, f.compare_per_s, f.compare_with_prep_per_s
    );
    s += "<h2>Extraction time per stage</h2>\n";
    if r.stage_timing.stages.is_empty() {
        s +=
            "<p class=\"note\">Not measured: minutiae were read from records, not extracted.</p>\n";
    } else {
        s += &format!(
            "<p class=\"note\">Each of the {} images extracted once more on one thread after \
             the run; milliseconds.</p>\n<table>\n<tr><th>stage</th><th>median</th><th>p95</th></tr>\n",
            r.stage_timing.images
        );
        for st in &r.stage_timing.stages {
            let row = format!(
                "<td>{}</td><td>{:.2}</td><td>{:.2}</td>",
                escape(&st.stage),
                st.median_ms,
                st.p95_ms
            );
            if st.stage == "total" {
                s += &format!("<tr style=\"font-weight:bold\">{row}</tr>\n");
            } else {
                s += &format!("<tr>{row}</tr>\n");
            }
        }
        s += "</table>\n";
    }
    s += &worst_section(
        "Worst genuine pairs",
        "Two impressions of the same finger with the lowest scores: what the matcher failed to \
         recognize. Red circles are ridge endings, blue bifurcations; the tick shows the direction.",
        &r.worst_genuine,
    );
    s += &worst_section(
        "Worst impostor pairs",
        "Two different fingers with the highest scores: the closest the matcher came to a false \
         match.",
        &r.worst_impostor,
    );
    s +=
        "<h2>Data</h2>\n<p>Every figure above is in <a href=\"report.json\">report.json</a>.</p>\n";
    s += "</body>\n</html>\n";
    s
}

/// The page of a `bench compare` run.
pub fn compare_page(c: &Comparison, reports: &[ReportJson]) -> String {
    let mut s = head("Fingerprint bench comparison");
    if let Some(png) = c.images.first() {
        let svg = c.images.get(1).map(String::as_str).unwrap_or(png);
        s += &figure(
            png,
            "DET curves",
            &format!(
                "DET curves with the extended impostor sets. Vector version: <a href=\"{}\">{}</a>.",
                escape(svg),
                escape(svg)
            ),
        );
    }
    s += "<table>\n<tr><th>series</th><th>report</th><th>images</th><th>EER</th><th>FMR100</th>\
          <th>FMR1000</th><th>ZeroFMR</th><th>extraction median</th><th>comparisons/s</th></tr>\n";
    for ((name, path), r) in c.series.iter().zip(&c.reports).zip(reports) {
        let f = &r.figures;
        s += &format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td>{:.1} ms</td><td>{:.0}</td></tr>\n",
            escape(name),
            escape(path),
            f.images,
            rate(f.extended.eer),
            rate(f.extended.fmr100),
            rate(f.extended.fmr1000),
            rate(f.extended.zero_fmr),
            f.extract_ms.median,
            f.compare_per_s
        );
    }
    s += "</table>\n</body>\n</html>\n";
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}
