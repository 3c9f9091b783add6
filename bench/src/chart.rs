//! The chart of scenario a (SVG), written beside the report: requests/sec
//! per server and concurrency (bars), then the cost as work grows (curves):
//! p99, server CPU per request and RSS as connections grow, and req/s and
//! RSS as handlers grow. A server has the same colour in every panel.

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::HttpSample;
use crate::http::Results;

type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;

/// The servers in order of first appearance, and the concurrency levels.
fn servers_and_levels(samples: &[HttpSample]) -> (Vec<&str>, Vec<u32>) {
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
    (servers, levels)
}

/// Writes the chart of `results` to `path`.
pub fn http_chart(results: &Results, path: &Path) -> anyhow::Result<()> {
    let root = SVGBackend::new(path, (1280, 1500)).into_drawing_area();
    root.fill(&WHITE)?;
    let (top, rest) = root.split_vertically(600);
    let panels = rest.split_evenly((2, 2));
    bars(&top, &results.hello)?;
    let (servers, levels) = servers_and_levels(&results.hello);
    let x_labels: Vec<String> = levels.iter().map(|c| format!("{c} conn.")).collect();
    let by_connections = |value: fn(&HttpSample) -> f64| -> Vec<Series> {
        servers
            .iter()
            .enumerate()
            .map(|(si, server)| Series {
                color: si,
                points: results
                    .hello
                    .iter()
                    .filter(|s| s.server == *server)
                    .filter_map(|s| Some((levels.iter().position(|&c| c == s.connections)?, value(s))))
                    .filter(|(_, v)| v.is_finite())
                    .collect(),
            })
            .collect()
    };
    lines(
        &panels[0],
        "p99 latency as connections grow",
        "p99 ms",
        &x_labels,
        &by_connections(|s| s.result.p99_ms),
    )?;
    lines(
        &panels[1],
        "server CPU per request as connections grow",
        "µs of CPU / request",
        &x_labels,
        &by_connections(|s| s.result.cpu_us),
    )?;
    lines(
        &panels[2],
        "server RSS as connections grow",
        "RSS MiB",
        &x_labels,
        &by_connections(|s| s.result.rss_mib),
    )?;
    let handler_labels: Vec<String> = results
        .handlers
        .iter()
        .map(|(n, _)| format!("{n} handlers"))
        .collect();
    let color = servers.iter().position(|s| *s == crate::http::RUST).unwrap_or(0);
    let points = |value: fn(&HttpSample) -> f64| -> Vec<(usize, f64)> {
        results
            .handlers
            .iter()
            .enumerate()
            .map(|(i, (_, s))| (i, value(s)))
            .filter(|(_, v)| v.is_finite())
            .collect()
    };
    let (left, right) = panels[3].split_horizontally(320);
    lines(
        &left,
        "Waterspout, N handlers: req/s",
        "req/s (64 conn.)",
        &handler_labels,
        &[Series {
            color,
            points: points(|s| s.result.rps),
        }],
    )?;
    lines(
        &right,
        "… and RSS",
        "RSS MiB",
        &handler_labels,
        &[Series {
            color,
            points: points(|s| s.result.rss_mib),
        }],
    )?;
    root.present()?;
    Ok(())
}

/// Grouped bars: one group per concurrency, one bar per server.
fn bars(area: &Area, samples: &[HttpSample]) -> anyhow::Result<()> {
    let (servers, levels) = servers_and_levels(samples);
    let max = samples.iter().map(|s| s.result.rps).fold(0.0, f64::max) * 1.1;
    let groups = levels.len().max(1) as f64;
    let mut chart = ChartBuilder::on(area)
        .caption(
            "HTTP hello: requests/sec on loopback (2 cores, wrk -t1)",
            ("sans-serif", 22),
        )
        .margin(16)
        .x_label_area_size(40)
        .y_label_area_size(80)
        .build_cartesian_2d(0.0..groups, 0.0..max.max(1.0))?;
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
    let bar_width = 0.8 / servers.len().max(1) as f64;
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
    Ok(())
}

/// One curve: points at category positions, coloured like its server.
struct Series {
    color: usize,
    points: Vec<(usize, f64)>,
}

/// Curves over categories (`x_labels`), from 0 up.
fn lines(
    area: &Area,
    caption: &str,
    y_desc: &str,
    x_labels: &[String],
    series: &[Series],
) -> anyhow::Result<()> {
    let max = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .fold(0.0, f64::max)
        * 1.1;
    let n = x_labels.len().max(1);
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(30)
        .y_label_area_size(60)
        .build_cartesian_2d(-0.3..(n as f64 - 0.7), 0.0..max.max(1e-3))?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(n)
        .x_label_formatter(&|x| {
            let i = x.round();
            if (x - i).abs() > 0.01 || i < 0.0 {
                return String::new();
            }
            x_labels.get(i as usize).cloned().unwrap_or_default()
        })
        .y_desc(y_desc)
        .draw()?;
    for s in series {
        let color = Palette99::pick(s.color).to_rgba();
        let points: Vec<(f64, f64)> = s.points.iter().map(|&(x, y)| (x as f64, y)).collect();
        chart.draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))?;
        chart.draw_series(points.into_iter().map(|p| Circle::new(p, 3, color.filled())))?;
    }
    Ok(())
}
