//! Sequence diagrams for the flow explorer, rendered server-side as inline SVG.
//!
//! The page's CSP forbids `style` attributes and elements, so the look comes from presentation
//! attributes (which /static/latchkey.css may override through the `seq-*` classes) and from
//! `currentColor`, which follows the page's text colour in light and dark themes alike.
//! Coordinates are `f64`: arithmetic on them cannot overflow, so no input can make this panic.

use std::fmt::Write as _;

/// One message of a sequence diagram: from one participant to another (indexes into the participant list), with a short label (e.g. "POST /token (code, code_verifier)"), and whether it is an error answer (drawn in the error colour, e.g. "400 invalid_grant").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arrow {
    pub from: usize,
    pub to: usize,
    pub label: String,
    pub error: bool,
    /// a redirect through the user agent, drawn dashed
    pub redirect: bool,
}

const MAX_LABEL: usize = 60;
// Text can't be measured server-side; these over-estimate the advance of an 11px monospace
// label (6.6px) and of a 13px bold system-ui name, so text stays between its lifelines.
const LABEL_CHAR_W: f64 = 7.0;
const NAME_CHAR_W: f64 = 8.0;
const MARGIN: f64 = 16.0;
const BOX_TOP: f64 = 8.0;
const BOX_H: f64 = 30.0;
const FIRST_ROW: f64 = 84.0;
const ROW_H: f64 = 40.0;
const LOOP_W: f64 = 28.0;
const LOOP_H: f64 = 14.0;
const MIN_GAP: f64 = 120.0;
const ERROR: &str = "#b42318";
const HIGHLIGHT: &str = "#2b59c3";
const INK: &str = "currentColor";
const MONO: &str = "ui-monospace, SFMono-Regular, Menlo, Consolas, monospace";

/// The SVG of a sequence diagram: one lifeline per participant (e.g. ["User agent", "Client (explorer)", "Authorization server", "Resource server"]), the arrows top to bottom, numbered 1..n, the one at `highlight` (0-based) emphasised (thicker, accent colour, `aria-current="step"`), each arrow wrapped in an `<a href="#step-{n}">` so clicking it jumps to that step's details on the page. A self-message (from == to) is drawn as a small loop. Arrows naming a participant out of range are skipped, never a panic.
pub fn sequence_svg(
    title: &str,
    participants: &[&str],
    arrows: &[Arrow],
    highlight: Option<usize>,
) -> String {
    let id = id_prefix(title, participants);
    let names: Vec<String> = participants.iter().map(|p| shorten(p)).collect();
    let name = |i: usize| names.get(i).map_or("", String::as_str);
    // A skipped arrow keeps its number, so `#step-{n}` still matches the page's list of steps.
    let steps: Vec<(usize, &Arrow, String)> = (arrows.iter().enumerate())
        .filter(|(_, a)| a.from < names.len() && a.to < names.len())
        .map(|(i, a)| (i + 1, a, format!("{}. {}", i + 1, shorten(&a.label))))
        .collect();

    // Each gap between neighbouring lifelines widens until every label over it fits; narrow
    // arrows go first so a wide one only adds what its neighbours have not already given.
    let box_w: Vec<f64> = (names.iter())
        .map(|s| (text_w(s, NAME_CHAR_W) + 20.0).max(90.0))
        .collect();
    let mut gaps: Vec<f64> = (box_w.windows(2))
        .map(|w| (w.iter().sum::<f64>() / 2.0 + 16.0).max(MIN_GAP))
        .collect();
    let mut right = box_w.last().map_or(0.0, |w| w / 2.0);
    let mut by_span: Vec<_> = steps.iter().collect();
    by_span.sort_by_key(|(_, a, _)| a.from.abs_diff(a.to));
    for (_, a, text) in by_span {
        let (lo, hi) = (a.from.min(a.to), a.from.max(a.to));
        let tw = text_w(text, LABEL_CHAR_W);
        if lo == hi {
            let slot = gaps.get_mut(lo).unwrap_or(&mut right);
            *slot = slot.max(LOOP_W + 16.0 + tw);
        } else if let Some(span) = gaps.get_mut(lo..hi) {
            let short = (tw + 24.0 - span.iter().sum::<f64>()).max(0.0);
            let share = (short / span.len() as f64).ceil();
            for g in span {
                *g += share;
            }
        }
    }
    let (mut xs, mut x) = (Vec::new(), MARGIN + box_w.first().map_or(0.0, |w| w / 2.0));
    for g in gaps.iter().chain([&0.0]).take(names.len()) {
        xs.push(x);
        x += g;
    }
    let width = (xs.last().map_or(0.0, |x| x + right) + MARGIN).max(200.0);
    let bottom = FIRST_ROW + steps.len() as f64 * ROW_H - ROW_H / 2.0;

    // Writing to a String cannot fail, so the fmt::Results below are ignored.
    let mut out = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="seq" role="img" aria-labelledby="{id}-title" aria-describedby="{id}-desc" viewBox="0 0 {width} {}" width="100%" fill="currentColor" font-family="system-ui, sans-serif" font-size="13"><title id="{id}-title">{}</title><desc id="{id}-desc">"#,
        bottom + MARGIN,
        escape(title)
    );
    for (n, a, text) in &steps {
        let mut line = format!("{text} ({} → {})", name(a.from), name(a.to));
        for kind in kinds(a, highlight == Some(n - 1)) {
            line = format!("{line}, {}", kind.replace("highlight", "current step"));
        }
        let _ = writeln!(out, "{}.", escape(&line));
    }
    out.push_str("</desc><defs>");
    // One marker per colour: `context-stroke` would need only one, but browser support is thin.
    for (kind, fill) in [("plain", INK), ("error", ERROR), ("highlight", HIGHLIGHT)] {
        let _ = write!(
            out,
            r#"<marker id="{id}-{kind}" class="seq-head-{kind}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="9" markerHeight="9" markerUnits="userSpaceOnUse" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="{fill}"/></marker>"#
        );
    }
    out.push_str("</defs>");
    for ((name, x), w) in names.iter().zip(&xs).zip(&box_w) {
        let _ = write!(
            out,
            r#"<g class="seq-participant"><line class="seq-lifeline" x1="{x}" y1="{}" x2="{x}" y2="{bottom}" stroke="currentColor" stroke-opacity="0.45" stroke-dasharray="3 4"/><rect x="{}" y="{BOX_TOP}" width="{w}" height="{BOX_H}" rx="4" fill="none" stroke="currentColor"/><text x="{x}" y="{}" text-anchor="middle" font-weight="600">{}</text></g>"#,
            BOX_TOP + BOX_H,
            x - w / 2.0,
            BOX_TOP + BOX_H / 2.0 + 5.0,
            escape(name),
        );
    }
    let on = |yes: bool, attr| if yes { attr } else { "" };
    for (row, (n, a, text)) in steps.iter().enumerate() {
        let y = FIRST_ROW + row as f64 * ROW_H;
        let (x1, x2) = (xs.get(a.from).copied(), xs.get(a.to).copied());
        let (x1, x2) = (x1.unwrap_or(0.0), x2.unwrap_or(0.0));
        let current = highlight == Some(n - 1);
        let (colour, head, stroke_w) = match (current, a.error) {
            (true, _) => (HIGHLIGHT, "highlight", 2.5),
            (false, true) => (ERROR, "error", 1.25),
            (false, false) => (INK, "plain", 1.25),
        };
        let class: String = kinds(a, current).map(|k| format!(" seq-{k}")).collect();
        let (tw, mid) = (text_w(text, LABEL_CHAR_W), f64::midpoint(x1, x2));
        // A self-message loops right, its label beside the loop; others are labelled mid-line.
        let (shape, left, hit_w, tx, ty, anchor) = if a.from == a.to {
            let top = y - LOOP_H + 2.0;
            let d = format!(r#"path d="M{x1},{top} h{LOOP_W} v{LOOP_H} h-{LOOP_W}""#);
            let end = x1 + LOOP_W;
            (d, x1, LOOP_W + 10.0 + tw, end + 6.0, y - 1.0, "start")
        } else {
            let d = format!(r#"line x1="{x1}" y1="{y}" x2="{x2}" y2="{y}""#);
            (d, x1.min(x2), (x1 - x2).abs(), mid, y - 6.0, "middle")
        };
        // The transparent box widens the click target beyond a thin line and its text.
        let _ = write!(
            out,
            r##"<a href="#step-{n}" class="seq-arrow{class}"{}><rect x="{left}" y="{}" width="{hit_w}" height="26" fill="transparent"/><{shape} fill="none" stroke="{colour}" stroke-width="{stroke_w}" marker-end="url(#{id}-{head})"{}/><text x="{tx}" y="{ty}" text-anchor="{anchor}" font-family="{MONO}" font-size="11" fill="{colour}"{}>{}</text></a>"##,
            on(current, r#" aria-current="step""#),
            y - 20.0,
            on(a.redirect, r#" stroke-dasharray="6 4""#),
            on(current, r#" font-weight="700""#),
            escape(text)
        );
    }
    out + "</svg>"
}

/// Which of the `seq-*` kinds an arrow is, in a fixed order so the output is deterministic.
fn kinds(a: &Arrow, current: bool) -> impl Iterator<Item = &'static str> {
    let (e, h, r) = (a.error, current, a.redirect);
    let all = [(e, "error"), (h, "highlight"), (r, "redirect")];
    all.into_iter().filter_map(|(on, kind)| on.then_some(kind))
}

fn text_w(s: &str, char_w: f64) -> f64 {
    s.chars().count() as f64 * char_w
}

fn shorten(s: &str) -> String {
    if s.chars().count() <= MAX_LABEL {
        return s.to_owned();
    }
    s.chars().take(MAX_LABEL - 1).chain(['…']).collect()
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(' '),
            // XML 1.0 forbids these even as references; one would make the whole page unparseable.
            c if c.is_control() || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
    out
}

/// Marker and title ids are document-wide, and a page may show several diagrams.
fn id_prefix(title: &str, participants: &[&str]) -> String {
    let mut h = 0x811c_9dc5_u32;
    for b in title
        .bytes()
        .chain(participants.iter().flat_map(|p| p.bytes().chain([0])))
    {
        h = (h ^ u32::from(b)).wrapping_mul(0x0100_0193);
    }
    format!("seq-{h:08x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    const WHO: [&str; 4] = ["Browser", "Client", "Authorization server", "API"];

    fn arrow(from: usize, to: usize, label: &str) -> Arrow {
        let (label, error, redirect) = (label.to_owned(), false, false);
        Arrow {
            from,
            to,
            label,
            error,
            redirect,
        }
    }

    fn svg(arrows: &[Arrow], highlight: Option<usize>) -> String {
        let svg = sequence_svg("t", &WHO, arrows, highlight);
        assert_eq!(well_formed(&svg), Ok(()), "{svg}");
        svg
    }

    /// Balanced tags, text only inside the root, and only the five predefined entities.
    fn well_formed(xml: &str) -> Result<(), String> {
        let known = ["amp;", "lt;", "gt;", "quot;", "apos;"];
        let entity = |e: &str| known.iter().any(|k| e.starts_with(k));
        let (mut stack, mut rest) = (Vec::new(), xml);
        while let Some((text, tail)) = rest.split_once('<') {
            let (tag, after) = tail.split_once('>').ok_or("unterminated tag")?;
            let stray = stack.is_empty() && !text.trim().is_empty();
            if stray || ![text, tag].iter().all(|s| s.split('&').skip(1).all(entity)) {
                return Err(format!("bad text or entity near <{tag}>"));
            }
            rest = after;
            if let Some(name) = tag.strip_prefix('/') {
                if stack.pop() != Some(name) {
                    return Err(format!("mismatched </{name}>"));
                }
            } else if !tag.ends_with('/') {
                stack.push(tag.split_whitespace().next().unwrap_or_default());
            }
        }
        match (stack.is_empty(), rest.trim().is_empty()) {
            (true, true) => Ok(()),
            _ => Err(format!("unclosed {stack:?} or trailing {rest:?}")),
        }
    }

    #[test]
    fn escapes_every_text() {
        let evil = r#"<script>&"'"#;
        let svg = sequence_svg(evil, &[evil, "b"], &[arrow(0, 1, evil)], None);
        assert_eq!(well_formed(&svg), Ok(()));
        assert!(!svg.contains("<script"));
        // The title, the name, the label, and the name and label again in <desc>.
        assert_eq!(svg.matches("&lt;script&gt;&amp;&quot;&apos;").count(), 5);
        assert_eq!(escape("a\u{0}b\nc"), "ab c");
        assert!(well_formed("<a><b></a></b>").is_err() && well_formed("<a>&x;</a>").is_err());
    }

    #[test]
    fn long_labels_are_cut() {
        let svg = svg(&[arrow(0, 1, &"x".repeat(200))], None);
        assert!(svg.contains(&format!(">1. {}…<", "x".repeat(59))));
        assert!(!svg.contains(&"x".repeat(60)));
    }

    #[test]
    fn numbers_and_links_each_step() {
        let get = |from, to| arrow(from, to, "GET");
        let svg = svg(&[get(0, 1), get(1, 2), get(2, 3)], None);
        for n in 1..=3 {
            assert!(svg.contains(&format!(r##"<a href="#step-{n}""##)));
            assert!(svg.contains(&format!(">{n}. GET<")));
        }
        assert!(!svg.contains("#step-4"));
    }

    #[test]
    fn highlight_marks_exactly_one_arrow() {
        let mut arrows = [arrow(0, 1, "a"), arrow(1, 2, "b"), arrow(2, 1, "400")];
        arrows[2].error = true;
        let svg = svg(&arrows, Some(1));
        assert_eq!(svg.matches(r#"aria-current="step""#).count(), 1);
        assert_eq!(svg.matches("seq-highlight").count(), 1);
        let current = r##"<a href="#step-2" class="seq-arrow seq-highlight" aria-current="step">"##;
        assert!(svg.contains(current));
        assert!(svg.contains(r#"class="seq-arrow seq-error""#) && svg.contains(ERROR));
        assert!(!sequence_svg("t", &WHO, &arrows, Some(9)).contains("aria-current"));
    }

    #[test]
    fn out_of_range_participant_is_skipped() {
        let gone = [arrow(0, 7, "gone"), arrow(usize::MAX, 0, "gone")];
        let mut arrows = vec![arrow(0, 1, "a")];
        arrows.extend(gone.iter().cloned());
        arrows.push(arrow(1, 0, "b"));
        let svg = svg(&arrows, Some(1));
        assert!(!svg.contains("gone") && !svg.contains("#step-2") && !svg.contains("aria-current"));
        assert!(svg.contains(r##"href="#step-4""##) && svg.contains("4. b"));
        assert_eq!(well_formed(&sequence_svg("", &[], &gone, Some(0))), Ok(()));
    }

    #[test]
    fn self_message_renders_as_loop() {
        let mut arrows = [arrow(3, 3, "check token")];
        arrows[0].redirect = true;
        let svg = svg(&arrows, None);
        assert!(svg.contains(&format!("h{LOOP_W} v{LOOP_H} h-{LOOP_W}")));
        assert!(svg.contains(">1. check token<") && svg.contains("seq-redirect"));
    }

    #[test]
    fn output_is_responsive_and_deterministic() {
        let arrows = [arrow(0, 2, "GET"), arrow(2, 0, "302"), arrow(1, 1, "x")];
        let svg = svg(&arrows, Some(0));
        let root = svg.split('>').next().unwrap_or_default();
        assert!(root.starts_with("<svg ") && root.contains(r#"viewBox="0 0 "#));
        assert!(root.contains(r#" width="100%""#));
        assert!(!root.contains(" height=") && !svg.contains("style"));
        assert_eq!(svg, sequence_svg("t", &WHO, &arrows, Some(0)));
    }
}
