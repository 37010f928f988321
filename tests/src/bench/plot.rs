//! The README's plot: nanoseconds per frame against live flows, drawn with plotters.

use std::path::Path;

use anyhow::{Context as _, Result};
use plotters::prelude::*;

/// One line of the plot: a name and (live flows, ns per frame) points.
pub struct Series {
    /// Legend text.
    pub name: String,
    /// Points, by live flows.
    pub points: Vec<(f64, f64)>,
    /// How far each point moved between batches: (live flows, lowest, highest).
    pub ranges: Vec<(f64, f64, f64)>,
}

/// DejaVu Sans from Debian's fonts-dejavu-core (plotters draws text with a font it is
/// given; `cargo xtask setup` installs the package).
const FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";

/// Draws `series` (log scale of live flows) into a PNG at `out`.
pub fn ns_per_frame(out: &Path, title: &str, series: &[Series]) -> Result<()> {
    let font = std::fs::read(FONT).with_context(|| format!("{FONT} (fonts-dejavu-core)"))?;
    // plotters keeps the font for the process: leaking one copy is what it asks for.
    let font: &'static [u8] = Box::leak(font.into_boxed_slice());
    plotters::style::register_font("sans-serif", FontStyle::Normal, font)
        .map_err(|_| anyhow::anyhow!("{FONT} is not a font plotters can read"))?;
    let ymax = series
        .iter()
        .flat_map(|s| {
            s.points
                .iter()
                .map(|p| p.1)
                .chain(s.ranges.iter().map(|r| r.2))
        })
        .fold(0.0, f64::max)
        * 1.15;
    let root = BitMapBackend::new(out, (900, 540)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(60)
        .build_cartesian_2d((500f64..2_000_000f64).log_scale(), 0f64..ymax)?;
    chart
        .configure_mesh()
        .x_desc("live flows in the map")
        .y_desc("ns per frame")
        .x_label_formatter(&|v| match *v {
            v if v >= 1e6 => format!("{:.0}M", v / 1e6),
            v if v >= 1e3 => format!("{:.0}k", v / 1e3),
            v => format!("{v:.0}"),
        })
        .y_label_formatter(&|v| format!("{v:.0}"))
        .label_style(("sans-serif", 15))
        .draw()?;
    let colors = [RED, BLUE, GREEN, MAGENTA, BLACK];
    for (s, color) in series.iter().zip(colors.iter().cycle()) {
        let color = *color;
        chart
            .draw_series(LineSeries::new(s.points.clone(), color.stroke_width(2)))?
            .label(s.name.clone())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
        chart.draw_series(s.points.iter().map(|p| Circle::new(*p, 4, color.filled())))?;
        chart.draw_series(
            s.ranges.iter().map(|&(x, lo, hi)| {
                PathElement::new(vec![(x, lo), (x, hi)], color.stroke_width(1))
            }),
        )?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .label_font(("sans-serif", 15))
        .position(SeriesLabelPosition::UpperLeft)
        .draw()?;
    root.present()?;
    Ok(())
}
