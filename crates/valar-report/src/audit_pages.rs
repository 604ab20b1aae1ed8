use crate::ReportError;
use crate::canvas::{self, BLUE, GREY, INK, NOTE, VERMILLION};
use image::ImageEncoder;
use plotters::prelude::*;
use serde::Serialize;
use std::path::Path;

/// One face on a contact sheet: RGB pixels, `size`×`size`, and a caption.
#[derive(Debug, Clone)]
pub struct Tile {
    /// Interleaved RGB, `size * size * 3` bytes.
    pub rgb: Vec<u8>,
    /// Side length of `rgb`.
    pub size: u32,
    /// Up to two short lines (`\n` separated) under the face.
    pub caption: String,
    /// What the tile shows, for the sheet's tile index (`source:row`).
    pub key: String,
}

/// A heading and the faces under it: a duplicate group, or one flag's worst faces.
#[derive(Debug, Clone)]
pub struct SheetSection {
    /// One line above the faces.
    pub heading: String,
    /// The faces, drawn left to right and wrapped.
    pub tiles: Vec<Tile>,
}

/// Where a tile landed on a sheet, in sheet pixels: so tools (and tests) can find a face.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TilePlace {
    /// The tile's key.
    pub key: String,
    /// Left edge.
    pub x: u32,
    /// Top edge.
    pub y: u32,
    /// Side length.
    pub size: u32,
}

/// Sheet width: the report's figure width.
const WIDTH: u32 = canvas::FULL.0;
/// Faces are drawn at this side length (nearest-neighbour scaled), large enough to judge.
pub const TILE: u32 = 144;
const GAP: u32 = 24;
const MARGIN: u32 = 40;
const CAPTION_LINE: u32 = 26;
const HEADING: u32 = 44;

/// Draws a contact sheet, writes it to `path` atomically, and returns where each
/// face was drawn. Sections start on a new line; faces wrap within a section.
pub fn contact_sheet(
    path: &Path,
    title: &str,
    sections: &[SheetSection],
) -> Result<Vec<TilePlace>, ReportError> {
    canvas::ensure_fonts()?;
    let per_line = ((WIDTH - 2 * MARGIN + GAP) / (TILE + GAP)).max(1) as usize;
    let cell_h = TILE + 2 * CAPTION_LINE + GAP;
    let mut places = Vec::new();
    let mut headings = Vec::new();
    let mut y = MARGIN + 70;
    for section in sections {
        headings.push((section.heading.clone(), y));
        y += HEADING;
        for line in section.tiles.chunks(per_line) {
            for (i, tile) in line.iter().enumerate() {
                let x = MARGIN + i as u32 * (TILE + GAP);
                places.push((
                    tile,
                    TilePlace {
                        key: tile.key.clone(),
                        x,
                        y,
                        size: TILE,
                    },
                ));
            }
            y += cell_h;
        }
        y += GAP / 2;
    }
    let height = (y + MARGIN).max(300);
    let mut pixels = vec![255u8; WIDTH as usize * height as usize * 3];
    for (tile, place) in &places {
        blit(&mut pixels, tile, place);
    }
    let draw_error = |message: String| ReportError::Draw {
        figure: path.display().to_string(),
        message,
    };
    {
        let root = BitMapBackend::with_buffer(&mut pixels, (WIDTH, height)).into_drawing_area();
        let text = |s: &str, x: u32, y: u32, style: &TextStyle| {
            root.draw_text(s, style, (x as i32, y as i32))
                .map_err(|e| draw_error(e.to_string()))
        };
        text(
            title,
            MARGIN,
            MARGIN,
            &canvas::bold(canvas::TITLE).color(&INK),
        )?;
        for (heading, hy) in &headings {
            text(
                heading,
                MARGIN,
                *hy + 6,
                &canvas::bold(canvas::NOTE).color(&INK),
            )?;
        }
        let caption = canvas::font(20.0).color(&INK);
        for (tile, place) in &places {
            for (k, line) in tile.caption.lines().take(2).enumerate() {
                text(
                    line,
                    place.x,
                    place.y + TILE + 4 + k as u32 * CAPTION_LINE,
                    &caption.clone(),
                )?;
            }
        }
        if sections.is_empty() {
            text(
                "nothing found",
                MARGIN,
                MARGIN + 90,
                &canvas::font(NOTE).color(&GREY),
            )?;
        }
        root.present().map_err(|e| draw_error(e.to_string()))?;
    }
    write_rgb_png(path, &pixels, WIDTH, height)?;
    Ok(places.into_iter().map(|(_, p)| p).collect())
}

/// Copies a tile into the sheet, scaled to [`TILE`] by nearest neighbour so every
/// source pixel stays visible as it is.
fn blit(sheet: &mut [u8], tile: &Tile, place: &TilePlace) {
    let s = tile.size.max(1);
    if tile.rgb.len() < (s * s * 3) as usize {
        return;
    }
    for ty in 0..place.size {
        let sy = ty * s / place.size;
        for tx in 0..place.size {
            let sx = tx * s / place.size;
            let src = ((sy * s + sx) * 3) as usize;
            let dst = (((place.y + ty) * WIDTH + place.x + tx) * 3) as usize;
            if let Some(d) = sheet.get_mut(dst..dst + 3) {
                d.copy_from_slice(&tile.rgb[src..src + 3]);
            }
        }
    }
}

fn write_rgb_png(path: &Path, pixels: &[u8], width: u32, height: u32) -> Result<(), ReportError> {
    let mut png = Vec::new();
    image::codecs::png::PngEncoder::new(&mut png)
        .write_image(pixels, width, height, image::ExtendedColorType::Rgb8)
        .map_err(|e| ReportError::Draw {
            figure: path.display().to_string(),
            message: format!("encoding PNG: {e}"),
        })?;
    valar_core::write_atomic(path, |w| w.write_all(&png))?;
    Ok(())
}

/// One measure's distribution over every face, and the threshold that flags faces.
#[derive(Debug, Clone)]
pub struct ScoreHistogram {
    /// Panel title, naming the measure.
    pub title: String,
    /// The measure of every face.
    pub values: Vec<f64>,
    /// The flag's threshold, drawn as a line.
    pub threshold: Option<f64>,
}

/// Draws one histogram panel per measure (two columns) and writes the PNG.
pub fn score_histograms(
    path: &Path,
    title: &str,
    panels: &[ScoreHistogram],
) -> Result<(), ReportError> {
    let rows = panels.len().div_ceil(2).max(1) as u32;
    let size = (WIDTH, 160 + rows * 460);
    canvas::write_png(path, size, |root| {
        let area = canvas::titled(root, title)?;
        let cells = area.split_evenly((rows as usize, 2));
        for (panel, cell) in panels.iter().zip(cells.iter()) {
            draw_histogram(cell, panel)?;
        }
        Ok(())
    })
}

fn draw_histogram(area: &canvas::Area<'_>, panel: &ScoreHistogram) -> canvas::Drawn {
    const BINS: usize = 40;
    let finite: Vec<f64> = panel
        .values
        .iter()
        .copied()
        .filter(|v| v.is_finite())
        .collect();
    let mut lo = finite.iter().copied().fold(f64::INFINITY, f64::min);
    let mut hi = finite.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if let Some(t) = panel.threshold {
        lo = lo.min(t);
        hi = hi.max(t);
    }
    if !lo.is_finite() || !hi.is_finite() {
        (lo, hi) = (0.0, 1.0);
    }
    if hi - lo < 1e-9 {
        hi = lo + 1.0;
    }
    let width = (hi - lo) / BINS as f64;
    let mut counts = [0u64; BINS];
    for v in &finite {
        let b = (((v - lo) / width) as usize).min(BINS - 1);
        counts[b] += 1;
    }
    let top = counts.iter().copied().max().unwrap_or(0).max(1) as f64 * 1.1;
    let mut chart = ChartBuilder::on(area)
        .margin(24)
        .caption(&panel.title, canvas::bold(canvas::PANEL_TITLE))
        .x_label_area_size(60)
        .y_label_area_size(90)
        .build_cartesian_2d(lo..hi, 0.0..top)?;
    canvas::styled_mesh!(chart).y_desc("faces").draw()?;
    chart.draw_series(counts.iter().enumerate().map(|(i, &c)| {
        let x0 = lo + i as f64 * width;
        Rectangle::new([(x0, 0.0), (x0 + width, c as f64)], BLUE.mix(0.8).filled())
    }))?;
    if let Some(t) = panel.threshold {
        chart.draw_series(std::iter::once(PathElement::new(
            vec![(t, 0.0), (t, top)],
            VERMILLION.stroke_width(4),
        )))?;
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn tile(v: u8, key: &str) -> Tile {
        Tile {
            rgb: vec![v; 16 * 16 * 3],
            size: 16,
            caption: format!("{key}\nline two"),
            key: key.into(),
        }
    }

    #[test]
    fn tiles_land_where_the_index_says() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sheet.png");
        let sections = vec![
            SheetSection {
                heading: "group 1".into(),
                tiles: vec![tile(10, "a:1"), tile(200, "a:2")],
            },
            SheetSection {
                heading: "group 2".into(),
                tiles: vec![tile(90, "a:3")],
            },
        ];
        let places = contact_sheet(&path, "Duplicates", &sections).unwrap();
        assert_eq!(places.len(), 3);
        let img = image::open(&path).unwrap().to_rgb8();
        for (place, v) in places.iter().zip([10u8, 200, 90]) {
            let p = img.get_pixel(place.x + place.size / 2, place.y + place.size / 2);
            assert_eq!(p.0, [v, v, v], "{place:?}");
        }
        assert!(places[2].y > places[0].y, "a section starts a new line");
    }

    #[test]
    fn histograms_draw_bars() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("scores.png");
        let panels = vec![ScoreHistogram {
            title: "edge std".into(),
            values: (0..100).map(f64::from).collect(),
            threshold: Some(34.2),
        }];
        score_histograms(&path, "Scores", &panels).unwrap();
        let img = image::open(&path).unwrap().to_rgb8();
        let blue = img.pixels().filter(|p| p.0[2] > 150 && p.0[0] < 80).count();
        assert!(blue > 1000, "{blue} bar pixels");
    }
}
