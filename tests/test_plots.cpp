// The plotting module of apps/train_2d: grid evaluation, and PNGs that load back with the
// picture where it belongs (peaks bright, y axis up), written atomically.
#include <doctest/doctest.h>

#include <cairo.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <memory>
#include <numbers>
#include <stdexcept>
#include <string>

#include "apps/train_2d/plots.hpp"

using flowgrad::Index;
using flowgrad::Shape;
using flowgrad::TensorF;
using train2d::DensityGrid;
using train2d::Extent;

namespace fs = std::filesystem;

#if defined(__SANITIZE_ADDRESS__)
// cairo's toy font API keeps fontconfig patterns in process-wide caches that are never freed;
// LeakSanitizer reports them at exit. They are not leaks of the plotting code, whose own cairo
// objects are checked by the remaining reports.
extern "C" const char* __lsan_default_suppressions() { return "leak:libfontconfig.so\n"; }
#endif

namespace {

// Pixel positions below follow the layout of plots.cpp: a large panel is 488 x 490 pixels with its
// 400 x 400 plot area at (60, 46); a gallery panel is 220 x 242 with its 200 x 200 plot area at
// (10, 32). With extent [-4, 4]^2, data point (2, 2) lands at plot-area fraction (3/4, 1/4) from
// the top left, and (-2, -2) at (1/4, 3/4).
constexpr int kLargeW = 488, kLargeH = 490;
constexpr int kSmallW = 220, kSmallH = 242;

double gaussian_log_density(double x, double y, double mx, double my, double sd) {
  const double dx = (x - mx) / sd, dy = (y - my) / sd;
  return -0.5 * (dx * dx + dy * dy) - std::log(2 * std::numbers::pi * sd * sd);
}

// log N((x, y); (mx, my), sd^2 I) for each row of the batch.
auto gaussian(double mx, double my, double sd) {
  return [=](const TensorF& z) {
    std::vector<double> out(static_cast<std::size_t>(z.rows()));
    for (Index i = 0; i < z.rows(); ++i) {
      out[static_cast<std::size_t>(i)] = gaussian_log_density(z(i, 0), z(i, 1), mx, my, sd);
    }
    return out;
  };
}

// A fresh directory per test run, removed at the end of each test case.
struct ScratchDir {
  fs::path path;
  ScratchDir() {
    path = fs::temp_directory_path() / ("flowgrad-test-plots-" + std::to_string(::getpid()));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~ScratchDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string file(const std::string& name) const { return (path / name).string(); }
  bool has_temp_files() const {
    for (const auto& entry : fs::directory_iterator(path)) {
      if (entry.path().filename().string().find(".tmp-") != std::string::npos) return true;
    }
    return false;
  }
};

bool has_png_signature(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  char sig[8] = {};
  in.read(sig, 8);
  return in.gcount() == 8 && std::string(sig, 8) == "\x89PNG\r\n\x1a\n";
}

struct SurfaceDeleter {
  void operator()(cairo_surface_t* s) const { cairo_surface_destroy(s); }
};

// A PNG loaded back through cairo, to look at its pixels.
struct Image {
  std::unique_ptr<cairo_surface_t, SurfaceDeleter> surface;

  explicit Image(const std::string& path)
      : surface(cairo_image_surface_create_from_png(path.c_str())) {}
  bool ok() const { return cairo_surface_status(surface.get()) == CAIRO_STATUS_SUCCESS; }
  int width() const { return cairo_image_surface_get_width(surface.get()); }
  int height() const { return cairo_image_surface_get_height(surface.get()); }
  // Rec. 601 luma in [0, 1]; the colour map's luminance rises with density.
  double luma(int x, int y) const {
    const unsigned char* row = cairo_image_surface_get_data(surface.get()) +
                               y * cairo_image_surface_get_stride(surface.get());
    const std::uint32_t p = reinterpret_cast<const std::uint32_t*>(row)[x];
    const double r = (p >> 16 & 0xff) / 255.0, g = (p >> 8 & 0xff) / 255.0, b = (p & 0xff) / 255.0;
    return 0.299 * r + 0.587 * g + 0.114 * b;
  }
};

Image load_checked(const std::string& path, int width, int height) {
  CHECK(has_png_signature(path));
  Image img(path);
  REQUIRE(img.ok());
  CHECK(img.width() == width);
  CHECK(img.height() == height);
  return img;
}

// A bump at (2, 2): bright in the upper right of the picture, dark in the lower left.
DensityGrid upper_right_bump(int n = 100) {
  return train2d::evaluate_grid(gaussian(2, 2, 0.5), Extent{}, n, n);
}

}  // namespace

TEST_CASE("evaluate_grid: a standard normal on cell centres, in batches, with unit mass") {
  const Extent e{-6, 6, -6, 6};
  const int nx = 120, ny = 96;  // unequal, so that a transposed grid would be caught
  int calls = 0;
  Index points = 0;
  auto log_density = [&](const TensorF& z) {
    ++calls;
    points += z.rows();
    CHECK(z.cols() == 2);
    return gaussian(0, 0, 1)(z);
  };
  const DensityGrid g = train2d::evaluate_grid(log_density, e, nx, ny);
  REQUIRE(g.values.size() == static_cast<std::size_t>(nx * ny));
  CHECK(g.nx == nx);
  CHECK(g.ny == ny);
  CHECK(points == nx * ny);
  CHECK(calls > 1);

  const double dx = 12.0 / nx, dy = 12.0 / ny;
  auto expected = [&](int i, int j) {
    // The grid was evaluated in float32 coordinates.
    const float x = static_cast<float>(-6 + (j + 0.5) * dx);
    const float y = static_cast<float>(-6 + (i + 0.5) * dy);
    return std::exp(gaussian_log_density(x, y, 0, 0, 1));
  };
  for (const auto& [i, j] : {std::pair{0, 0}, {47, 59}, {48, 60}, {10, 100}, {95, 3}}) {
    CHECK(g.values[static_cast<std::size_t>(i * nx + j)] ==
          doctest::Approx(expected(i, j)).epsilon(1e-9));
  }
  double mass = 0;
  for (double v : g.values) mass += v * dx * dy;
  CHECK(mass == doctest::Approx(1.0).epsilon(0.01));
}

TEST_CASE("evaluate_grid: NaN and +inf log-densities become zero density, -inf gives zero") {
  auto bad = [](const TensorF& z) {
    std::vector<double> out(static_cast<std::size_t>(z.rows()));
    const double specials[] = {std::nan(""), INFINITY, -INFINITY, 0.0};
    for (std::size_t i = 0; i < out.size(); ++i) out[i] = specials[i % 4];
    return out;
  };
  const DensityGrid g = train2d::evaluate_grid(bad, Extent{}, 4, 3);
  for (std::size_t i = 0; i < g.values.size(); ++i) {
    CHECK(g.values[i] == (i % 4 == 3 ? 1.0 : 0.0));
  }
}

TEST_CASE("evaluate_grid: rejects an empty grid and a wrong number of values") {
  CHECK_THROWS_AS(train2d::evaluate_grid(gaussian(0, 0, 1), Extent{}, 0, 10),
                  std::invalid_argument);
  CHECK_THROWS_AS(train2d::evaluate_grid(gaussian(0, 0, 1), Extent{1, 1, 0, 1}, 10, 10),
                  std::invalid_argument);
  auto short_answer = [](const TensorF&) { return std::vector<double>(3, 0.0); };
  CHECK_THROWS_AS(train2d::evaluate_grid(short_answer, Extent{}, 10, 10), std::runtime_error);
}

TEST_CASE("write_density_png: the peak is bright, the opposite corner dark, y points up") {
  ScratchDir dir;
  const std::string path = dir.file("density.png");
  train2d::write_density_png(path, upper_right_bump(), "N((2, 2), 0.25 I)");
  const Image img = load_checked(path, kLargeW, kLargeH);
  const double peak = img.luma(60 + 300, 46 + 100);
  CHECK(peak > 0.9);
  CHECK(img.luma(60 + 100, 46 + 300) < 0.05);     // (-2, -2)
  CHECK(img.luma(60 + 300, 46 + 300) < 0.05);     // (2, -2): catches a y flip
  CHECK(img.luma(5, 5) == doctest::Approx(1.0));  // white margin
  CHECK_FALSE(dir.has_temp_files());
}

TEST_CASE("write_density_png: a wide extent gives a shorter panel with equal axis scales") {
  ScratchDir dir;
  const std::string path = dir.file("wide.png");
  const Extent wide{-4, 4, -2, 2};
  train2d::write_density_png(path, train2d::evaluate_grid(gaussian(2, 1, 0.3), wide, 80, 40), "w");
  const Image img = load_checked(path, kLargeW, kLargeH - 200);
  CHECK(img.luma(60 + 300, 46 + 50) > 0.9);  // (2, 1)
  CHECK(img.luma(60 + 100, 46 + 150) < 0.05);
}

TEST_CASE("write_density_pair_png: two panels side by side") {
  ScratchDir dir;
  const std::string path = dir.file("pair.png");
  const DensityGrid left = upper_right_bump();
  const DensityGrid right = train2d::evaluate_grid(gaussian(-2, -2, 0.5), Extent{}, 80, 80);
  train2d::write_density_pair_png(path, left, "q", right, "exp(-U)");
  const Image img = load_checked(path, 2 * kLargeW, kLargeH);
  CHECK(img.luma(60 + 300, 46 + 100) > img.luma(60 + 100, 46 + 300) + 0.5);
  CHECK(img.luma(kLargeW + 60 + 100, 46 + 300) > img.luma(kLargeW + 60 + 300, 46 + 100) + 0.5);
}

TEST_CASE("write_samples_png: dots where the points are, non-finite points skipped") {
  ScratchDir dir;
  const std::string path = dir.file("samples.png");
  TensorF data(Shape{200, 3});  // a third column is ignored
  TensorF samples(Shape{50, 2});
  for (Index i = 0; i < data.rows(); ++i) {
    data(i, 0) = 2.0f + 0.01f * static_cast<float>(i % 10);
    data(i, 1) = 2.0f + 0.01f * static_cast<float>(i / 10);
  }
  for (Index i = 0; i < samples.rows(); ++i) {
    samples(i, 0) = -2.0f;
    samples(i, 1) = i % 2 ? NAN : -2.0f;
  }
  samples(1, 0) = INFINITY;
  train2d::write_samples_png(path, data, "data", samples, "samples", Extent{});
  const Image img = load_checked(path, 2 * kLargeW, kLargeH);
  CHECK(img.luma(60 + 302, 46 + 99) < 0.8);                     // data cloud at (2.05, 2.05)
  CHECK(img.luma(60 + 100, 46 + 300) == doctest::Approx(1.0));  // nothing at (-2, -2)
  CHECK(img.luma(kLargeW + 60 + 100, 46 + 300) < 0.8);          // the samples at (-2, -2)
}

TEST_CASE("write_gallery_png: panels in rows of `columns`") {
  ScratchDir dir;
  const std::string path = dir.file("gallery.png");
  const std::vector<DensityGrid> panels(5, upper_right_bump(60));
  const std::vector<std::string> titles{"one", "two", "three", "four", "five"};
  train2d::write_gallery_png(path, panels, titles, 3);
  const Image img = load_checked(path, 3 * kSmallW, 2 * kSmallH);
  // The fifth panel: second row, second column.
  const int x0 = kSmallW + 10, y0 = kSmallH + 32;
  CHECK(img.luma(x0 + 150, y0 + 50) > 0.9);
  CHECK(img.luma(x0 + 50, y0 + 150) < 0.05);
  // The sixth slot is empty.
  CHECK(img.luma(2 * kSmallW + 110, kSmallH + 132) == doctest::Approx(1.0));

  CHECK_THROWS_AS(train2d::write_gallery_png(path, panels, {"too", "few"}, 3), std::runtime_error);
  CHECK_THROWS_AS(train2d::write_gallery_png(path, panels, titles, 0), std::runtime_error);
}

TEST_CASE(
    "writers: a missing directory or an unwritable target gives a clear error, no temp file") {
  ScratchDir dir;
  const DensityGrid g = upper_right_bump(20);
  const std::string missing = dir.file("no/such/dir/density.png");
  try {
    train2d::write_density_png(missing, g, "t");
    FAIL("no exception");
  } catch (const std::runtime_error& e) {
    const std::string what = e.what();
    CHECK(what.find("cannot write " + missing) != std::string::npos);
    CHECK(what.find("No such file or directory") != std::string::npos);
  }

  // A directory in the way of the target fails at the rename, after the temporary file was
  // written: it must be removed.
  const std::string blocked = dir.file("blocked.png");
  fs::create_directory(blocked);
  CHECK_THROWS_WITH_AS(train2d::write_density_pair_png(blocked, g, "a", g, "b"),
                       doctest::Contains(("cannot write " + blocked).c_str()), std::runtime_error);
  CHECK_FALSE(dir.has_temp_files());

  // Larger than cairo's 32767-pixel image limit: refused with cairo's reason, nothing written.
  const DensityGrid huge{Extent{}, 40000, 1, std::vector<double>(40000, 1.0)};
  CHECK_THROWS_WITH_AS(train2d::write_density_png(dir.file("huge.png"), huge, "t"),
                       doctest::Contains("cannot write"), std::runtime_error);
  CHECK_FALSE(fs::exists(dir.file("huge.png")));

  DensityGrid broken = g;
  broken.values.pop_back();
  CHECK_THROWS_AS(train2d::write_density_png(dir.file("broken.png"), broken, "t"),
                  std::runtime_error);
  CHECK_FALSE(fs::exists(dir.file("broken.png")));
}

TEST_CASE("writers: an existing file is replaced") {
  ScratchDir dir;
  const std::string path = dir.file("replace.png");
  { std::ofstream(path) << "old contents"; }
  train2d::write_density_png(path, upper_right_bump(20), "new");
  CHECK(has_png_signature(path));
  CHECK_FALSE(dir.has_temp_files());
}
