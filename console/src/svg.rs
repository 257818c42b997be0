//! Charts drawn on the server as inline SVG: no script, nothing to download.

use maud::{Markup, html};

use crate::format::count;

/// One bar: a labelled amount, against a limit when there is one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bar {
    /// What the bar measures.
    pub label: String,
    /// The amount.
    pub value: i64,
    /// The most allowed (a quota), if any: drawn as the bar's track.
    pub limit: Option<i64>,
    /// The amount as text (e.g. `12.00 EUR`); the number itself when `None`.
    pub text: Option<String>,
}

impl Bar {
    /// A bar of `value` against `limit`.
    pub fn new(label: impl Into<String>, value: i64, limit: Option<i64>) -> Bar {
        Bar {
            label: label.into(),
            value,
            limit,
            text: None,
        }
    }
}

/// The drawing's width in SVG units: small enough to stay legible on a phone.
const WIDTH: i64 = 360;
/// The height of one bar with its line of text above.
const ROW_HEIGHT: i64 = 40;
const BAR_HEIGHT: i64 = 12;

/// `part / whole` of [`WIDTH`], in whole units (at least 2 for a non-zero part).
fn scaled(part: i64, whole: i64) -> i64 {
    if whole <= 0 || part <= 0 {
        return 0;
    }
    let width = i128::from(part.min(whole)) * i128::from(WIDTH) / i128::from(whole);
    i64::try_from(width).unwrap_or(WIDTH).max(2)
}

/// The text after a bar: `value / limit (NN%)`, or the value.
fn caption(bar: &Bar) -> String {
    let value = bar.text.clone().unwrap_or_else(|| count(bar.value));
    match bar.limit {
        Some(limit) if limit > 0 => {
            let percent = i128::from(bar.value) * 100 / i128::from(limit);
            format!("{value} / {} ({percent}%)", count(limit))
        }
        _ => value,
    }
}

/// A horizontal bar chart titled `title`, one row per bar: its label and amount, then the bar.
/// A bar with a limit is drawn on a full-width track standing for the limit (so each reads as
/// a share of its own quota) and turns red past it; bars without one share a scale.
pub fn bar_chart(id: &str, title: &str, bars: &[Bar]) -> Markup {
    let shared_scale = bars.iter().map(|bar| bar.value).max().unwrap_or(0).max(1);
    let height = ROW_HEIGHT * i64::try_from(bars.len()).unwrap_or(0);
    let title_id = format!("{id}-title");
    html! {
        figure.chart {
            svg #(id) xmlns="http://www.w3.org/2000/svg" role="img" aria-labelledby=(title_id)
                viewBox=(format!("0 0 {WIDTH} {height}")) preserveAspectRatio="xMinYMin meet" {
                title #(title_id) { (title) }
                @for (row, bar) in bars.iter().enumerate() {
                    @let y = ROW_HEIGHT * i64::try_from(row).unwrap_or(0);
                    @let over = bar.limit.is_some_and(|limit| bar.value > limit);
                    @let scale = bar.limit.filter(|limit| *limit > 0).unwrap_or(shared_scale);
                    text x="0" y=(y + 14) class="chart-label" { (bar.label) }
                    text x=(WIDTH) y=(y + 14) text-anchor="end" class="chart-value" { (caption(bar)) }
                    @if bar.limit.is_some() {
                        rect x="0" y=(y + 20) width=(WIDTH) height=(BAR_HEIGHT) class="chart-track" {}
                    }
                    rect x="0" y=(y + 20) width=(scaled(bar.value, scale)) height=(BAR_HEIGHT)
                        class=(if over { "chart-bar over" } else { "chart-bar" }) {
                        title { (bar.label) ": " (caption(bar)) }
                    }
                }
            }
            figcaption { (title) }
        }
    }
}

/// One column of a [`column_chart`]: a period's successful and failed calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    /// The period, e.g. `2026-12-05`.
    pub label: String,
    /// Calls that succeeded.
    pub ok: i64,
    /// Calls that failed.
    pub failed: i64,
}

/// The height of a column chart's plot.
const PLOT_HEIGHT: i64 = 120;
/// The room under the plot for the first and last labels.
const AXIS_HEIGHT: i64 = 18;

/// A column chart titled `title`: one column per period, failed calls stacked on successful
/// ones, all on one scale (the busiest period fills the height). Each column's numbers are in
/// its tooltip; the first and last periods are labelled under the plot.
pub fn column_chart(id: &str, title: &str, columns: &[Column]) -> Markup {
    let busiest = columns
        .iter()
        .map(|c| c.ok.saturating_add(c.failed))
        .max()
        .unwrap_or(0)
        .max(1);
    let n = i64::try_from(columns.len()).unwrap_or(1).max(1);
    let slot = WIDTH / n;
    let bar = (slot - 2).max(1);
    let height = |part: i64| -> i64 {
        let scaled = i128::from(part.max(0)) * i128::from(PLOT_HEIGHT) / i128::from(busiest);
        let scaled = i64::try_from(scaled).unwrap_or(PLOT_HEIGHT);
        if part > 0 { scaled.max(1) } else { 0 }
    };
    let title_id = format!("{id}-title");
    html! {
        figure.chart {
            svg #(id) xmlns="http://www.w3.org/2000/svg" role="img" aria-labelledby=(title_id)
                viewBox=(format!("0 0 {WIDTH} {}", PLOT_HEIGHT + AXIS_HEIGHT)) preserveAspectRatio="xMinYMin meet" {
                title #(title_id) { (title) }
                line x1="0" y1=(PLOT_HEIGHT) x2=(WIDTH) y2=(PLOT_HEIGHT) class="chart-axis" {}
                @for (index, column) in columns.iter().enumerate() {
                    @let x = slot * i64::try_from(index).unwrap_or(0);
                    @let ok = height(column.ok);
                    @let failed = height(column.failed);
                    g class="chart-column" {
                        title { (column.label) ": " (count(column.ok.saturating_add(column.failed))) " calls, " (count(column.failed)) " failed" }
                        @if ok > 0 {
                            rect x=(x) y=(PLOT_HEIGHT - ok) width=(bar) height=(ok) class="chart-bar" {}
                        }
                        @if failed > 0 {
                            rect x=(x) y=(PLOT_HEIGHT - ok - failed) width=(bar) height=(failed) class="chart-bar over" {}
                        }
                    }
                }
                @if let (Some(first), Some(last)) = (columns.first(), columns.last()) {
                    text x="0" y=(PLOT_HEIGHT + 14) class="chart-label" { (first.label) }
                    text x=(WIDTH) y=(PLOT_HEIGHT + 14) text-anchor="end" class="chart-label" { (last.label) }
                }
            }
            figcaption { (title) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_scale_to_the_largest_limit_and_mark_overuse() {
        let svg = bar_chart(
            "usage",
            "Usage",
            &[
                Bar::new("invocations", 50, Some(100)),
                Bar::new("installs", 3, Some(2)),
            ],
        )
        .into_string();
        assert!(
            svg.contains("<title id=\"usage-title\">Usage</title>"),
            "{svg}"
        );
        assert!(svg.contains("50 / 100 (50%)"), "{svg}");
        assert!(svg.contains("chart-bar over"), "{svg}");
        // Each bar is a share of its own limit.
        assert!(svg.contains(&format!("width=\"{}\"", WIDTH / 2)), "{svg}");
        assert_eq!(scaled(50, 100), WIDTH / 2);
        assert_eq!(scaled(0, 100), 0);
        assert_eq!(scaled(1, 1_000_000), 2);
        assert_eq!(scaled(200, 100), WIDTH);
    }

    #[test]
    fn columns_share_one_scale_and_stack_failures() {
        let svg = column_chart(
            "daily",
            "Calls per day",
            &[
                Column {
                    label: "2026-12-04".into(),
                    ok: 0,
                    failed: 0,
                },
                Column {
                    label: "2026-12-05".into(),
                    ok: 6,
                    failed: 2,
                },
            ],
        )
        .into_string();
        assert!(svg.contains("2026-12-05: 8 calls, 2 failed"), "{svg}");
        // The busiest day fills the plot: 6 of 8 succeeded, 2 failed on top.
        assert!(
            svg.contains(&format!("height=\"{}\"", PLOT_HEIGHT * 6 / 8)),
            "{svg}"
        );
        assert!(
            svg.contains(&format!(
                "height=\"{}\" class=\"chart-bar over\"",
                PLOT_HEIGHT * 2 / 8
            )),
            "{svg}"
        );
        // A day without calls draws no bar.
        assert_eq!(svg.matches("<rect").count(), 2, "{svg}");
    }
}
