use crate::ReportError;
use image::ImageEncoder;
use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::{FontDesc, FontFamily, FontStyle, register_font};
use std::path::Path;
use std::sync::OnceLock;

/// Figure size in pixels: a 900 × 600 figure at twice the scale, sharp in print.
pub(crate) const FULL: (u32, u32) = (1800, 1200);
/// The size of figures with two square panels side by side, which would leave
/// bands of white at 3:2.
pub(crate) const WIDE: (u32, u32) = (1800, 1000);

/// The name the embedded font is registered under with plotters.
const FAMILY: &str = "valar-sans";
static REGULAR: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");
static BOLD: &[u8] = include_bytes!("../assets/DejaVuSans-Bold.ttf");

/// Font sizes in pixels at the 2× scale.
pub(crate) const TITLE: f64 = 46.0;
pub(crate) const PANEL_TITLE: f64 = 38.0;
pub(crate) const AXIS: f64 = 36.0;
pub(crate) const TICK: f64 = 30.0;
pub(crate) const LEGEND: f64 = 30.0;
pub(crate) const NOTE: f64 = 26.0;

/// Okabe–Ito colours: distinguishable with every common colour-vision deficiency.
pub(crate) const BLUE: RGBColor = RGBColor(0, 114, 178);
pub(crate) const ORANGE: RGBColor = RGBColor(230, 159, 0);
pub(crate) const VERMILLION: RGBColor = RGBColor(213, 94, 0);
pub(crate) const GREEN: RGBColor = RGBColor(0, 158, 115);
pub(crate) const GREY: RGBColor = RGBColor(160, 160, 160);
pub(crate) const LIGHT_GREY: RGBColor = RGBColor(205, 205, 205);
pub(crate) const INK: RGBColor = RGBColor(34, 34, 34);
pub(crate) const GRID: RGBColor = RGBColor(228, 228, 228);

/// The colour of a dimension, the same in every figure.
pub(crate) fn dim_colour(dim: valar_core::Dimension) -> RGBColor {
    match dim {
        valar_core::Dimension::Valence => BLUE,
        valar_core::Dimension::Arousal => VERMILLION,
    }
}

/// The dimension's name with a capital, for titles and legends.
pub(crate) fn dim_title(dim: valar_core::Dimension) -> &'static str {
    match dim {
        valar_core::Dimension::Valence => "Valence",
        valar_core::Dimension::Arousal => "Arousal",
    }
}

/// The embedded regular font at `size` pixels.
pub(crate) fn font(size: f64) -> FontDesc<'static> {
    FontDesc::new(FontFamily::Name(FAMILY), size, FontStyle::Normal)
}

/// The embedded bold font at `size` pixels.
pub(crate) fn bold(size: f64) -> FontDesc<'static> {
    FontDesc::new(FontFamily::Name(FAMILY), size, FontStyle::Bold)
}

/// Registers the embedded fonts with plotters once per process.
pub(crate) fn ensure_fonts() -> Result<(), ReportError> {
    static REGISTERED: OnceLock<Result<(), &'static str>> = OnceLock::new();
    let result = REGISTERED.get_or_init(|| {
        register_font(FAMILY, FontStyle::Normal, REGULAR).map_err(|_| "DejaVuSans.ttf")?;
        register_font(FAMILY, FontStyle::Bold, BOLD).map_err(|_| "DejaVuSans-Bold.ttf")?;
        Ok(())
    });
    result.map_err(ReportError::Font)
}

/// What a drawing function returns: plotters' errors, boxed.
pub(crate) type Drawn = Result<(), Box<dyn std::error::Error>>;

/// The area a figure is drawn on.
pub(crate) type Area<'a> = DrawingArea<BitMapBackend<'a>, Shift>;

/// Draws a figure on a white canvas and encodes it as PNG bytes.
pub(crate) fn render(
    name: &str,
    (width, height): (u32, u32),
    draw: impl FnOnce(&Area<'_>) -> Drawn,
) -> Result<Vec<u8>, ReportError> {
    ensure_fonts()?;
    let draw_error = |message: String| ReportError::Draw {
        figure: name.to_string(),
        message,
    };
    let mut pixels = vec![255u8; width as usize * height as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut pixels, (width, height)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| draw_error(e.to_string()))?;
        draw(&root).map_err(|e| draw_error(e.to_string()))?;
        root.present().map_err(|e| draw_error(e.to_string()))?;
    }
    let mut png = Vec::new();
    image::codecs::png::PngEncoder::new(&mut png)
        .write_image(&pixels, width, height, image::ExtendedColorType::Rgb8)
        .map_err(|e| draw_error(format!("encoding PNG: {e}")))?;
    Ok(png)
}

/// Draws a figure and writes it to `path` atomically.
pub(crate) fn write_png(
    path: &Path,
    size: (u32, u32),
    draw: impl FnOnce(&Area<'_>) -> Drawn,
) -> Result<(), ReportError> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let png = render(&name, size, draw)?;
    valar_core::write_atomic(path, |w| w.write_all(&png))?;
    Ok(())
}

/// Draws a figure title at the top of `root` and returns the area below it.
pub(crate) fn titled<'a>(
    root: &Area<'a>,
    title: &str,
) -> Result<Area<'a>, Box<dyn std::error::Error>> {
    // The same top margin as ChartBuilder's captions, so every title sits alike.
    Ok(root.margin(30, 0, 0, 0).titled(title, bold(TITLE))?)
}

/// A chart on linear f64 axes, the kind most figures draw.
pub(crate) type Chart<'a, 'b> =
    ChartContext<'a, BitMapBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// A chart builder for a whole figure in the house style: `title` as a bold caption,
/// 30 px margins (50 on the right, for the last tick label) and room for the x labels;
/// `y_label_area` is the room the y labels need.
pub(crate) fn figure_chart<'a, 'b>(
    root: &'a Area<'b>,
    title: &str,
    y_label_area: u32,
) -> ChartBuilder<'a, 'b, BitMapBackend<'b>> {
    let mut builder = ChartBuilder::on(root);
    builder
        .caption(title, bold(TITLE))
        .margin(30)
        .margin_right(50)
        .x_label_area_size(100)
        .y_label_area_size(y_label_area);
    builder
}

/// The outline of a histogram of `shares` over equal bins from `lo` to `hi`: a step line
/// that starts and ends on the x axis.
pub(crate) fn steps(shares: &[f64], lo: f64, hi: f64) -> Vec<(f64, f64)> {
    let width = (hi - lo) / shares.len() as f64;
    let mut points = vec![(lo, 0.0)];
    for (i, &s) in shares.iter().enumerate() {
        let x0 = lo + i as f64 * width;
        points.push((x0, s));
        points.push((x0 + width, s));
    }
    points.push((hi, 0.0));
    points
}

/// Applies the house style to a chart's mesh: embedded fonts, light major grid only,
/// dark axes. A macro because `MeshStyle`'s bounds make a generic function unwieldy.
macro_rules! styled_mesh {
    ($chart:expr) => {
        $chart
            .configure_mesh()
            .label_style($crate::canvas::font($crate::canvas::TICK).color(&$crate::canvas::INK))
            .axis_desc_style($crate::canvas::font($crate::canvas::AXIS).color(&$crate::canvas::INK))
            .bold_line_style($crate::canvas::GRID.stroke_width(2))
            .light_line_style(plotters::style::TRANSPARENT)
            .axis_style($crate::canvas::INK.stroke_width(2))
            .set_all_tick_mark_size(10)
    };
}
pub(crate) use styled_mesh;

/// Draws the legend in the house style at `position`.
macro_rules! styled_legend {
    ($chart:expr, $position:expr) => {
        $chart
            .configure_series_labels()
            .position($position)
            .label_font($crate::canvas::font($crate::canvas::LEGEND).color(&$crate::canvas::INK))
            .background_style(plotters::style::WHITE.mix(0.9))
            .border_style($crate::canvas::LIGHT_GREY.stroke_width(2))
            .margin(16)
            .legend_area_size(44)
            .draw()
    };
}
pub(crate) use styled_legend;

/// A legend swatch: a filled square in `colour`.
pub(crate) fn swatch<C: Color>(colour: C) -> impl Fn((i32, i32)) -> Rectangle<(i32, i32)> {
    let style = colour.filled();
    move |(x, y)| Rectangle::new([(x, y - 12), (x + 28, y + 12)], style)
}

/// A legend line: a short stroke in `style`.
pub(crate) fn legend_line(style: ShapeStyle) -> impl Fn((i32, i32)) -> PathElement<(i32, i32)> {
    move |(x, y)| PathElement::new(vec![(x, y), (x + 34, y)], style)
}

/// The viridis colour map at `t` in [0, 1]: perceptually uniform and readable in grey.
pub(crate) fn viridis(t: f64) -> RGBColor {
    const STOPS: [(u8, u8, u8); 9] = [
        (68, 1, 84),
        (71, 44, 122),
        (59, 81, 139),
        (44, 113, 142),
        (33, 144, 141),
        (39, 173, 129),
        (92, 200, 99),
        (170, 220, 50),
        (253, 231, 37),
    ];
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let pos = t * (STOPS.len() - 1) as f64;
    let i = (pos.floor() as usize).min(STOPS.len() - 2);
    let f = pos - i as f64;
    let mix = |a: u8, b: u8| (f64::from(a) + (f64::from(b) - f64::from(a)) * f).round() as u8;
    let (a, b) = (STOPS[i], STOPS[i + 1]);
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

/// A short number for labels: no trailing zeros, a true minus sign.
pub(crate) fn num(v: f64, decimals: usize) -> String {
    let s = format!("{v:.decimals$}");
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    };
    match s.as_str() {
        "-0" => "0".to_string(),
        _ => s.replace('-', "\u{2212}"),
    }
}

/// A count with thin-space thousands separators, as journals print them.
pub(crate) fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push('\u{2009}');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_short_with_true_minus() {
        assert_eq!(num(-0.5, 2), "\u{2212}0.5");
        assert_eq!(num(1.0, 1), "1");
        assert_eq!(num(-0.001, 2), "0");
        assert_eq!(num(0.125, 3), "0.125");
    }

    #[test]
    fn counts_group_thousands() {
        assert_eq!(count(7), "7");
        assert_eq!(count(1234), "1\u{2009}234");
        assert_eq!(count(1234567), "1\u{2009}234\u{2009}567");
    }

    #[test]
    fn steps_outline_each_bin_from_and_to_the_axis() {
        assert_eq!(
            steps(&[1.0, 3.0], -1.0, 1.0),
            vec![
                (-1.0, 0.0),
                (-1.0, 1.0),
                (0.0, 1.0),
                (0.0, 3.0),
                (1.0, 3.0),
                (1.0, 0.0)
            ]
        );
        assert_eq!(steps(&[2.0], -0.5, 0.5)[1..3], [(-0.5, 2.0), (0.5, 2.0)]);
    }

    #[test]
    fn viridis_runs_from_purple_to_yellow() {
        assert_eq!(viridis(0.0), RGBColor(68, 1, 84));
        assert_eq!(viridis(1.0), RGBColor(253, 231, 37));
        assert_eq!(viridis(f64::NAN), RGBColor(68, 1, 84));
        assert_eq!(viridis(0.5), RGBColor(33, 144, 141));
    }
}
