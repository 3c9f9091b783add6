//! BENCHMARKS.md by sections. A run replaces the sections of the scenarios
//! it ran (`## a. …`, `## e. …`) and keeps the others as they were, each
//! with the line saying when and at which commit it was measured; the
//! notes (bench/NOTES.md) are appended fresh every time.

use std::path::Path;

/// The start of the chart's line, placed at the end of section a.
const CHART_PREFIX: &str = "![requests/sec per server](";

/// The chart's markdown line for a link.
pub fn chart_line(link: &str) -> String {
    format!("{CHART_PREFIX}{link})")
}

/// `svg` as a link from the report `report`: relative when it is in the
/// report's directory or below it (`bench/chart.svg`, `run.svg`), else the
/// path as it is.
pub fn relative_link(report: &Path, svg: &Path) -> String {
    let dir = report.parent().unwrap_or(Path::new(""));
    svg.strip_prefix(dir).unwrap_or(svg).display().to_string()
}

/// The line under a section's heading saying when it was measured.
pub fn stamp(date: &str, commit: &str) -> String {
    format!("_Measured {date}, commit {commit}._")
}

/// Puts [`stamp`] under the heading of a section (its first line).
pub fn stamped(section: &str, date: &str, commit: &str) -> String {
    let (heading, rest) = section.split_once('\n').unwrap_or((section, ""));
    format!("{heading}\n\n{}\n{rest}", stamp(date, commit))
}

/// The scenario letter of a `## x. Title` heading.
fn scenario_key(heading: &str) -> Option<String> {
    let (key, _) = heading.strip_prefix("## ")?.split_once(". ")?;
    (!key.is_empty() && key.chars().all(|c| c.is_ascii_lowercase())).then(|| key.to_owned())
}

/// A `| name | value |` row of the header table.
fn header_field(text: &str, name: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let rest = l.strip_prefix(&format!("| {name} | "))?;
        Some(rest.trim_end().trim_end_matches('|').trim().to_owned())
    })
}

/// The sections of a report, keyed by scenario letter, in file order; what
/// precedes the first, and sections that are not a scenario's (the notes),
/// are left out.
fn sections(report: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut current: Option<(String, String)> = None;
    for line in report.split_inclusive('\n') {
        if line.starts_with("## ") {
            if let Some(done) = current.take() {
                out.push(done);
            }
            current = scenario_key(line.trim_end()).map(|k| (k, String::new()));
        }
        if let Some((_, text)) = current.as_mut()
            && !line.starts_with(CHART_PREFIX)
        {
            text.push_str(line);
        }
    }
    out.extend(current);
    out
}

/// The new report: `header`, then every scenario section, those of this run
/// (`fresh`, already stamped) replacing the old file's with the same letter,
/// in letter order; the chart (its link: `chart`) under section a; then
/// `notes`. An old section without a stamp gets one from the old header's
/// date and commit.
pub fn merge(
    old: Option<&str>,
    header: &str,
    fresh: &[(String, String)],
    notes: &str,
    chart: &str,
) -> String {
    let mut all: Vec<(String, String)> = Vec::new();
    if let Some(old) = old {
        let date = header_field(old, "date")
            .or_else(|| header_field(old, "date (latest run)"))
            .unwrap_or_else(|| "at an unknown date".into());
        let commit = header_field(old, "commit").unwrap_or_else(|| "unknown".into());
        for (key, text) in sections(old) {
            if fresh.iter().any(|(k, _)| *k == key) {
                continue;
            }
            let has_stamp = text.lines().nth(2).is_some_and(|l| l.starts_with("_Measured "));
            let text = if has_stamp {
                text
            } else {
                stamped(&text, &date, &commit)
            };
            all.push((key, text));
        }
    }
    all.extend(fresh.iter().cloned());
    all.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out = header.trim_end().to_owned();
    out.push_str("\n\n");
    for (key, text) in &all {
        out.push_str(text.trim_end());
        out.push_str("\n\n");
        if key == "a" {
            out.push_str(&chart_line(chart));
            out.push_str("\n\n");
        }
    }
    out.push_str(notes.trim_end());
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const OLD: &str = "# Benchmarks\n\n| | |\n| --- | --- |\n| date | 2026-11-25 03:45 UTC |\n| commit | ceac3ee |\n\n## a. HTTP hello\n\nold a\n\n## b. Per-request\n\nold b\n\n## d. Hot swap\n\nold d\n\n### Hot swap: measurements\n\nold d2\n\n![requests/sec per server](bench/chart.svg)\n\n## Where the time goes\n\nold notes\n## Where the time goes\n\nold notes again\n";

    #[test]
    fn a_partial_run_replaces_only_its_sections() {
        let fresh = vec![(
            "e".to_owned(),
            stamped("## e. Languages\n\nnew e\n", "2026-12-02 08:00 UTC", "abc1234"),
        )];
        let new = merge(
            Some(OLD),
            "# Benchmarks\n\nheader\n",
            &fresh,
            "## Where the time goes\n\nnotes\n",
            "bench/chart.svg",
        );
        let order: Vec<usize> = [
            "## a.", "old a", "## b.", "old b", "## d.", "old d2", "## e.", "new e", "notes",
        ]
        .iter()
        .map(|s| new.find(s).unwrap_or_else(|| panic!("{s:?} missing in:\n{new}")))
        .collect();
        assert!(order.windows(2).all(|w| w[0] < w[1]), "out of order:\n{new}");
        // Old sections keep the date of the run that measured them.
        assert!(new.contains("## b. Per-request\n\n_Measured 2026-11-25 03:45 UTC, commit ceac3ee._\n"));
        assert!(new.contains("## e. Languages\n\n_Measured 2026-12-02 08:00 UTC, commit abc1234._\n"));
        // The notes once, the chart once and under a.
        assert_eq!(new.matches("## Where the time goes").count(), 1, "{new}");
        assert!(!new.contains("old notes"));
        let chart = chart_line("bench/chart.svg");
        assert_eq!(new.matches(&chart).count(), 1);
        assert!(new.find(&chart) < new.find("## b."));
        assert!(new.starts_with("# Benchmarks\n\nheader\n"));
    }

    #[test]
    fn a_run_replaces_a_section_it_measured_again_and_keeps_stamps() {
        let first = merge(
            None,
            "# B\n",
            &[
                ("a".into(), stamped("## a. A\n\none\n", "d1", "c1")),
                ("b".into(), stamped("## b. B\n\nbee\n", "d1", "c1")),
            ],
            "",
            "first.svg",
        );
        let second = merge(
            Some(&first),
            "# B\n",
            &[("a".into(), stamped("## a. A\n\ntwo\n", "d2", "c2"))],
            "",
            "second.svg",
        );
        assert!(second.contains("two") && !second.contains("one"), "{second}");
        assert!(
            second.contains("## b. B\n\n_Measured d1, commit c1._\n\nbee"),
            "{second}"
        );
        assert_eq!(second.matches("_Measured").count(), 2, "{second}");
        // The chart's line follows the report it belongs to: one, the new one.
        assert_eq!(second.matches("![requests/sec").count(), 1, "{second}");
        assert!(second.contains(&chart_line("second.svg")), "{second}");
    }

    #[test]
    fn the_chart_is_linked_from_beside_the_report() {
        assert_eq!(
            relative_link(Path::new("/tmp/x/run.md"), Path::new("/tmp/x/run.svg")),
            "run.svg"
        );
        assert_eq!(
            relative_link(Path::new("/r/BENCHMARKS.md"), Path::new("/r/bench/chart.svg")),
            "bench/chart.svg"
        );
        assert_eq!(
            relative_link(Path::new("run.md"), Path::new("run.svg")),
            "run.svg"
        );
    }
}
