#pragma once
// PNG figures drawn with cairo: heat maps of densities with axes, scatter plots, and a gallery
// grid. Every write_* function writes its file atomically (temporary file in the same directory,
// then rename) and throws std::runtime_error("cannot write <path>: <reason>") on failure, invalid
// input included; no temporary file is left behind. Both axes of a panel share one scale (circles
// stay round): a wide extent gives a shorter panel.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "flowgrad/tensor/tensor.hpp"

namespace train2d {

struct Extent {
  double x0 = -4, x1 = 4, y0 = -4, y1 = 4;
};

// A density on a regular grid: values[i * nx + j] at x = x0 + (j + 0.5) dx, y = y0 + (i + 0.5) dy
// (row i = 0 at the bottom). Values are densities (not logs), non-negative.
struct DensityGrid {
  Extent extent;
  int nx = 0, ny = 0;
  std::vector<double> values;
};

// Evaluates log_density on a grid of nx x ny cell centres over extent, in batches of whole rows
// (about 4096 points per call). log_density maps an [m, 2] float tensor to m log-densities; a NaN
// or +inf log-density is stored as density 0 so that one diverged point cannot blank the picture.
// Throws std::invalid_argument for nx or ny < 1 or an empty extent, std::runtime_error when
// log_density returns the wrong number of values.
DensityGrid evaluate_grid(
    const std::function<std::vector<double>(const flowgrad::TensorF&)>& log_density,
    const Extent& extent, int nx, int ny);

// One panel: a heat map, axes with ticks, a title. Colours: cubehelix (Green 2011), linear in the
// density divided by the grid's maximum, black at 0 and white at the maximum.
void write_density_png(const std::string& path, const DensityGrid& grid, const std::string& title);

// Side by side, same axes: data points and model samples (first two columns of each; rows with a
// non-finite coordinate are skipped).
void write_samples_png(const std::string& path, const flowgrad::TensorF& data,
                       const std::string& data_title, const flowgrad::TensorF& samples,
                       const std::string& samples_title, const Extent& extent);

// A conditional model's samples at several contexts: one column per context, the data at that
// context on top (if any: `data` may be empty) and the model's samples below, on one extent.
// Greyscale images (count of them, h x w bytes each, one after another) in a grid of `columns`
// per row, each pixel drawn as scale x scale, 2 pixels of white between images.
void write_image_grid_png(const std::string& path, const std::vector<std::uint8_t>& pixels,
                          flowgrad::Index count, flowgrad::Index h, flowgrad::Index w, int columns,
                          int scale = 2);

void write_conditional_samples_png(const std::string& path,
                                   const std::vector<flowgrad::TensorF>& data,
                                   const std::vector<flowgrad::TensorF>& samples,
                                   const std::vector<std::string>& titles, const Extent& extent);

// Two heat maps side by side (for VI: q beside exp(-U)).
void write_density_pair_png(const std::string& path, const DensityGrid& left,
                            const std::string& left_title, const DensityGrid& right,
                            const std::string& right_title);

// A grid of heat maps with their titles, `columns` per row (the FFJORD-style gallery): 200-pixel
// thumbnails with a frame and no axes. titles.size() must equal panels.size().
void write_gallery_png(const std::string& path, const std::vector<DensityGrid>& panels,
                       const std::vector<std::string>& titles, int columns);

}  // namespace train2d
