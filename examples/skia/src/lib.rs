//! A tiny-skia scene, different in every instance of the batch (gpu.instance_id picks the colours,
//! the star's points, the rotation): linear and radial gradients, filled and stroked paths (round
//! joins, a dashed curve), all anti-aliased; a slow spin over a few frames.
//!
//! Exports: `render(size, frames)` draws `frames` frames of size x size pixels and presents each;
//! `main()` is `render(256, 12)`.

#[path = "../../../include/wasmgpu.rs"]
mod wasmgpu;

use std::f32::consts::PI;
use tiny_skia::{
    Color, FillRule, GradientStop, LineCap, LineJoin, LinearGradient, Paint, PathBuilder, Pixmap, Point,
    RadialGradient, Shader, SpreadMode, Stroke, StrokeDash, Transform,
};

/// The scene is drawn in a 256 x 256 space, scaled to the frame size.
const SPACE: f32 = 256.0;

/// HSV (h in turns) to an opaque colour.
fn hsv(h: f32, s: f32, v: f32) -> Color {
    let h = (h - h.floor()) * 6.0;
    let i = h.floor();
    let f = h - i;
    let (p, q, t) = (v * (1.0 - s), v * (1.0 - s * f), v * (1.0 - s * (1.0 - f)));
    let (r, g, b) = match i as i32 {
        0 => (v, t, p),
        1 => (q, v, p),
        2 => (p, v, t),
        3 => (p, q, v),
        4 => (t, p, v),
        _ => (v, p, q),
    };
    Color::from_rgba(r, g, b, 1.0).unwrap()
}

fn with_alpha(mut c: Color, a: f32) -> Color {
    c.set_alpha(a);
    c
}

fn shader_paint(shader: Shader<'static>) -> Paint<'static> {
    let mut paint = Paint::default();
    paint.shader = shader;
    paint.anti_alias = true;
    paint
}

fn colour_paint(c: Color) -> Paint<'static> {
    let mut paint = Paint::default();
    paint.set_color(c);
    paint.anti_alias = true;
    paint
}

struct Scene {
    hue: f32,
    points: usize,
    tilt: f32,
    inner: f32,
}

impl Scene {
    fn new(id: u32) -> Self {
        Scene {
            hue: (id as f32 * 0.618_034).fract(),
            points: 5 + (id % 4) as usize,
            tilt: (id * 23 % 360) as f32,
            inner: 0.38 + 0.04 * (id % 3) as f32,
        }
    }

    fn draw(&self, pixmap: &mut Pixmap, frame: u32, scale: f32) {
        let base = Transform::from_scale(scale, scale);
        pixmap.fill(Color::BLACK);

        // Sky: a diagonal linear gradient.
        let sky = LinearGradient::new(
            Point::from_xy(0.0, 0.0),
            Point::from_xy(SPACE, SPACE),
            vec![
                GradientStop::new(0.0, hsv(self.hue, 0.55, 0.30)),
                GradientStop::new(0.6, hsv(self.hue + 0.08, 0.60, 0.55)),
                GradientStop::new(1.0, hsv(self.hue + 0.15, 0.45, 0.85)),
            ],
            SpreadMode::Pad,
            Transform::identity(),
        )
        .unwrap();
        let all = PathBuilder::from_rect(tiny_skia::Rect::from_xywh(0.0, 0.0, SPACE, SPACE).unwrap());
        pixmap.fill_path(&all, &shader_paint(sky), FillRule::Winding, base, None);

        // Glow: a radial gradient fading out.
        let glow = RadialGradient::new(
            Point::from_xy(88.0, 80.0),
            Point::from_xy(96.0, 88.0),
            90.0,
            vec![
                GradientStop::new(0.0, with_alpha(hsv(self.hue + 0.5, 0.25, 1.0), 0.95)),
                GradientStop::new(0.45, with_alpha(hsv(self.hue + 0.5, 0.6, 0.9), 0.45)),
                GradientStop::new(1.0, with_alpha(hsv(self.hue + 0.5, 0.8, 0.6), 0.0)),
            ],
            SpreadMode::Pad,
            Transform::identity(),
        )
        .unwrap();
        let disc = PathBuilder::from_circle(96.0, 88.0, 90.0).unwrap();
        pixmap.fill_path(&disc, &shader_paint(glow), FillRule::Winding, base, None);

        // Hills: a cubic path with a vertical gradient.
        let mut pb = PathBuilder::new();
        pb.move_to(0.0, 200.0);
        pb.cubic_to(60.0, 150.0 + 10.0 * (self.points as f32), 150.0, 240.0, 256.0, 180.0);
        pb.line_to(256.0, 256.0);
        pb.line_to(0.0, 256.0);
        pb.close();
        let hills = pb.finish().unwrap();
        let ground = LinearGradient::new(
            Point::from_xy(0.0, 160.0),
            Point::from_xy(0.0, 256.0),
            vec![
                GradientStop::new(0.0, hsv(self.hue + 0.33, 0.65, 0.55)),
                GradientStop::new(1.0, hsv(self.hue + 0.38, 0.75, 0.20)),
            ],
            SpreadMode::Pad,
            Transform::identity(),
        )
        .unwrap();
        pixmap.fill_path(&hills, &shader_paint(ground), FillRule::Winding, base, None);

        // A dashed curve across the sky.
        let mut pb = PathBuilder::new();
        pb.move_to(16.0, 40.0);
        pb.quad_to(128.0, 8.0 + 6.0 * self.points as f32, 240.0, 56.0);
        let curve = pb.finish().unwrap();
        let dashed = Stroke {
            width: 3.0,
            line_cap: LineCap::Round,
            dash: StrokeDash::new(vec![10.0, 7.0], frame as f32 * 2.0),
            ..Stroke::default()
        };
        pixmap.stroke_path(&curve, &colour_paint(with_alpha(Color::WHITE, 0.7)), &dashed, base, None);

        // The star: filled with a gradient, stroked with round joins, spinning a little each frame.
        let (cx, cy, outer) = (150.0, 138.0, 70.0);
        let inner = outer * self.inner;
        let mut pb = PathBuilder::new();
        let n = self.points * 2;
        for k in 0..n {
            let a = (k as f32 / n as f32) * 2.0 * PI - PI / 2.0;
            let r = if k % 2 == 0 { outer } else { inner };
            let (x, y) = (cx + r * a.cos(), cy + r * a.sin());
            if k == 0 {
                pb.move_to(x, y)
            } else {
                pb.line_to(x, y)
            }
        }
        pb.close();
        let star = pb.finish().unwrap();
        let spin = Transform::from_rotate_at(self.tilt + frame as f32 * 6.0, cx, cy);
        let at = base.pre_concat(spin);
        let fill = LinearGradient::new(
            Point::from_xy(cx - outer, cy - outer),
            Point::from_xy(cx + outer, cy + outer),
            vec![
                GradientStop::new(0.0, hsv(self.hue + 0.05, 0.85, 1.0)),
                GradientStop::new(0.5, hsv(self.hue + 0.15, 0.95, 0.95)),
                GradientStop::new(1.0, hsv(self.hue + 0.25, 0.9, 0.85)),
            ],
            SpreadMode::Reflect,
            Transform::identity(),
        )
        .unwrap();
        pixmap.fill_path(&star, &shader_paint(fill), FillRule::Winding, at, None);
        let outline = Stroke { width: 4.0, line_join: LineJoin::Round, ..Stroke::default() };
        pixmap.stroke_path(&star, &colour_paint(with_alpha(Color::WHITE, 0.85)), &outline, at, None);

        // A ring of small discs, one per star point, in shifting hues.
        for k in 0..self.points {
            let a = k as f32 / self.points as f32 * 2.0 * PI + frame as f32 * 0.1;
            let (x, y) = (60.0 + 34.0 * a.cos(), 190.0 + 20.0 * a.sin());
            let dot = PathBuilder::from_circle(x, y, 7.0).unwrap();
            let c = hsv(self.hue + k as f32 / self.points as f32, 0.7, 1.0);
            pixmap.fill_path(&dot, &colour_paint(c), FillRule::Winding, base, None);
            let ring = Stroke { width: 1.5, ..Stroke::default() };
            pixmap.stroke_path(&dot, &colour_paint(Color::BLACK), &ring, base, None);
        }
    }
}

/// Draw `frames` frames of `size` x `size` pixels (1..=2048), presenting each; returns how many.
#[no_mangle]
pub extern "C" fn render(size: i32, frames: i32) -> i32 {
    let size = size.clamp(1, 2048) as u32;
    let scene = Scene::new(wasmgpu::instance_id());
    let mut pixmap = Pixmap::new(size, size).unwrap();
    let scale = size as f32 / SPACE;
    for frame in 0..frames.max(0) as u32 {
        scene.draw(&mut pixmap, frame, scale);
        // Every pixel is opaque, so tiny-skia's premultiplied RGBA is plain RGBA.
        wasmgpu::present(pixmap.data(), size, size);
    }
    frames
}

#[no_mangle]
pub extern "C" fn main() {
    render(256, 12);
}
