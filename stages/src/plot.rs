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

/// A tick label: no pointless `.0`, thousands separated (`250,000`,
/// `1.5`, `0.001`, `1.2e-7`), at most 6 significant digits.
pub fn tick(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    if !v.is_finite() {
        return v.to_string();
    }
    let a = v.abs();
    if !(1e-4..1e15).contains(&a) {
        return format!("{v:.2e}").replace(".00e", "e");
    }
    let decimals = (5 - a.log10().floor() as i32).clamp(0, 10) as usize;
    let s = format!("{a:.decimals$}");
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    };
    let (int, frac) = s
        .split_once('.')
        .map_or((s.as_str(), None), |(i, f)| (i, Some(f)));
    let mut grouped = String::new();
    for (i, ch) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(ch);
    }
    let sign = if v < 0.0 { "-" } else { "" };
    match frac {
        Some(f) => format!("{sign}{grouped}.{f}"),
        None => format!("{sign}{grouped}"),
    }
}

/// Room for the y tick labels of a range (their longest text) and the
/// axis title beside them, so the two never overlap.
fn y_label_room(y0: f64, y1: f64) -> u32 {
    let widest = (0..=10)
        .map(|i| tick(y0 + (y1 - y0) * f64::from(i) / 10.0).len())
        .max()
        .unwrap_or(4) as u32;
    widest * 9 + 40
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
    if points.is_empty() {
        // No rows, no chart (an empty frame says nothing).
        return Ok(());
    }
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
            .x_label_area_size(50)
            .y_label_area_size(y_label_room(y0, y1))
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc(xlabel)
            .y_desc(ylabel)
            .x_label_formatter(&|v| tick(*v))
            .y_label_formatter(&|v| tick(*v))
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

/// `name` as part of a file name: letters, digits, `_` and `-` kept, any
/// other character `_`.
pub fn file_safe(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// A horizontal bar chart: one bar per `(label, value, spread)`, in the
/// order given (top first), with a whisker of ± `spread` when it is > 0.
pub fn bars(
    dir: &Path,
    name: &str,
    title: &str,
    xlabel: &str,
    bars: &[(String, f64, f64)],
) -> Result<(), String> {
    if bars.is_empty() {
        return Ok(());
    }
    let lo = bars.iter().map(|b| b.1 - b.2).fold(0.0f64, f64::min);
    let hi = bars.iter().map(|b| b.1 + b.2).fold(0.0f64, f64::max);
    let (x0, x1) = range([lo, hi].into_iter());
    let n = bars.len();
    let widest = bars
        .iter()
        .map(|b| b.0.chars().count())
        .max()
        .unwrap_or(4)
        .min(40) as u32;
    // Row `r` (0 at the bottom) is centred on y = r; the first bar is on top.
    let row = |i: usize| (n - 1 - i) as f64;
    both!(dir, name, |root| {
        let mut chart = ChartBuilder::on(&root)
            .caption(title, (FONT, 24))
            .margin(15)
            .x_label_area_size(50)
            .y_label_area_size(widest * 8 + 20)
            .build_cartesian_2d(x0..x1, -0.5..(n as f64 - 0.5))
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc(xlabel)
            .x_label_formatter(&|v| tick(*v))
            .y_labels(n + 1)
            .y_label_formatter(&|v| {
                let r = v.round();
                if (v - r).abs() > 1e-6 || r < 0.0 || r >= n as f64 {
                    return String::new();
                }
                bars[n - 1 - r as usize].0.chars().take(40).collect()
            })
            .disable_y_mesh()
            .label_style((FONT, 14))
            .draw()
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(bars.iter().enumerate().map(|(i, b)| {
                let (a, z) = if b.1 >= 0.0 { (0.0, b.1) } else { (b.1, 0.0) };
                Rectangle::new(
                    [(a, row(i) - 0.35), (z, row(i) + 0.35)],
                    BLUE.mix(0.6).filled(),
                )
            }))
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(
                bars.iter()
                    .enumerate()
                    .filter(|(_, b)| b.2 > 0.0)
                    .map(|(i, b)| {
                        PathElement::new(
                            vec![(b.1 - b.2, row(i)), (b.1 + b.2, row(i))],
                            BLACK.stroke_width(2),
                        )
                    }),
            )
            .map_err(|e| e.to_string())?;
    })
}

/// How [`curve_with`] draws.
#[derive(Debug, Clone, Copy, Default)]
pub struct CurveStyle {
    /// A logarithmic y axis (for a loss that falls over decades); points
    /// at or below 0 are left out.
    pub log_y: bool,
    /// A marker at every point (for few points, as a decision history).
    pub markers: bool,
}

/// A line chart of `series` (one or more named curves).
pub fn curve(
    dir: &Path,
    name: &str,
    title: &str,
    labels: (&str, &str),
    series: &[(&str, Vec<(f64, f64)>)],
) -> Result<(), String> {
    curve_with(dir, name, title, labels, series, CurveStyle::default())
}

/// [`curve`] with a [`CurveStyle`]. No chart is written when no series has
/// a point.
pub fn curve_with(
    dir: &Path,
    name: &str,
    title: &str,
    (xlabel, ylabel): (&str, &str),
    series: &[(&str, Vec<(f64, f64)>)],
    style: CurveStyle,
) -> Result<(), String> {
    let series: Vec<(&str, Vec<(f64, f64)>)> = series
        .iter()
        .map(|(l, s)| {
            let kept = s
                .iter()
                .copied()
                // A NaN or infinite point has no place on the chart (and
                // made the axis computation spin).
                .filter(|p| p.0.is_finite() && p.1.is_finite())
                .filter(|p| !style.log_y || p.1 > 0.0)
                .collect();
            (*l, kept)
        })
        .collect();
    if series.iter().all(|s| s.1.is_empty()) {
        return Ok(());
    }
    let (x0, x1) = range(
        series
            .iter()
            .flat_map(|s| s.1.iter().map(|p| p.0))
            .collect::<Vec<_>>()
            .into_iter(),
    );
    let ys: Vec<f64> = series
        .iter()
        .flat_map(|s| s.1.iter().map(|p| p.1))
        .collect();
    let colors = [BLUE, RED, GREEN, MAGENTA];
    macro_rules! draw {
        ($root:ident, $chart:ident) => {
            $chart
                .configure_mesh()
                .x_desc(xlabel)
                .y_desc(ylabel)
                .x_label_formatter(&|v| tick(*v))
                .y_label_formatter(&|v| tick(*v))
                .label_style((FONT, 14))
                .draw()
                .map_err(|e| e.to_string())?;
            for (i, (label, s)) in series.iter().enumerate() {
                let c = colors[i % colors.len()];
                $chart
                    .draw_series(LineSeries::new(s.iter().copied(), c.stroke_width(2)))
                    .map_err(|e| e.to_string())?
                    .label(*label)
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c));
                if style.markers {
                    $chart
                        .draw_series(s.iter().map(|&p| Circle::new(p, 4, c.filled())))
                        .map_err(|e| e.to_string())?;
                }
            }
            $chart
                .configure_series_labels()
                .label_font((FONT, 14))
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .draw()
                .map_err(|e| e.to_string())?;
        };
    }
    if style.log_y {
        let lo = ys.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = ys.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let (y0, y1) = (lo / 1.2, hi * 1.2);
        both!(dir, name, |root| {
            let mut chart = ChartBuilder::on(&root)
                .caption(title, (FONT, 24))
                .margin(15)
                .x_label_area_size(50)
                .y_label_area_size(y_label_room(y0, y1))
                .build_cartesian_2d(x0..x1, (y0..y1).log_scale())
                .map_err(|e| e.to_string())?;
            draw!(root, chart);
        })
    } else {
        let (y0, y1) = range(ys.into_iter());
        both!(dir, name, |root| {
            let mut chart = ChartBuilder::on(&root)
                .caption(title, (FONT, 24))
                .margin(15)
                .x_label_area_size(50)
                .y_label_area_size(y_label_room(y0, y1))
                .build_cartesian_2d(x0..x1, y0..y1)
                .map_err(|e| e.to_string())?;
            draw!(root, chart);
        })
    }
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
    let kf = k as f64;
    let widest = labels.iter().map(|l| l.chars().count()).max().unwrap_or(4) as u32;
    both!(dir, name, |root| {
        let mut chart = ChartBuilder::on(&root)
            .caption(title, (FONT, 24))
            .margin(15)
            // Room for the colour scale on the right.
            .margin_right(COLOUR_BAR_ROOM)
            .x_label_area_size(50)
            .y_label_area_size(widest * 9 + 45)
            .build_cartesian_2d(0.0..kf, 0.0..kf)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .disable_mesh()
            .x_labels(0)
            .y_labels(0)
            .x_desc("predicted")
            .y_desc("actual")
            .label_style((FONT, 14))
            .draw()
            .map_err(|e| e.to_string())?;
        // Class names at the centres of their column and row.
        use plotters::style::text_anchor::{HPos, Pos, VPos};
        for (i, label) in labels.iter().enumerate() {
            let (cx, bottom) = chart.backend_coord(&(i as f64 + 0.5, 0.0));
            root.draw(&Text::new(
                label.clone(),
                (cx, bottom + 8),
                (FONT, 14)
                    .into_font()
                    .color(&BLACK)
                    .pos(Pos::new(HPos::Center, VPos::Top)),
            ))
            .map_err(|e| e.to_string())?;
            let (left, cy) = chart.backend_coord(&(0.0, (k - 1 - i) as f64 + 0.5));
            root.draw(&Text::new(
                label.clone(),
                (left - 8, cy),
                (FONT, 14)
                    .into_font()
                    .color(&BLACK)
                    .pos(Pos::new(HPos::Right, VPos::Center)),
            ))
            .map_err(|e| e.to_string())?;
        }
        for (a, row) in m.iter().enumerate() {
            for (p, &n) in row.iter().enumerate() {
                let (x, y) = (p as f64, (k - 1 - a) as f64);
                let shade = n as f64 / max;
                let color = shade_colour(shade);
                chart
                    .draw_series(std::iter::once(Rectangle::new(
                        [(x, y), (x + 1.0, y + 1.0)],
                        color.filled(),
                    )))
                    .map_err(|e| e.to_string())?;
                let text_color = if shade > 0.6 { WHITE } else { BLACK };
                let style = (FONT, 18)
                    .into_font()
                    .color(&text_color)
                    .pos(Pos::new(HPos::Center, VPos::Center));
                root.draw(&Text::new(
                    tick(n as f64),
                    chart.backend_coord(&(x + 0.5, y + 0.5)),
                    style,
                ))
                .map_err(|e| e.to_string())?;
            }
        }
        // The colour scale: what a shade counts, from 0 to the largest cell.
        let (left, top) = chart.backend_coord(&(kf, kf));
        let (_, bottom) = chart.backend_coord(&(kf, 0.0));
        let (x0, x1) = (left + 20, left + 38);
        let steps = 64;
        for i in 0..steps {
            let y_hi = bottom - (bottom - top) * (i + 1) / steps;
            let y_lo = bottom - (bottom - top) * i / steps;
            let colour = shade_colour((i as f64 + 0.5) / steps as f64);
            root.draw(&Rectangle::new([(x0, y_hi), (x1, y_lo)], colour.filled()))
                .map_err(|e| e.to_string())?;
        }
        root.draw(&Rectangle::new(
            [(x0, top), (x1, bottom)],
            BLACK.stroke_width(1),
        ))
        .map_err(|e| e.to_string())?;
        // Counts are whole: the middle label is a whole count, placed where
        // its shade is.
        let mid = (max / 2.0).round();
        let mid_y = bottom - ((bottom - top) as f64 * mid / max).round() as i32;
        let mut marks = vec![(0.0, bottom)];
        // (With a largest count of 1 the middle would repeat an end.)
        if mid > 0.0 && mid < max {
            marks.push((mid, mid_y));
        }
        marks.push((max, top));
        for (value, y) in marks {
            root.draw(&Text::new(
                tick(value),
                (x1 + 6, y),
                (FONT, 13)
                    .into_font()
                    .color(&BLACK)
                    .pos(Pos::new(HPos::Left, VPos::Center)),
            ))
            .map_err(|e| e.to_string())?;
        }
    })
}

/// Pixels right of a heat map for its colour scale and the scale's labels.
const COLOUR_BAR_ROOM: u32 = 90;

/// The heat map's colour for a cell holding `shade` (0..=1) of the largest
/// count: white to blue.
fn shade_colour(shade: f64) -> RGBColor {
    RGBColor(
        (255.0 * (1.0 - shade * 0.8)) as u8,
        (255.0 * (1.0 - shade * 0.6)) as u8,
        255,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_read_as_a_person_writes_them() {
        for (v, t) in [
            (250_000.0, "250,000"),
            (2.0, "2"),
            (1.5, "1.5"),
            (-1234.5, "-1,234.5"),
            (0.001, "0.001"),
            (0.0, "0"),
            (1e-7, "1e-7"),
            (123_456_789.0, "123,456,789"),
        ] {
            assert_eq!(tick(v), t, "{v}");
        }
    }

    #[test]
    fn no_chart_without_data_and_a_log_axis_for_losses() {
        let dir = tempfile::tempdir().unwrap();
        curve(dir.path(), "empty", "Nothing", ("x", "y"), &[("a", vec![])]).unwrap();
        assert!(!dir.path().join("empty.svg").exists());
        let loss: Vec<(f64, f64)> = (1..50)
            .map(|i| (f64::from(i), 1e9 / f64::from(i * i)))
            .collect();
        let style = CurveStyle {
            log_y: true,
            markers: true,
        };
        curve_with(
            dir.path(),
            "loss",
            "Loss",
            ("epoch", "loss"),
            &[("train", loss)],
            style,
        )
        .unwrap();
        let svg = std::fs::read_to_string(dir.path().join("loss.svg")).unwrap();
        assert!(!svg.contains(".0<"), "pointless .0 in a tick");
    }

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

    /// The confusion matrix has a colour scale from 0 to its largest cell,
    /// so a shade can be read as a count.
    #[test]
    fn the_confusion_matrix_has_a_colour_scale() {
        let dir = tempfile::tempdir().unwrap();
        heatmap(
            dir.path(),
            "cm",
            "Confusion",
            &["no".into(), "yes".into()],
            &[vec![1200, 5], vec![3, 900]],
        )
        .unwrap();
        let svg = std::fs::read_to_string(dir.path().join("cm.svg")).unwrap();
        // 600 is in no cell: only the scale's middle label says it.
        let texts: Vec<&str> = svg
            .split("</text>")
            .filter_map(|t| t.rsplit_once('>').map(|(_, x)| x.trim()))
            .collect();
        assert!(texts.contains(&"600"), "{texts:?}");
        assert!(texts.contains(&"0"), "{texts:?}");
        let top = texts.iter().filter(|t| **t == "1,200").count();
        assert_eq!(top, 2, "the cell and the scale's top: {texts:?}");
    }
}
