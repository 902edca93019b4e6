#pragma once
// IDX files (LeCun's MNIST format, also Fashion-MNIST's): a 4-byte big-endian magic 0x000008RR
// (unsigned bytes, rank RR), RR big-endian uint32 dimensions, then the values row-major. Plain or
// gzip-compressed (detected by the gzip magic bytes, not by the file name).
//
// Resource bounds, for files from elsewhere (issue 18): a file is read whole once (its size S),
// and the values grow only as bytes actually arrive, never to the size the header claims up front.
// A plain file must hold exactly the claimed number of values. A gzip file's claim is rejected
// before any inflating when it exceeds what deflate can encode in S bytes (1032 bytes out per byte
// in, plus 1 KiB), and inflating stops one byte past the claim; so memory stays below
// S + 2 x min(claim, 1032 S + 1 KiB) bytes and time is linear in that.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "flowgrad/tensor/tensor.hpp"

namespace flowgrad {

// Any IDX array of unsigned bytes (element type 0x08), of rank 1 to 4.
struct IdxArray {
  std::vector<Index> dims;           // {60000, 28, 28} for Fashion-MNIST's training images
  std::vector<std::uint8_t> values;  // row-major; as many as the dims' product
};

// Errors are std::runtime_error "<path>: <what>": cannot open, not IDX (bad magic), an element type
// other than unsigned bytes, a dimension product that overflows, a claimed size beyond what the
// file can hold, truncated data, bytes after the data, corrupt gzip data.
IdxArray read_idx(const std::string& path);
// The same from a file's bytes already in memory; `name` stands for the path in errors.
IdxArray decode_idx(std::string_view bytes, const std::string& name);

// Images: magic 0x00000803, [count, rows, cols] bytes.
struct IdxImages {
  Index count = 0, rows = 0, cols = 0;
  std::vector<std::uint8_t> pixels;  // count * rows * cols, image after image, row-major
};
IdxImages load_idx_images(const std::string& path);
// Labels: magic 0x00000801, [count] bytes.
std::vector<std::uint8_t> load_idx_labels(const std::string& path);

// The images as a [count, rows * cols] tensor of the pixel values 0..255, one image a row.
Tensor<float> images_as_rows(const IdxImages& images);

}  // namespace flowgrad
