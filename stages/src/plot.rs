//! The `plot` artifact: charts written as SVG and PNG side by side.
//!
//! Text is drawn with DejaVu Sans embedded in the binary, so plots render
//! the same on a machine without any system font.

use std::path::Path;
use std::sync::Once;

use plotters::prelude::*;

const W: u32 = 800;
const H: u32 = 600;
const FONT: &str = "sans-serif";

fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if plotters::style::register_font(FONT, FontStyle::Normal, dejavu::sans::regular()).is_err()
        {
            panic!("the embedded DejaVu Sans font does not parse");
        }
    });
}

/// Renders the same chart to `<dir>/<name>.svg` and `<dir>/<name>.png`.
macro_rules! both {
    ($dir:expr, $name:expr, |$root:ident| $body:block) => {{
        register_font();
        std::fs::create_dir_all($dir).map_err(|e| e.to_string())?;
        {
            let svg = $dir.join(format!("{}.svg", $name));
            let $root = SVGBackend::new(&svg, (W, H)).into_drawing_area();
            $root.fill(&WHITE).map_err(|e| e.to_string())?;
            $body;
            $root.present().map_err(|e| e.to_string())?;
        }
        {
            let png = $dir.join(format!("{}.png", $name));
            let $root = BitMapBackend::new(&png, (W, H)).into_drawing_area();
            $root.fill(&WHITE).map_err(|e| e.to_string())?;
            $body;
            $root.present().map_err(|e| e.to_string())?;
        }
        Ok(())
    }};
}

fn range(v: impl Iterator<Item = f64> + Clone) -> (f64, f64) {
    let lo = v.clone().fold(f64::INFINITY, f64::min);
    let hi = v.fold(f64::NEG_INFINITY, f64::max);
    if !lo.is_finite() || !hi.is_finite() {
        return (0.0, 1.0);
    }
    let pad = ((hi - lo) * 0.05).max(1e-9);
    (lo - pad, hi + pad)
}

/// The most points a scatter draws: beyond it, an evenly spaced sample (the
/// title says so), which keeps an SVG of a million rows small.
pub const MAX_POINTS: usize = 5000;

/// A scatter of `points` with optional line segments drawn over it.
pub fn scatter(
    dir: &Path,
    name: &str,
    title: &str,
    (xlabel, ylabel): (&str, &str),
    points: &[(f64, f64)],
    lines: &[(&str, Vec<(f64, f64)>)],
) -> Result<(), String> {
    let sampled: Vec<(f64, f64)>;
    let title_owned;
    let (points, title) = if points.len() > MAX_POINTS {
        let step = points.len().div_ceil(MAX_POINTS);
        sampled = points.iter().step_by(step).copied().collect();
        title_owned = format!("{title} ({} of {} rows)", sampled.len(), points.len());
        (&sampled[..], title_owned.as_str())
    } else {
        (points, title)
    };
    let xs = points
        .iter()
        .map(|p| p.0)
        .chain(lines.iter().flat_map(|l| l.1.iter().map(|p| p.0)));
    let ys = points
        .iter()
        .map(|p| p.1)
        .chain(lines.iter().flat_map(|l| l.1.iter().map(|p| p.1)));
    let (x0, x1) = range(xs.collect::<Vec<_>>().into_iter());
    let (y0, y1) = range(ys.collect::<Vec<_>>().into_iter());
    let colors = [RED, GREEN, MAGENTA, CYAN];
    both!(dir, name, |root| {
        let mut chart = ChartBuilder::on(&root)
            .caption(title, (FONT, 24))
            .margin(15)
            .x_label_area_size(45)
            .y_label_area_size(70)
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc(xlabel)
            .y_desc(ylabel)
            .label_style((FONT, 14))
            .draw()
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(
                points
                    .iter()
                    .map(|&(x, y)| Circle::new((x, y), 3, BLUE.mix(0.6).filled())),
            )
            .map_err(|e| e.to_string())?;
        for (i, (label, l)) in lines.iter().enumerate() {
            let c = colors[i % colors.len()];
            chart
                .draw_series(LineSeries::new(l.iter().copied(), c.stroke_width(2)))
                .map_err(|e| e.to_string())?
                .label(*label)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c));
        }
        if !lines.is_empty() {
            chart
                .configure_series_labels()
                .label_font((FONT, 14))
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .draw()
                .map_err(|e| e.to_string())?;
        }
    })
}

/// A line chart of `series` (one or more named curves).
pub fn curve(
    dir: &Path,
    name: &str,
    title: &str,
    (xlabel, ylabel): (&str, &str),
    series: &[(&str, Vec<(f64, f64)>)],
) -> Result<(), String> {
    let (x0, x1) = range(
        series
            .iter()
            .flat_map(|s| s.1.iter().map(|p| p.0))
            .collect::<Vec<_>>()
            .into_iter(),
    );
    let (y0, y1) = range(
        series
            .iter()
            .flat_map(|s| s.1.iter().map(|p| p.1))
            .collect::<Vec<_>>()
            .into_iter(),
    );
    let colors = [BLUE, RED, GREEN, MAGENTA];
    both!(dir, name, |root| {
        let mut chart = ChartBuilder::on(&root)
            .caption(title, (FONT, 24))
            .margin(15)
            .x_label_area_size(45)
            .y_label_area_size(80)
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc(xlabel)
            .y_desc(ylabel)
            .label_style((FONT, 14))
            .draw()
            .map_err(|e| e.to_string())?;
        for (i, (label, s)) in series.iter().enumerate() {
            let c = colors[i % colors.len()];
            chart
                .draw_series(LineSeries::new(s.iter().copied(), c.stroke_width(2)))
                .map_err(|e| e.to_string())?
                .label(*label)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c));
        }
        chart
            .configure_series_labels()
            .label_font((FONT, 14))
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(|e| e.to_string())?;
    })
}

/// A confusion-matrix heat map: `m[actual][predicted]`.
pub fn heatmap(
    dir: &Path,
    name: &str,
    title: &str,
    labels: &[String],
    m: &[Vec<u64>],
) -> Result<(), String> {
    let k = labels.len().max(1);
    let max = m.iter().flatten().copied().max().unwrap_or(1).max(1) as f64;
    both!(dir, name, |root| {
        let mut chart = ChartBuilder::on(&root)
            .caption(title, (FONT, 24))
            .margin(15)
            .x_label_area_size(50)
            .y_label_area_size(110)
            .build_cartesian_2d(0..k, 0..k)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .disable_mesh()
            .x_desc("predicted")
            .y_desc("actual")
            .x_labels(k)
            .y_labels(k)
            .x_label_formatter(&|i| labels.get(*i).cloned().unwrap_or_default())
            .y_label_formatter(&|i| {
                (k - 1)
                    .checked_sub(*i)
                    .and_then(|j| labels.get(j))
                    .cloned()
                    .unwrap_or_default()
            })
            .label_style((FONT, 13))
            .draw()
            .map_err(|e| e.to_string())?;
        for (a, row) in m.iter().enumerate() {
            for (p, &n) in row.iter().enumerate() {
                let y = k - 1 - a;
                let shade = n as f64 / max;
                let color = RGBColor(
                    (255.0 * (1.0 - shade * 0.8)) as u8,
                    (255.0 * (1.0 - shade * 0.6)) as u8,
                    255,
                );
                chart
                    .draw_series(std::iter::once(Rectangle::new(
                        [(p, y), (p + 1, y + 1)],
                        color.filled(),
                    )))
                    .map_err(|e| e.to_string())?;
                let text_color = if shade > 0.6 { WHITE } else { BLACK };
                root.draw(&Text::new(
                    n.to_string(),
                    chart.backend_coord(&(p, y + 1)),
                    (FONT, 18).into_font().color(&text_color),
                ))
                .map_err(|e| e.to_string())?;
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plots_render_svg_and_png_with_text() {
        let dir = tempfile::tempdir().unwrap();
        let pts: Vec<(f64, f64)> = (0..20).map(|i| (i as f64, 2.0 * i as f64)).collect();
        scatter(
            dir.path(),
            "fit",
            "Price by area",
            ("area", "price"),
            &pts,
            &[("fit", vec![(0.0, 0.0), (19.0, 38.0)])],
        )
        .unwrap();
        heatmap(
            dir.path(),
            "cm",
            "Confusion",
            &["a".into(), "b".into()],
            &[vec![3, 1], vec![0, 4]],
        )
        .unwrap();
        let svg = std::fs::read_to_string(dir.path().join("fit.svg")).unwrap();
        assert!(svg.contains("Price by area"), "the title is drawn as text");
        let png = std::fs::read(dir.path().join("cm.png")).unwrap();
        assert_eq!(&png[1..4], b"PNG");
    }
}
