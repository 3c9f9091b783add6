//! The chart in BENCHMARKS.md: requests/sec per server and concurrency (SVG).

use std::path::Path;

use plotters::prelude::*;

use crate::HttpSample;

/// Grouped bars: one group per concurrency, one bar per server.
pub fn http_chart(samples: &[HttpSample], path: &Path) -> anyhow::Result<()> {
    let mut servers: Vec<&str> = Vec::new();
    let mut levels: Vec<u32> = Vec::new();
    for s in samples {
        if !servers.contains(&s.server.as_str()) {
            servers.push(&s.server);
        }
        if !levels.contains(&s.connections) {
            levels.push(s.connections);
        }
    }
    let max = samples.iter().map(|s| s.result.rps).fold(0.0, f64::max) * 1.1;
    let root = SVGBackend::new(path, (960, 540)).into_drawing_area();
    root.fill(&WHITE)?;
    let groups = levels.len() as f64;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "HTTP hello: requests/sec on loopback (2 cores, wrk -t1)",
            ("sans-serif", 22),
        )
        .margin(16)
        .x_label_area_size(40)
        .y_label_area_size(80)
        .build_cartesian_2d(0.0..groups, 0.0..max)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(levels.len())
        .x_label_formatter(&|x| {
            let i = (*x - 0.5).round() as usize;
            levels
                .get(i)
                .map(|c| format!("{c} connections"))
                .unwrap_or_default()
        })
        .y_desc("requests/sec")
        .y_label_formatter(&|y| format!("{:.0}k", y / 1000.0))
        .draw()?;
    let bar_width = 0.8 / servers.len() as f64;
    for (si, server) in servers.iter().enumerate() {
        let color = Palette99::pick(si).to_rgba();
        let bars: Vec<_> = samples
            .iter()
            .filter(|s| s.server == *server)
            .filter_map(|s| {
                let gi = levels.iter().position(|&c| c == s.connections)? as f64;
                let x0 = gi + 0.1 + si as f64 * bar_width;
                Some(Rectangle::new(
                    [(x0, 0.0), (x0 + bar_width * 0.9, s.result.rps)],
                    color.filled(),
                ))
            })
            .collect();
        chart
            .draw_series(bars)?
            .label(*server)
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], color.filled()));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperRight)
        .draw()?;
    root.present()?;
    Ok(())
}
