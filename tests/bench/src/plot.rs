//! SVG figures for the Markdown reports: convergence beside the floor, reaction-latency CDFs and
//! agent memory, drawn with plotters' SVG backend (no font files: the SVG names a font family and
//! the viewer draws the text, plotters only estimates its width for the layout).
//!
//! Everything here is a pure function from report data to an SVG string; [`figures`] picks the
//! data out of a [`Report`]'s rows and [`Report::write`](crate::report::Report::write) writes
//! the files beside the Markdown.

use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::report::Report;

/// Size of every figure, in SVG pixels.
const SIZE: (u32, u32) = (760, 420);
const FONT: &str = "sans-serif";
/// orkestra's series.
const ORKESTRA: RGBColor = RGBColor(0x1f, 0x77, 0xb4);
/// The floor and second series.
const SECOND: RGBColor = RGBColor(0xff, 0x7f, 0x0e);
const AXIS_GREY: RGBColor = RGBColor(0x55, 0x55, 0x55);
const LIGHT_GREY: RGBColor = RGBColor(0xee, 0xee, 0xee);

/// One figure of a report, written as `file` beside the Markdown.
#[derive(Debug, Clone, PartialEq)]
pub struct Figure {
    /// The report section it illustrates (its image link goes under that section's table).
    pub section: String,
    /// File name, relative to the Markdown file.
    pub file: String,
    /// The image's alternative text.
    pub alt: String,
    /// The SVG document.
    pub svg: String,
}

/// Convergence of one size: orkestra's time and the floor's.
#[derive(Debug, Clone, PartialEq)]
pub struct Convergence {
    /// Number of CRs.
    pub n: u64,
    /// Create → all Ready, seconds.
    pub seconds: f64,
    /// The floor's time for the same work, seconds.
    pub floor_seconds: f64,
}

/// One set of latency samples (one CDF line).
#[derive(Debug, Clone, PartialEq)]
pub struct Latencies {
    /// Legend text.
    pub label: String,
    /// Samples in milliseconds, any order.
    pub samples_ms: Vec<f64>,
}

/// One memory bar.
#[derive(Debug, Clone, PartialEq)]
pub struct Memory {
    /// Category under the bar (`idle`, `1,000 CRs`).
    pub label: String,
    /// VmRSS in KiB.
    pub kib: u64,
}

/// The figures a report's rows have data for, each named `{name}-{what}.svg`.
pub fn figures(report: &Report, name: &str) -> Result<Vec<Figure>> {
    let conv = convergence_data(report);
    let lat = latency_data(report);
    let mem = memory_data(report);
    let drawn = [
        (
            "Convergence",
            "convergence",
            "Convergence time by N, orkestra beside the floor",
            (!conv.is_empty()).then(|| convergence_svg(&conv)),
        ),
        (
            "Reaction",
            "reaction",
            "Reaction latency, cumulative distribution",
            (!lat.is_empty()).then(|| latency_svg(&lat)),
        ),
        (
            "Memory",
            "memory",
            "Agent RSS",
            (!mem.is_empty()).then(|| memory_svg(&mem)),
        ),
    ];
    let mut out = Vec::new();
    for (section, what, alt, svg) in drawn {
        if let Some(svg) = svg {
            out.push(Figure {
                section: section.into(),
                file: format!("{name}-{what}.svg"),
                alt: alt.into(),
                svg: svg?,
            });
        }
    }
    Ok(out)
}

/// Convergence rows that have both figures (a run that timed out has none).
pub fn convergence_data(report: &Report) -> Vec<Convergence> {
    report
        .rows
        .iter()
        .filter(|r| r.section == "Convergence")
        .filter_map(|r| {
            Some(Convergence {
                n: r.data.get("n")?.as_u64()?,
                seconds: r.data.get("seconds")?.as_f64()?,
                floor_seconds: r.data.get("floor_seconds")?.as_f64()?,
            })
        })
        .collect()
}

/// Reaction rows with their samples; the legend is the row's `label`, else its metric.
pub fn latency_data(report: &Report) -> Vec<Latencies> {
    report
        .rows
        .iter()
        .filter(|r| r.section == "Reaction")
        .filter_map(|r| {
            let samples_ms: Vec<f64> = r
                .data
                .get("samples_ms")?
                .as_array()?
                .iter()
                .filter_map(Value::as_f64)
                .collect();
            (!samples_ms.is_empty()).then(|| Latencies {
                label: label_of(&r.data, &r.metric),
                samples_ms,
            })
        })
        .collect()
}

/// Memory rows in report order; the category is the row's `label`, else its metric.
pub fn memory_data(report: &Report) -> Vec<Memory> {
    report
        .rows
        .iter()
        .filter(|r| r.section == "Memory")
        .filter_map(|r| {
            Some(Memory {
                label: label_of(&r.data, &r.metric),
                kib: r.data.get("kib")?.as_u64()?,
            })
        })
        .collect()
}

fn label_of(data: &Value, metric: &str) -> String {
    data.get("label")
        .and_then(Value::as_str)
        .unwrap_or(metric)
        .to_string()
}

/// Grouped bars: one group per N, orkestra beside the floor, each bar labelled in seconds.
pub fn convergence_svg(points: &[Convergence]) -> Result<String> {
    let groups: Vec<String> = points
        .iter()
        .map(|p| format!("N={}", thousands(p.n)))
        .collect();
    let series = [
        Bars {
            label: "orkestra",
            color: ORKESTRA,
            values: points.iter().map(|p| p.seconds).collect(),
        },
        Bars {
            label: "floor (minimal client)",
            color: SECOND,
            values: points.iter().map(|p| p.floor_seconds).collect(),
        },
    ];
    bar_chart(
        "Convergence: create → all Ready",
        "seconds",
        "CRs created",
        &groups,
        &series,
        |v| format!("{v:.2} s"),
    )
}

/// Agent RSS bars, labelled in MiB.
pub fn memory_svg(bars: &[Memory]) -> Result<String> {
    let groups: Vec<String> = bars.iter().map(|b| b.label.clone()).collect();
    let series = [Bars {
        label: "agent VmRSS",
        color: ORKESTRA,
        values: bars.iter().map(|b| b.kib as f64 / 1024.0).collect(),
    }];
    bar_chart(
        "Agent memory (VmRSS)",
        "RSS (MiB)",
        "",
        &groups,
        &series,
        |v| format!("{v:.1} MiB"),
    )
}

/// One CDF line per set: the share of samples at or below each latency, with p50/p99/max in the
/// legend.
pub fn latency_svg(sets: &[Latencies]) -> Result<String> {
    let sorted: Vec<(String, Vec<f64>)> = sets
        .iter()
        .map(|s| {
            let mut v: Vec<f64> = s
                .samples_ms
                .iter()
                .copied()
                .filter(|x| x.is_finite())
                .collect();
            v.sort_by(f64::total_cmp);
            (s.label.clone(), v)
        })
        .filter(|(_, v)| !v.is_empty())
        .collect();
    let max = sorted
        .iter()
        .filter_map(|(_, v)| v.last().copied())
        .fold(0.0_f64, f64::max);
    let p99 = sorted
        .iter()
        .map(|(_, v)| rank(v, 99.0))
        .fold(0.0_f64, f64::max);
    // A few stragglers far out would squeeze every line against the y axis: past 3x the
    // largest p99 the axis stops a little after that p99, the lines run into its right edge,
    // and the caption and the legend's max say so.
    let cut = max > 3.0 * p99;
    let x_max = if cut {
        nice_ceiling((1.25 * p99).max(1.0))
    } else {
        nice_ceiling(max.max(1.0))
    };
    let caption = if cut {
        format!("Reaction latency (one CR at a time; axis cut at {x_max} ms)")
    } else {
        "Reaction latency (one CR at a time)".to_string()
    };
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(caption, (FONT, 20))
            .margin(14)
            .x_label_area_size(44)
            .y_label_area_size(56)
            .build_cartesian_2d(0.0..x_max, 0.0..100.0)
            .map_err(plot_err)?;
        chart
            .configure_mesh()
            .x_desc("latency (ms)")
            .y_desc("% of CRs at or below")
            .axis_desc_style((FONT, 14))
            .label_style((FONT, 12))
            .light_line_style(LIGHT_GREY)
            .max_light_lines(1)
            .x_label_formatter(&|v| short_number(*v))
            .y_label_formatter(&|v| format!("{}%", short_number(*v)))
            .draw()
            .map_err(plot_err)?;
        for (i, (label, v)) in sorted.iter().enumerate() {
            let color = if i == 0 { ORKESTRA } else { SECOND };
            let n = v.len() as f64;
            // A step line: at each sample the share jumps from i/n to (i+1)/n.
            let mut points = vec![(0.0, 0.0)];
            for (k, x) in v.iter().enumerate() {
                let x = x.min(x_max);
                points.push((x, 100.0 * k as f64 / n));
                points.push((x, 100.0 * (k + 1) as f64 / n));
            }
            let legend = format!(
                "{label}: p50 {} ms, p99 {} ms, max {} ms (n={})",
                one_decimal(rank(v, 50.0)),
                one_decimal(rank(v, 99.0)),
                one_decimal(v[v.len() - 1]),
                v.len()
            );
            chart
                .draw_series(LineSeries::new(points, color.stroke_width(2)))
                .map_err(plot_err)?
                .label(legend)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
                });
        }
        legend(&mut chart, SeriesLabelPosition::LowerRight)?;
        root.present().map_err(plot_err)?;
    }
    Ok(svg)
}

/// One bar series of a bar chart.
struct Bars {
    label: &'static str,
    color: RGBColor,
    values: Vec<f64>,
}

/// Bars grouped by category, series side by side within a group, each bar's value written
/// above it.
fn bar_chart(
    title: &str,
    y_desc: &str,
    x_desc: &str,
    groups: &[String],
    series: &[Bars],
    value_text: impl Fn(f64) -> String,
) -> Result<String> {
    let k = groups.len().max(1);
    let y_max = series
        .iter()
        .flat_map(|s| s.values.iter().copied())
        .filter(|v| v.is_finite())
        .fold(0.0_f64, f64::max);
    // Headroom for the value labels above the tallest bar.
    let y_top = nice_ceiling((y_max * 1.15).max(f64::MIN_POSITIVE));
    let bar_w = 0.7 / series.len().max(1) as f64;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, (FONT, 20))
            .margin(14)
            .x_label_area_size(if x_desc.is_empty() { 30 } else { 48 })
            .y_label_area_size(60)
            .build_cartesian_2d(0.0..k as f64, 0.0..y_top)
            .map_err(plot_err)?;
        let mut mesh = chart.configure_mesh();
        // The group names are drawn below the axis by hand, at the group centres: plotters'
        // own x labels sit on "nice" numbers, not on categories.
        mesh.disable_x_mesh()
            .x_labels(0)
            .y_desc(y_desc)
            .axis_desc_style((FONT, 14))
            .label_style((FONT, 13))
            .light_line_style(LIGHT_GREY)
            .max_light_lines(1)
            .y_label_formatter(&|v| short_number(*v));
        if !x_desc.is_empty() {
            mesh.x_desc(x_desc);
        }
        mesh.draw().map_err(plot_err)?;
        let group_style = TextStyle::from((FONT, 13).into_font())
            .color(&BLACK)
            .pos(Pos::new(HPos::Center, VPos::Top));
        chart
            .draw_series(groups.iter().enumerate().map(|(i, g)| {
                EmptyElement::at((i as f64 + 0.5, 0.0))
                    + Text::new(g.clone(), (0, 6), group_style.clone())
            }))
            .map_err(plot_err)?;
        let value_style = TextStyle::from((FONT, 12).into_font())
            .color(&BLACK)
            .pos(Pos::new(HPos::Center, VPos::Bottom));
        for (j, s) in series.iter().enumerate() {
            let x_of = |i: usize| i as f64 + 0.15 + j as f64 * bar_w;
            let bars: Vec<(f64, f64)> = s
                .values
                .iter()
                .enumerate()
                .filter(|(_, v)| v.is_finite())
                .map(|(i, v)| (x_of(i), *v))
                .collect();
            let color = s.color;
            chart
                .draw_series(
                    bars.iter()
                        .map(|(x, v)| Rectangle::new([(*x, 0.0), (x + bar_w, *v)], color.filled())),
                )
                .map_err(plot_err)?
                .label(s.label)
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 12, y + 5)], color.filled())
                });
            chart
                .draw_series(bars.iter().map(|(x, v)| {
                    Text::new(value_text(*v), (x + bar_w / 2.0, *v), value_style.clone())
                }))
                .map_err(plot_err)?;
        }
        // One series explains itself through the title and the y axis.
        if series.len() > 1 {
            legend(&mut chart, SeriesLabelPosition::UpperLeft)?;
        }
        root.present().map_err(plot_err)?;
    }
    Ok(svg)
}

/// The series' legend, boxed, at `position`.
fn legend<'a, 'b: 'a>(
    chart: &mut ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>,
    position: SeriesLabelPosition,
) -> Result<()> {
    chart
        .configure_series_labels()
        .position(position)
        .label_font((FONT, 13))
        .background_style(WHITE.mix(0.9))
        .border_style(AXIS_GREY)
        .draw()
        .map_err(plot_err)
}

fn plot_err(e: impl std::fmt::Display) -> Error {
    Error::msg(format!("drawing a figure: {e}"))
}

/// The p-th percentile by nearest rank of sorted samples.
fn rank(sorted: &[f64], p: f64) -> f64 {
    let r = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[r.clamp(1, sorted.len()) - 1]
}

/// An axis label without float noise or trailing zeros: 2.5, 10, 0.3.
fn short_number(v: f64) -> String {
    let s = format!("{v:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn one_decimal(v: f64) -> String {
    format!("{:.1}", (v * 10.0).round() / 10.0)
}

/// The smallest 1, 2, 2.5 or 5 times a power of ten at or above `v` (axis tops).
fn nice_ceiling(v: f64) -> f64 {
    let p = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * p)
        .find(|c| *c >= v)
        .unwrap_or(10.0 * p)
}

/// 10000 as "10,000".
pub fn thousands(n: u64) -> String {
    let digits: Vec<char> = n.to_string().chars().collect();
    digits
        .rchunks(3)
        .rev()
        .map(|c| c.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::rng::Rng;

    /// A report shaped like a real run's: rows in the order the harness adds them (memory
    /// sampled between convergence sizes), a timed-out size without figures, and the rows that
    /// have no figure (writes, AWS calls).
    fn sample_report() -> Report {
        let mut r = Report::default();
        r.add(
            "Memory",
            "agent RSS, idle (no Katalog)",
            "15.4 MiB",
            "",
            "VmRSS",
            json!({"kib": 15_770, "label": "idle"}),
        );
        r.add(
            "Memory",
            "agent RSS, 15 CRD entries (no CRs)",
            "20.8 MiB",
            "",
            "",
            json!({"kib": 21_300, "label": "15 CRD entries"}),
        );
        for (n, s, f) in [(100u64, 4.21, 2.87), (1000, 31.52, 22.04)] {
            r.add(
                "Convergence",
                &format!("N={n}: create → all Ready"),
                format!("{s}s"),
                format!("{f}s"),
                "",
                json!({"n": n, "seconds": s, "floor_seconds": f, "floor_concurrency": 32}),
            );
            r.add(
                "Convergence",
                &format!("N={n}: AWS calls seen by moto (proxy)"),
                "",
                "",
                "",
                json!({"CreateBucket": n}),
            );
            r.add(
                "Memory",
                &format!("agent RSS, {n} CRs Ready (+15 idle CRD entries)"),
                "",
                "",
                "",
                json!({"kib": 24_000 + n * 14, "label": format!("{} CRs", thousands(n))}),
            );
        }
        r.add(
            "Convergence",
            "N=10000: all Ready",
            "not reached: 9000/10000 Ready after 10300s",
            "",
            "",
            json!({}),
        );
        let mut rng = Rng::new(7);
        let mut lat = |base: f64| -> Vec<f64> {
            (0..200)
                .map(|_| {
                    base + rng.below(400) as f64 / 10.0 + if rng.chance(0.03) { 250.0 } else { 0.0 }
                })
                .collect()
        };
        let (create, update) = (lat(180.0), lat(60.0));
        r.add(
            "Reaction",
            "CR create → Ready (p50 / p99 / max over 200, one at a time)",
            "",
            "",
            "",
            json!({"label": "CR create → Ready", "samples_ms": create}),
        );
        r.add(
            "Reaction",
            "spec change → Deployment updated (p50 / p99 / max over 200, one at a time)",
            "",
            "",
            "",
            json!({"label": "spec change → Deployment updated", "samples_ms": update}),
        );
        r
    }

    /// Parses `svg` (so it is well-formed XML) and returns the root's descendants' text and
    /// the fill colours of its rectangles.
    fn parse(svg: &str) -> (Vec<String>, Vec<String>) {
        let doc = roxmltree::Document::parse(svg).expect("well-formed SVG");
        assert_eq!(doc.root_element().tag_name().name(), "svg");
        let texts = doc
            .descendants()
            .filter(|n| n.has_tag_name("text"))
            .map(|n| n.text().unwrap_or_default().trim().to_string())
            .collect();
        let fills = doc
            .descendants()
            .filter(|n| n.has_tag_name("rect"))
            .filter_map(|n| n.attribute("fill").map(str::to_uppercase))
            .collect();
        (texts, fills)
    }

    fn count(fills: &[String], c: RGBColor) -> usize {
        let hex = format!("#{:02X}{:02X}{:02X}", c.0, c.1, c.2);
        fills.iter().filter(|f| **f == hex).count()
    }

    #[test]
    fn convergence_has_one_bar_per_n_and_series_labelled_in_seconds() {
        let points = [
            Convergence {
                n: 100,
                seconds: 4.21,
                floor_seconds: 2.87,
            },
            Convergence {
                n: 1000,
                seconds: 31.52,
                floor_seconds: 22.04,
            },
            Convergence {
                n: 10_000,
                seconds: 305.0,
                floor_seconds: 230.5,
            },
        ];
        let (texts, fills) = parse(&convergence_svg(&points).expect("drawn"));
        // One bar per N per series, plus the series' legend swatch.
        assert_eq!(count(&fills, ORKESTRA), 3 + 1, "{fills:?}");
        assert_eq!(count(&fills, SECOND), 3 + 1, "{fills:?}");
        for t in [
            "N=100",
            "N=1,000",
            "N=10,000",
            "4.21 s",
            "2.87 s",
            "31.52 s",
            "305.00 s",
            "230.50 s",
            "seconds",
            "CRs created",
            "orkestra",
            "floor (minimal client)",
        ] {
            assert!(texts.iter().any(|x| x == t), "no text {t:?} in {texts:?}");
        }
    }

    #[test]
    fn memory_has_one_bar_per_sample_in_report_order() {
        let report = sample_report();
        let mem = memory_data(&report);
        let labels: Vec<&str> = mem.iter().map(|m| m.label.as_str()).collect();
        assert_eq!(labels, ["idle", "15 CRD entries", "100 CRs", "1,000 CRs"]);
        let (texts, fills) = parse(&memory_svg(&mem).expect("drawn"));
        // One bar per sample; a single series has no legend swatch.
        assert_eq!(count(&fills, ORKESTRA), 4);
        for t in [
            "idle",
            "15 CRD entries",
            "1,000 CRs",
            "15.4 MiB",
            "20.8 MiB",
            "RSS (MiB)",
        ] {
            assert!(texts.iter().any(|x| x == t), "no text {t:?} in {texts:?}");
        }
    }

    #[test]
    fn latency_cdf_has_a_line_per_series_with_percentiles_in_the_legend() {
        let sets = [
            Latencies {
                label: "create → Ready".into(),
                samples_ms: vec![30.0, 10.0, 20.0, 40.0],
            },
            Latencies {
                label: "spec change → child updated".into(),
                samples_ms: vec![5.0, 7.5],
            },
        ];
        let svg = latency_svg(&sets).expect("drawn");
        let (texts, _) = parse(&svg);
        for t in [
            "create → Ready: p50 20.0 ms, p99 40.0 ms, max 40.0 ms (n=4)",
            "spec change → child updated: p50 5.0 ms, p99 7.5 ms, max 7.5 ms (n=2)",
            "latency (ms)",
            "% of CRs at or below",
            "100%",
        ] {
            assert!(texts.iter().any(|x| x == t), "no text {t:?} in {texts:?}");
        }
        let doc = roxmltree::Document::parse(&svg).expect("well-formed");
        let lines: Vec<_> = doc
            .descendants()
            .filter(|n| n.has_tag_name("polyline"))
            .filter_map(|n| n.attribute("points"))
            .collect();
        // The CDF of 4 samples: the origin and two points per sample (a step up at each).
        assert!(
            lines
                .iter()
                .any(|p| p.split_whitespace().count() == 1 + 2 * 4),
            "{lines:?}"
        );
    }

    #[test]
    fn a_far_straggler_cuts_the_axis_and_says_so() {
        let mut samples: Vec<f64> = (0..200).map(|i| 80.0 + f64::from(i % 40)).collect();
        samples.push(5000.0);
        let svg = latency_svg(&[Latencies {
            label: "create → Ready".into(),
            samples_ms: samples,
        }])
        .expect("drawn");
        let (texts, _) = parse(&svg);
        assert!(
            texts.contains(&"Reaction latency (one CR at a time; axis cut at 200 ms)".to_string()),
            "{texts:?}"
        );
        assert!(
            texts.iter().any(|t| t.contains("max 5000.0 ms (n=201)")),
            "{texts:?}"
        );
        assert!(texts.contains(&"200".to_string()) && !texts.contains(&"5000".to_string()));
    }

    #[test]
    fn no_samples_no_figure_and_bad_values_do_not_break_drawing() {
        let empty = Report::default();
        assert!(figures(&empty, "bench")
            .expect("nothing to draw")
            .is_empty());
        let svg = latency_svg(&[Latencies {
            label: "x".into(),
            samples_ms: vec![f64::NAN, 3.0],
        }])
        .expect("drawn");
        parse(&svg);
        let svg = convergence_svg(&[Convergence {
            n: 1,
            seconds: 0.0,
            floor_seconds: f64::INFINITY,
        }])
        .expect("drawn");
        parse(&svg);
    }

    #[test]
    fn figures_come_from_the_rows_that_have_data() {
        let figs = figures(&sample_report(), "bench").expect("drawn");
        let names: Vec<(&str, &str)> = figs
            .iter()
            .map(|f| (f.section.as_str(), f.file.as_str()))
            .collect();
        assert_eq!(
            names,
            [
                ("Convergence", "bench-convergence.svg"),
                ("Reaction", "bench-reaction.svg"),
                ("Memory", "bench-memory.svg"),
            ]
        );
        // The timed-out N=10000 row has no figures, so two groups.
        let (texts, _) = parse(&figs[0].svg);
        assert!(texts.iter().any(|t| t == "N=1,000"));
        assert!(!texts.iter().any(|t| t.starts_with("N=10,000")));
    }

    #[test]
    fn markdown_links_each_figure_once_under_its_section() {
        let report = sample_report();
        let figs = figures(&report, "bench").expect("drawn");
        let md = report.markdown("orkestra benchmarks", &figs);
        for (section, file) in [
            ("Convergence", "bench-convergence.svg"),
            ("Reaction", "bench-reaction.svg"),
            ("Memory", "bench-memory.svg"),
        ] {
            assert_eq!(md.matches(&format!("## {section}\n")).count(), 1, "{md}");
            assert_eq!(md.matches(&format!("]({file})")).count(), 1, "{md}");
            // The link sits after its section's heading and before the next one.
            let at = md.find(&format!("## {section}\n")).expect("heading");
            let link = md.find(&format!("]({file})")).expect("link");
            let next = md[at + 3..].find("\n## ").map_or(md.len(), |i| at + 3 + i);
            assert!(
                at < link && link < next,
                "{file} not under {section}:\n{md}"
            );
        }
        assert!(md.contains("| agent RSS, 1000 CRs Ready (+15 idle CRD entries) |"));
    }

    #[test]
    fn write_puts_the_svgs_beside_the_markdown() {
        let dir = std::env::temp_dir().join(format!("orkestra-bench-plot-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        sample_report()
            .write(&dir, "bench", "orkestra benchmarks")
            .expect("written");
        let md = std::fs::read_to_string(dir.join("bench.md")).expect("bench.md");
        let links: Vec<&str> = md
            .lines()
            .filter_map(|l| l.strip_prefix("![")?.split_once("](")?.1.strip_suffix(')'))
            .collect();
        assert_eq!(links.len(), 3, "{md}");
        for l in links {
            let svg = std::fs::read_to_string(dir.join(l)).expect("linked file exists");
            parse(&svg);
        }
        let json: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("bench.json")).expect("json"))
                .expect("valid JSON");
        assert_eq!(json["rows"].as_array().map(Vec::len), Some(11));
        if std::env::var_os("KEEP_PLOTS").is_none() {
            let _ = std::fs::remove_dir_all(&dir);
        }
    }

    #[test]
    fn axis_tops_and_thousands() {
        assert_eq!(nice_ceiling(0.9), 1.0);
        assert_eq!(nice_ceiling(3.4), 5.0);
        assert_eq!(nice_ceiling(36.2), 50.0);
        assert_eq!(nice_ceiling(210.0), 250.0);
        assert_eq!(short_number(0.30000000000000004), "0.3");
        assert_eq!(short_number(50.0), "50");
        assert_eq!(short_number(2.5), "2.5");
        assert_eq!(thousands(7), "7");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }
}
