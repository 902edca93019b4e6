// The IDX reader on small files written here, plain and gzip, and on corrupt ones.
#include <zlib.h>

#include <doctest/doctest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "flowgrad/data/idx.hpp"
#include "temp_files.hpp"

using namespace flowgrad;
using flowgrad::testing::TempDir;

namespace {

std::string be32(std::uint32_t x) {
  return {static_cast<char>(x >> 24), static_cast<char>(x >> 16), static_cast<char>(x >> 8),
          static_cast<char>(x)};
}

// An IDX file's bytes: magic 0x000008<rank>, the dimensions, then `values`.
std::string idx_bytes(const std::vector<std::uint32_t>& dims, const std::string& values) {
  std::string s = be32(0x00000800u | static_cast<std::uint32_t>(dims.size()));
  for (const auto d : dims) s += be32(d);
  return s + values;
}

std::string counting(std::size_t n) {
  std::string s;
  for (std::size_t i = 0; i < n; ++i) s.push_back(static_cast<char>(i * 7 % 256));
  return s;
}

// `bytes` gzip-compressed as gzwrite writes them (one member).
std::string write_gz(const std::string& path, const std::string& bytes) {
  gzFile f = gzopen(path.c_str(), "wb");
  REQUIRE(f != nullptr);
  REQUIRE(gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size())) ==
          static_cast<int>(bytes.size()));
  REQUIRE(gzclose(f) == Z_OK);
  return path;
}

}  // namespace

TEST_CASE("idx: images and labels, plain and gzip") {
  TempDir dir;
  const std::string pixels = counting(3 * 2 * 4);
  const std::string image_file = idx_bytes({3, 2, 4}, pixels);
  const std::string label_file = idx_bytes({3}, std::string("\x07\x00\x09", 3));
  for (const bool gz : {false, true}) {
    CAPTURE(gz);
    const std::string images_path =
        gz ? write_gz(dir / "images.gz", image_file) : dir.write("images", image_file);
    const std::string labels_path =
        gz ? write_gz(dir / "labels.gz", label_file) : dir.write("labels", label_file);
    const IdxImages im = load_idx_images(images_path);
    CHECK(im.count == 3);
    CHECK(im.rows == 2);
    CHECK(im.cols == 4);
    CHECK(im.pixels == std::vector<std::uint8_t>(pixels.begin(), pixels.end()));
    CHECK(load_idx_labels(labels_path) == std::vector<std::uint8_t>{7, 0, 9});
    const TensorF rows = images_as_rows(im);
    CHECK(rows.rows() == 3);
    CHECK(rows.cols() == 8);
    CHECK(rows(2, 7) == static_cast<float>(static_cast<std::uint8_t>(pixels[23])));
  }
}

TEST_CASE("idx: an empty set, and gzip members one after another, as gzread reads them") {
  TempDir dir;
  CHECK(load_idx_labels(dir.write("none", idx_bytes({0}, ""))).empty());
  const std::string file = idx_bytes({2, 3, 3}, counting(18));
  const std::string a = flowgrad::testing::read_bytes(write_gz(dir / "a.gz", file.substr(0, 10)));
  const std::string b = flowgrad::testing::read_bytes(write_gz(dir / "b.gz", file.substr(10)));
  const IdxImages im = load_idx_images(dir.write("two.gz", a + b));
  CHECK(im.pixels.size() == 18);
  CHECK(im.pixels[17] == static_cast<std::uint8_t>(counting(18)[17]));
}

TEST_CASE("idx: corrupt files are clear errors naming the file") {
  TempDir dir;
  auto fails = [&](const std::string& name, const std::string& bytes, const std::string& what) {
    CAPTURE(name);
    const std::string p = dir.write(name, bytes);
    CHECK_THROWS_WITH_AS(read_idx(p), doctest::Contains((p + ": " + what).c_str()), std::runtime_error);
  };
  fails("short", "\x00\x00", "not an IDX file (shorter than its 4-byte magic)");
  fails("magic", std::string("\x12\x34\x08\x03", 4) + be32(1) + be32(1) + be32(1) + "x",
        "not an IDX file (magic 0x12340803");
  fails("float", std::string("\x00\x00\x0d\x01", 4) + be32(1) + "abcd",
        "IDX element type 0x0d is not supported");
  fails("rank0", std::string("\x00\x00\x08\x00", 4), "IDX rank 0");
  fails("header", idx_bytes({2, 2, 2}, "").substr(0, 10), "truncated: the header ends inside");
  fails("data", idx_bytes({2, 2, 2}, "1234567"), "claims 2 x 2 x 2 = 8 values, more than the file");
  fails("trailing", idx_bytes({2}, "123"), "bytes after the 2 values");
  fails("overflow", idx_bytes({0xffffffffu, 0xffffffffu, 0xffffffffu}, ""),
        "dimensions 4294967295 x 4294967295 x 4294967295 overflow");
  CHECK_THROWS_WITH_AS(load_idx_labels(dir.write("images", idx_bytes({1, 1, 1}, "x"))),
                       doctest::Contains("labels are rank 1"), std::runtime_error);
  CHECK_THROWS_WITH_AS(load_idx_images(dir / "missing"), doctest::Contains("cannot open"),
                       std::runtime_error);

  const std::string gz =
      flowgrad::testing::read_bytes(write_gz(dir / "ok.gz", idx_bytes({64}, counting(64))));
  fails("cut.gz", gz.substr(0, gz.size() - 6), "truncated: the gzip data ends early");
  std::string flipped = gz;
  flipped[gz.size() - 6] ^= 0x5a;  // inside the CRC-32 of the data
  fails("crc.gz", flipped, "corrupt gzip data");
  fails("junk.gz", gz + "junk", "4 bytes after the gzip data");
}

TEST_CASE("idx: a claim beyond what the file can hold is refused before it is allocated") {
  TempDir dir;
  // 10^12 values claimed by a 16-byte plain file.
  const std::string p = dir.write("huge", idx_bytes({1000000, 1000, 1000}, ""));
  CHECK_THROWS_WITH_AS(read_idx(p), doctest::Contains("more than the file holds (16 bytes)"),
                       std::runtime_error);
  // Deflate holds at most 1032 bytes per byte: 10^12 values cannot hide in a small gzip file.
  const std::string g = write_gz(dir / "huge.gz", idx_bytes({1000000, 1000, 1000}, "abc"));
  CHECK_THROWS_WITH_AS(read_idx(g), doctest::Contains("more than the gzip data can hold"),
                       std::runtime_error);
  // A claim deflate could hold (1 MB) but the data does not: read as far as the data goes.
  const std::string t = write_gz(dir / "short.gz", idx_bytes({100, 100}, std::string(600, 'x')));
  CHECK_THROWS_WITH_AS(read_idx(t), doctest::Contains("truncated: 600 of 10000 values (100 x 100)"),
                       std::runtime_error);
}
