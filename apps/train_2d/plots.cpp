// PNG figures with cairo. Layout is in device pixels; every panel is a plot area (the picture)
// surrounded by margins that hold the title and the axes.
#include "plots.hpp"

#include <cairo.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <iterator>
#include <memory>
#include <numbers>
#include <stdexcept>
#include <string>
#include <vector>

#include "atomic_file.hpp"

namespace train2d {
namespace {

using flowgrad::Index;
using flowgrad::Shape;
using flowgrad::TensorF;

// ---------------------------------------------------------------------------------------------
// Layout.

struct Rect {
  double x, y, w, h;
};

// Margins around a plot area, in pixels.
struct Margins {
  double left, right, top, bottom;
};

struct PanelStyle {
  double plot_size;  // side of the square box that the plot area is fitted into
  Margins margins;
  double title_font;
  bool tick_labels;
};

// Big panels carry numeric axes; the left margin fits labels such as "−3.5".
constexpr PanelStyle kLargePanel{400, {60, 28, 46, 44}, 16, true};
// Gallery panels are thumbnails: a title and a frame, no axes, so many fit on one screen.
constexpr PanelStyle kSmallPanel{200, {10, 10, 32, 10}, 13, false};

constexpr double kTickFont = 12;
constexpr double kTickLength = 5;
constexpr double kTickLabelGap = 4;
// Ticks closer than this would make labels collide or the axis look busy.
constexpr double kMinTickSpacing = 60;
constexpr double kTitleGap = 14;  // from the title's baseline to the top of the frame

struct Size {
  double w, h;
};

// Equal scales on both axes, so that circles stay round: the extent is fitted into the square box
// of the style. Sides are whole pixels so that the frame stays crisp; extents more elongated than
// 4:1 are stretched rather than left as a sliver.
Size fitted_plot_size(const PanelStyle& s, const Extent& e) {
  const double aspect = (e.y1 - e.y0) / (e.x1 - e.x0);
  const double min_side = s.plot_size / 4;
  return {std::round(std::max(min_side, aspect > 1 ? s.plot_size / aspect : s.plot_size)),
          std::round(std::max(min_side, aspect > 1 ? s.plot_size : s.plot_size * aspect))};
}

// Panels keep the full width of the box, so that titles have room and side-by-side panels line
// up; only the height shrinks for a wide extent.
double panel_width(const PanelStyle& s) { return s.margins.left + s.plot_size + s.margins.right; }
double panel_height(const PanelStyle& s, const Extent& e) {
  return s.margins.top + fitted_plot_size(s, e).h + s.margins.bottom;
}

Rect plot_area(const PanelStyle& s, double panel_x, double panel_y, const Extent& e) {
  const Size size = fitted_plot_size(s, e);
  return {panel_x + s.margins.left + std::floor((s.plot_size - size.w) / 2),
          panel_y + s.margins.top, size.w, size.h};
}

// ---------------------------------------------------------------------------------------------
// Errors and validation: every failure of a writer names the file it was writing.

[[noreturn]] void fail(const std::string& path, const std::string& reason) {
  throw std::runtime_error("cannot write " + path + ": " + reason);
}

bool valid_extent(const Extent& e) {
  return std::isfinite(e.x0) && std::isfinite(e.x1) && std::isfinite(e.y0) && std::isfinite(e.y1) &&
         e.x1 > e.x0 && e.y1 > e.y0;
}

void check_extent(const std::string& path, const Extent& e) {
  if (!valid_extent(e)) fail(path, "the extent is empty or not finite");
}

void check_grid(const std::string& path, const DensityGrid& g) {
  check_extent(path, g.extent);
  if (g.nx <= 0 || g.ny <= 0 ||
      g.values.size() != static_cast<std::size_t>(g.nx) * static_cast<std::size_t>(g.ny)) {
    fail(path, "the density grid has " + std::to_string(g.values.size()) + " values for " +
                   std::to_string(g.nx) + " x " + std::to_string(g.ny) + " cells");
  }
}

// ---------------------------------------------------------------------------------------------
// Cairo objects owned by RAII, so that an exception thrown mid-drawing leaks nothing.

struct SurfaceDeleter {
  void operator()(cairo_surface_t* s) const { cairo_surface_destroy(s); }
};
struct ContextDeleter {
  void operator()(cairo_t* cr) const { cairo_destroy(cr); }
};
using SurfacePtr = std::unique_ptr<cairo_surface_t, SurfaceDeleter>;
using ContextPtr = std::unique_ptr<cairo_t, ContextDeleter>;

struct Canvas {
  SurfacePtr surface;
  ContextPtr cr;
};

Canvas make_canvas(const std::string& path, double width, double height) {
  Canvas c;
  c.surface.reset(cairo_image_surface_create(CAIRO_FORMAT_RGB24, static_cast<int>(width),
                                             static_cast<int>(height)));
  // cairo reports failures (too large, out of memory) through an error object, never nullptr.
  if (cairo_surface_status(c.surface.get()) != CAIRO_STATUS_SUCCESS) {
    fail(path, cairo_status_to_string(cairo_surface_status(c.surface.get())));
  }
  c.cr.reset(cairo_create(c.surface.get()));
  cairo_set_source_rgb(c.cr.get(), 1, 1, 1);
  cairo_paint(c.cr.get());
  return c;
}

// ---------------------------------------------------------------------------------------------
// PNG output: encoded in memory, then handed to write_file_atomic, so that readers (a browser
// refreshing the figure during training) never see a half-written file and a failed write leaves
// the previous figure in place.

cairo_status_t append_to_string(void* closure, const unsigned char* data, unsigned int length) {
  static_cast<std::string*>(closure)->append(reinterpret_cast<const char*>(data), length);
  return CAIRO_STATUS_SUCCESS;
}

void save_png(const Canvas& canvas, const std::string& path) {
  // Drawing errors are sticky in the context; check them before touching the file system.
  const cairo_status_t drawn = cairo_status(canvas.cr.get());
  if (drawn != CAIRO_STATUS_SUCCESS) fail(path, cairo_status_to_string(drawn));
  cairo_surface_flush(canvas.surface.get());
  std::string png;
  const cairo_status_t encoded =
      cairo_surface_write_to_png_stream(canvas.surface.get(), append_to_string, &png);
  if (encoded != CAIRO_STATUS_SUCCESS) fail(path, cairo_status_to_string(encoded));
  write_file_atomic(path, png);
}

// ---------------------------------------------------------------------------------------------
// Colour map: Green's (2011) cubehelix, a helix around the grey diagonal of the RGB cube whose
// perceived luminance grows monotonically with lambda, so dark always means low density, also in
// greyscale print.

struct Rgb {
  double r, g, b;
};

Rgb cubehelix(double lambda) {
  constexpr double start = 0.5, rotations = -1.5, hue = 1.2, gamma = 1.0;
  const double t = std::clamp(lambda, 0.0, 1.0);
  const double l = std::pow(t, gamma);
  const double phi = 2 * std::numbers::pi * (start / 3 + rotations * t);
  const double a = hue * l * (1 - l) / 2;
  const double c = std::cos(phi), s = std::sin(phi);
  return {std::clamp(l + a * (-0.14861 * c + 1.78277 * s), 0.0, 1.0),
          std::clamp(l + a * (-0.29227 * c - 0.90649 * s), 0.0, 1.0),
          std::clamp(l + a * (1.97294 * c), 0.0, 1.0)};
}

std::uint32_t pack_rgb24(const Rgb& c) {
  const auto byte = [](double v) { return static_cast<std::uint32_t>(std::lround(v * 255)); };
  return 0xff000000u | byte(c.r) << 16 | byte(c.g) << 8 | byte(c.b);
}

double finite_max(const std::vector<double>& values) {
  double m = 0;
  for (double v : values) {
    if (std::isfinite(v)) m = std::max(m, v);
  }
  return m;
}

// One image pixel per grid cell, flipped so that grid row 0 ends up at the bottom.
SurfacePtr grid_image(const std::string& path, const DensityGrid& g) {
  SurfacePtr img(cairo_image_surface_create(CAIRO_FORMAT_RGB24, g.nx, g.ny));
  // Checked here, not left to the context: cairo 1.16 never frees the error pattern it makes when a
  // failed surface is set as a source.
  const cairo_status_t status = cairo_surface_status(img.get());
  if (status != CAIRO_STATUS_SUCCESS) fail(path, cairo_status_to_string(status));
  cairo_surface_flush(img.get());
  const double vmax = finite_max(g.values);
  const double scale = vmax > 0 ? 1 / vmax : 0;
  unsigned char* data = cairo_image_surface_get_data(img.get());
  const int stride = cairo_image_surface_get_stride(img.get());
  for (int i = 0; i < g.ny; ++i) {
    auto* row =
        reinterpret_cast<std::uint32_t*>(data + static_cast<std::ptrdiff_t>(g.ny - 1 - i) * stride);
    for (int j = 0; j < g.nx; ++j) {
      const double v = g.values[static_cast<std::size_t>(i) * g.nx + j];
      row[j] = pack_rgb24(cubehelix(std::isfinite(v) ? v * scale : 0));
    }
  }
  cairo_surface_mark_dirty(img.get());
  return img;
}

// ---------------------------------------------------------------------------------------------
// Drawing primitives.

void set_font(cairo_t* cr, double size) {
  cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
  cairo_set_font_size(cr, size);
}

double text_advance(cairo_t* cr, const std::string& text) {
  cairo_text_extents_t te;
  cairo_text_extents(cr, text.c_str(), &te);
  return te.x_advance;
}

// Height of the digits, used to centre labels independently of which glyphs they contain.
double digit_height(cairo_t* cr) {
  cairo_text_extents_t te;
  cairo_text_extents(cr, "0", &te);
  return te.height;
}

void show_text(cairo_t* cr, const std::string& text, double x, double baseline) {
  cairo_move_to(cr, x, baseline);
  cairo_show_text(cr, text.c_str());
}

void draw_heatmap(cairo_t* cr, const std::string& path, const Rect& area, const DensityGrid& g) {
  SurfacePtr img = grid_image(path, g);
  cairo_save(cr);
  cairo_rectangle(cr, area.x, area.y, area.w, area.h);
  cairo_clip(cr);
  cairo_translate(cr, area.x, area.y);
  cairo_scale(cr, area.w / g.nx, area.h / g.ny);
  cairo_set_source_surface(cr, img.get(), 0, 0);
  // GOOD smooths when enlarging a coarse grid and averages when shrinking a fine one; PAD keeps
  // the border cells from fading into the (transparent) outside of the image.
  cairo_pattern_set_filter(cairo_get_source(cr), CAIRO_FILTER_GOOD);
  cairo_pattern_set_extend(cairo_get_source(cr), CAIRO_EXTEND_PAD);
  cairo_paint(cr);
  cairo_restore(cr);
}

// A 1-pixel frame drawn just outside the plot area, on half pixels so that it stays crisp.
void draw_frame(cairo_t* cr, const Rect& area) {
  cairo_set_source_rgb(cr, 0.15, 0.15, 0.15);
  cairo_set_line_width(cr, 1);
  cairo_rectangle(cr, area.x - 0.5, area.y - 0.5, area.w + 1, area.h + 1);
  cairo_stroke(cr);
}

// Centred above the plot area, shrunk when it would not fit the panel.
void draw_title(cairo_t* cr, const Rect& area, double max_width, double font_size,
                const std::string& title) {
  set_font(cr, font_size);
  const double advance = text_advance(cr, title);
  if (advance > max_width) {
    set_font(cr, std::max(8.0, font_size * max_width / advance));
  }
  cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
  show_text(cr, title, area.x + (area.w - text_advance(cr, title)) / 2, area.y - kTitleGap);
}

// Ticks at k * step with step one of 1, 2, 5 times a power of ten.
struct Ticks {
  Index first, last;  // k of the first and last tick inside the range
  double step;
  int decimals;  // enough to tell neighbouring ticks apart, and no more
};

Ticks nice_ticks(double lo, double hi, int max_count) {
  const double raw = (hi - lo) / std::max(1, max_count - 1);
  int exponent = static_cast<int>(std::floor(std::log10(raw)));
  double step = 0;
  for (;; ++exponent) {
    const double power = std::pow(10.0, exponent);
    const double candidates[] = {1 * power, 2 * power, 5 * power};
    const auto it = std::find_if(std::begin(candidates), std::end(candidates),
                                 [raw](double c) { return c >= raw * (1 - 1e-9); });
    if (it != std::end(candidates)) {
      step = *it;
      break;
    }
  }
  // The epsilon keeps end points such as 4.0 that arrive as 3.9999999 after division.
  const auto first = static_cast<Index>(std::ceil(lo / step - 1e-9));
  const auto last = static_cast<Index>(std::floor(hi / step + 1e-9));
  return {first, last, step, std::max(0, -exponent)};
}

// At least three candidates, so that even a short axis gets a tick or two.
int max_ticks(double axis_pixels) {
  return std::max(3, static_cast<int>(axis_pixels / kMinTickSpacing) + 1);
}

// Negative labels use the typographic minus sign (U+2212), which lines up with the digits.
std::string tick_label(double value, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, std::abs(value));
  const bool negative = value < 0 && std::string(buf).find_first_not_of("0.") != std::string::npos;
  return negative ? "\u2212" + std::string(buf) : std::string(buf);
}

// A device coordinate moved to its pixel's centre, so that 1-pixel ticks are crisp.
double snap(double device) { return std::floor(device) + 0.5; }

void draw_x_axis(cairo_t* cr, const Rect& area, double lo, double hi) {
  const Ticks t = nice_ticks(lo, hi, max_ticks(area.w));
  const double bottom = area.y + area.h;
  const double label_top = bottom + kTickLength + kTickLabelGap;
  const double baseline = label_top + digit_height(cr);
  for (Index k = t.first; k <= t.last; ++k) {
    const double v = static_cast<double>(k) * t.step;
    const double x = snap(area.x + (v - lo) / (hi - lo) * area.w);
    cairo_move_to(cr, x, bottom);
    cairo_line_to(cr, x, bottom + kTickLength);
    cairo_stroke(cr);
    const std::string label = tick_label(v, t.decimals);
    show_text(cr, label, x - text_advance(cr, label) / 2, baseline);
  }
}

void draw_y_axis(cairo_t* cr, const Rect& area, double lo, double hi) {
  const Ticks t = nice_ticks(lo, hi, max_ticks(area.h));
  const double half_digit = digit_height(cr) / 2;
  const double label_right = area.x - kTickLength - kTickLabelGap;
  for (Index k = t.first; k <= t.last; ++k) {
    const double v = static_cast<double>(k) * t.step;
    const double y = snap(area.y + area.h - (v - lo) / (hi - lo) * area.h);
    cairo_move_to(cr, area.x, y);
    cairo_line_to(cr, area.x - kTickLength, y);
    cairo_stroke(cr);
    const std::string label = tick_label(v, t.decimals);
    show_text(cr, label, label_right - text_advance(cr, label), y + half_digit);
  }
}

void draw_axes(cairo_t* cr, const Rect& area, const Extent& e) {
  cairo_save(cr);
  set_font(cr, kTickFont);
  cairo_set_source_rgb(cr, 0.15, 0.15, 0.15);
  cairo_set_line_width(cr, 1);
  draw_x_axis(cr, area, e.x0, e.x1);
  draw_y_axis(cr, area, e.y0, e.y1);
  cairo_restore(cr);
}

// Dense clouds need fainter dots so that overlap still shows where the mass is.
double dot_alpha(Index n) {
  return std::clamp(40.0 / std::sqrt(static_cast<double>(std::max<Index>(n, 1))), 0.12, 0.7);
}

void draw_points(cairo_t* cr, const Rect& area, const Extent& e, const TensorF& points,
                 const Rgb& colour) {
  constexpr double radius = 1.4;
  cairo_save(cr);
  cairo_rectangle(cr, area.x, area.y, area.w, area.h);
  cairo_clip(cr);
  cairo_set_source_rgba(cr, colour.r, colour.g, colour.b, dot_alpha(points.rows()));
  for (Index i = 0; i < points.rows(); ++i) {
    const double x = points(i, 0), y = points(i, 1);
    if (!std::isfinite(x) || !std::isfinite(y)) continue;
    const double px = area.x + (x - e.x0) / (e.x1 - e.x0) * area.w;
    const double py = area.y + area.h - (y - e.y0) / (e.y1 - e.y0) * area.h;
    // One fill per dot: a single path of all dots would merge overlaps and hide density.
    cairo_new_sub_path(cr);
    cairo_arc(cr, px, py, radius, 0, 2 * std::numbers::pi);
    cairo_fill(cr);
  }
  cairo_restore(cr);
}

// ---------------------------------------------------------------------------------------------
// Panels.

// `path` only names the file in errors.
void draw_density_panel(cairo_t* cr, const std::string& path, const PanelStyle& style, double x,
                        double y, const DensityGrid& g, const std::string& title) {
  const Rect area = plot_area(style, x, y, g.extent);
  draw_heatmap(cr, path, area, g);
  draw_frame(cr, area);
  if (style.tick_labels) draw_axes(cr, area, g.extent);
  draw_title(cr, area, panel_width(style) - 8, style.title_font, title);
}

void draw_scatter_panel(cairo_t* cr, double x, double y, const TensorF& points, const Rgb& colour,
                        const Extent& e, const std::string& title) {
  const Rect area = plot_area(kLargePanel, x, y, e);
  draw_points(cr, area, e, points, colour);
  draw_frame(cr, area);
  draw_axes(cr, area, e);
  draw_title(cr, area, panel_width(kLargePanel) - 8, kLargePanel.title_font, title);
}

void check_points(const std::string& path, const TensorF& points, const std::string& what) {
  if (points.shape().rank() != 2 || points.cols() < 2) {
    fail(path, what + " must be [n, 2+], got " + points.shape().str());
  }
}

}  // namespace

DensityGrid evaluate_grid(
    const std::function<std::vector<double>(const flowgrad::TensorF&)>& log_density,
    const Extent& extent, int nx, int ny) {
  if (nx <= 0 || ny <= 0) throw std::invalid_argument("evaluate_grid: nx and ny must be positive");
  if (!valid_extent(extent)) throw std::invalid_argument("evaluate_grid: empty or infinite extent");
  DensityGrid g{extent, nx, ny, std::vector<double>(static_cast<std::size_t>(nx) * ny, 0.0)};
  const double dx = (extent.x1 - extent.x0) / nx, dy = (extent.y1 - extent.y0) / ny;
  // About 4096 points per call: large enough to amortise per-call overhead in the model, small
  // enough to keep its activations in cache.
  const int rows_per_batch = std::max(1, 4096 / nx);
  TensorF batch;
  for (int i0 = 0; i0 < ny; i0 += rows_per_batch) {
    const int rows = std::min(rows_per_batch, ny - i0);
    const Index m = static_cast<Index>(rows) * nx;
    batch.resize(Shape{m, 2});
    for (int r = 0; r < rows; ++r) {
      for (int j = 0; j < nx; ++j) {
        const Index p = static_cast<Index>(r) * nx + j;
        batch(p, 0) = static_cast<float>(extent.x0 + (j + 0.5) * dx);
        batch(p, 1) = static_cast<float>(extent.y0 + (i0 + r + 0.5) * dy);
      }
    }
    const std::vector<double> lp = log_density(batch);
    if (static_cast<Index>(lp.size()) != m) {
      throw std::runtime_error("evaluate_grid: log_density returned " + std::to_string(lp.size()) +
                               " values for " + std::to_string(m) + " points");
    }
    // A NaN or +inf log-density (a diverged model) would poison the normalisation by the maximum;
    // drawing it as zero density keeps the rest of the picture readable.
    for (Index p = 0; p < m; ++p) {
      const double d = std::exp(lp[static_cast<std::size_t>(p)]);
      g.values[static_cast<std::size_t>(i0) * nx + static_cast<std::size_t>(p)] =
          std::isfinite(d) ? d : 0.0;
    }
  }
  return g;
}

void write_density_png(const std::string& path, const DensityGrid& grid, const std::string& title) {
  check_grid(path, grid);
  Canvas c = make_canvas(path, panel_width(kLargePanel), panel_height(kLargePanel, grid.extent));
  draw_density_panel(c.cr.get(), path, kLargePanel, 0, 0, grid, title);
  save_png(c, path);
}

void write_image_grid_png(const std::string& path, const std::vector<std::uint8_t>& pixels,
                          Index count, Index h, Index w, int columns, int scale) {
  if (count < 1 || h < 1 || w < 1 || columns < 1 || scale < 1 ||
      static_cast<Index>(pixels.size()) != count * h * w)
    fail(path, "an image grid needs count x h x w pixels and positive sizes");
  const int cols = static_cast<int>(std::min<Index>(columns, count));
  const int rows = static_cast<int>((count + cols - 1) / cols);
  const int gap = 2, cell_w = static_cast<int>(w) * scale + gap,
            cell_h = static_cast<int>(h) * scale + gap;
  Canvas c = make_canvas(path, cols * cell_w + gap, rows * cell_h + gap);
  cairo_surface_flush(c.surface.get());
  unsigned char* data = cairo_image_surface_get_data(c.surface.get());
  const int stride = cairo_image_surface_get_stride(c.surface.get());
  for (Index k = 0; k < count; ++k) {
    const int x0 = gap + static_cast<int>(k % cols) * cell_w;
    const int y0 = gap + static_cast<int>(k / cols) * cell_h;
    for (Index i = 0; i < h * scale; ++i)
      for (Index j = 0; j < w * scale; ++j) {
        const std::uint8_t v =
            pixels[static_cast<std::size_t>(k * h * w + (i / scale) * w + j / scale)];
        // RGB24 is 32 bits per pixel, native-endian 0x00RRGGBB.
        auto* px = reinterpret_cast<std::uint32_t*>(data + (y0 + i) * stride) + x0 + j;
        *px = (std::uint32_t(v) << 16) | (std::uint32_t(v) << 8) | v;
      }
  }
  cairo_surface_mark_dirty(c.surface.get());
  save_png(c, path);
}

void write_conditional_samples_png(const std::string& path, const std::vector<TensorF>& data,
                                   const std::vector<TensorF>& samples,
                                   const std::vector<std::string>& titles, const Extent& extent) {
  check_extent(path, extent);
  if (samples.empty() || titles.size() != samples.size() ||
      (!data.empty() && data.size() != samples.size()))
    fail(path, "one title and one sample set per context (and one data set each, if any)");
  for (const TensorF& s : samples) check_points(path, s, "samples");
  for (const TensorF& d : data) check_points(path, d, "data");
  const double w = panel_width(kLargePanel), h = panel_height(kLargePanel, extent);
  const int rows = data.empty() ? 1 : 2;
  Canvas c = make_canvas(path, static_cast<double>(samples.size()) * w, rows * h);
  for (std::size_t k = 0; k < samples.size(); ++k) {
    const double x = static_cast<double>(k) * w;
    if (!data.empty())
      draw_scatter_panel(c.cr.get(), x, 0, data[k], {0.10, 0.28, 0.55}, extent,
                         "data, " + titles[k]);
    draw_scatter_panel(c.cr.get(), x, (rows - 1) * h, samples[k], {0.78, 0.22, 0.10}, extent,
                       "model, " + titles[k]);
  }
  save_png(c, path);
}

void write_samples_png(const std::string& path, const flowgrad::TensorF& data,
                       const std::string& data_title, const flowgrad::TensorF& samples,
                       const std::string& samples_title, const Extent& extent) {
  check_extent(path, extent);
  check_points(path, data, "data");
  check_points(path, samples, "samples");
  const double w = panel_width(kLargePanel);
  Canvas c = make_canvas(path, 2 * w, panel_height(kLargePanel, extent));
  draw_scatter_panel(c.cr.get(), 0, 0, data, {0.10, 0.28, 0.55}, extent, data_title);
  draw_scatter_panel(c.cr.get(), w, 0, samples, {0.78, 0.22, 0.10}, extent, samples_title);
  save_png(c, path);
}

void write_density_pair_png(const std::string& path, const DensityGrid& left,
                            const std::string& left_title, const DensityGrid& right,
                            const std::string& right_title) {
  check_grid(path, left);
  check_grid(path, right);
  const double w = panel_width(kLargePanel);
  const double h =
      std::max(panel_height(kLargePanel, left.extent), panel_height(kLargePanel, right.extent));
  Canvas c = make_canvas(path, 2 * w, h);
  draw_density_panel(c.cr.get(), path, kLargePanel, 0, 0, left, left_title);
  draw_density_panel(c.cr.get(), path, kLargePanel, w, 0, right, right_title);
  save_png(c, path);
}

void write_gallery_png(const std::string& path, const std::vector<DensityGrid>& panels,
                       const std::vector<std::string>& titles, int columns) {
  if (panels.empty()) fail(path, "the gallery has no panels");
  if (titles.size() != panels.size()) {
    fail(path, std::to_string(panels.size()) + " panels but " + std::to_string(titles.size()) +
                   " titles");
  }
  if (columns <= 0) fail(path, "columns must be positive, got " + std::to_string(columns));
  for (const DensityGrid& g : panels) check_grid(path, g);
  const int n = static_cast<int>(panels.size());
  const int cols = std::min(columns, n);
  const int rows = (n + cols - 1) / cols;
  const double w = panel_width(kSmallPanel);
  double h = 0;
  for (const DensityGrid& g : panels) h = std::max(h, panel_height(kSmallPanel, g.extent));
  Canvas c = make_canvas(path, cols * w, rows * h);
  for (int k = 0; k < n; ++k) {
    draw_density_panel(c.cr.get(), path, kSmallPanel, (k % cols) * w, (k / cols) * h,
                       panels[static_cast<std::size_t>(k)], titles[static_cast<std::size_t>(k)]);
  }
  save_png(c, path);
}

}  // namespace train2d
