// The data layer: CSV loading and its errors, row splits, batch sampling and its saved state, and
// the generator's state (flowgrad/data/, flowgrad/tensor/random.hpp).
#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "flowgrad/data/batches.hpp"
#include "flowgrad/data/csv.hpp"
#include "flowgrad/data/split.hpp"
#include "flowgrad/tensor/random.hpp"
#include "temp_files.hpp"

using namespace flowgrad;
using flowgrad::testing::TempDir;

namespace {

bool same(const TensorF& a, const TensorF& b) {
  if (!(a.shape() == b.shape())) return false;
  for (Index i = 0; i < a.numel(); ++i)
    if (a[i] != b[i]) return false;
  return true;
}

// doctest::Contains for a std::string (it copies the text).
doctest::Contains has(const std::string& s) { return doctest::Contains(s.c_str()); }

// Row i holds (i, 10 i): a row's first value names it.
TensorF numbered_rows(Index n) {
  TensorF t(Shape{n, 2});
  for (Index i = 0; i < n; ++i) {
    t(i, 0) = float(i);
    t(i, 1) = float(10 * i);
  }
  return t;
}

std::vector<Index> ids(const TensorF& batch) {
  std::vector<Index> out;
  for (Index i = 0; i < batch.rows(); ++i) out.push_back(static_cast<Index>(batch(i, 0)));
  return out;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// CSV

TEST_CASE("load_csv: header, no header, CRLF, blank lines, 3 columns, spaces") {
  TempDir dir;
  SUBCASE("with a header") {
    const auto p = dir.write("h.csv", "x,y\n1,2\n3.5,-4e-1\n");
    const CsvData d = load_csv(p);
    CHECK(d.columns == std::vector<std::string>{"x", "y"});
    REQUIRE(d.points.shape() == Shape{2, 2});
    CHECK(d.points(0, 0) == 1.0f);
    CHECK(d.points(0, 1) == 2.0f);
    CHECK(d.points(1, 0) == 3.5f);
    CHECK(d.points(1, 1) == -0.4f);
  }
  SUBCASE("without a header") {
    const CsvData d = load_csv(dir.write("n.csv", "1,2\n3,4\n5,6"));  // no final newline
    CHECK(d.columns == std::vector<std::string>{"x0", "x1"});
    REQUIRE(d.points.shape() == Shape{3, 2});
    CHECK(d.points(2, 1) == 6.0f);
  }
  SUBCASE("CRLF line endings") {
    const CsvData d = load_csv(dir.write("crlf.csv", "a,b\r\n1,2\r\n3,4\r\n"));
    CHECK(d.columns == std::vector<std::string>{"a", "b"});
    REQUIRE(d.points.shape() == Shape{2, 2});
    CHECK(d.points(1, 1) == 4.0f);
  }
  SUBCASE("blank lines anywhere, header after blank lines") {
    const CsvData d = load_csv(dir.write("blank.csv", "\n\r\nx,y\n\n1,2\n   \n3,4\n\n"));
    CHECK(d.columns == std::vector<std::string>{"x", "y"});
    REQUIRE(d.points.shape() == Shape{2, 2});
    CHECK(d.points(1, 0) == 3.0f);
  }
  SUBCASE("three columns") {
    const CsvData d = load_csv(dir.write("three.csv", "a,b,c\n1,2,3\n4,5,6\n"));
    CHECK(d.columns == std::vector<std::string>{"a", "b", "c"});
    REQUIRE(d.points.shape() == Shape{2, 3});
    CHECK(d.points(1, 2) == 6.0f);
  }
  SUBCASE("spaces around fields, quoted header names, a leading +, exponents") {
    const CsvData d = load_csv(dir.write("sp.csv", " \"x 1\" , y \n  1 ,\t+2.5 \n-1e-3, 2E2\n"));
    CHECK(d.columns == std::vector<std::string>{"x 1", "y"});
    REQUIRE(d.points.shape() == Shape{2, 2});
    CHECK(d.points(0, 1) == 2.5f);
    CHECK(d.points(1, 0) == -0.001f);
    CHECK(d.points(1, 1) == 200.0f);
  }
  SUBCASE("a UTF-8 byte-order mark before the header") {
    const CsvData d = load_csv(dir.write("bom.csv", "\xEF\xBB\xBFx,y\n1,2\n"));
    CHECK(d.columns == std::vector<std::string>{"x", "y"});
    CHECK(d.points.rows() == 1);
  }
}

TEST_CASE("load_csv: errors name the file, the line and the column") {
  TempDir dir;
  const auto err = [&](const std::string& name, const std::string& text) {
    return dir.write(name, text);
  };
  SUBCASE("missing value") {
    const auto p = err("missing.csv", "x,y\n1,2\n3,\n");
    CHECK_THROWS_WITH_AS(load_csv(p), has(p + ": line 3, column 2: missing value"),
                         std::runtime_error);
    const auto q = err("missing1.csv", "1,2\n\n , 4\n");
    CHECK_THROWS_WITH_AS(load_csv(q), has(q + ": line 3, column 1: missing value"),
                         std::runtime_error);
  }
  SUBCASE("a word in the middle of the data") {
    const auto p = err("word.csv", "x,y\n1,2\n3,abc\n4,5\n");
    CHECK_THROWS_WITH_AS(load_csv(p), has(p + ": line 3, column 2: 'abc' is not a number"),
                         std::runtime_error);
    const auto q = err("word2.csv", "1,2\n1.5x,2\n");
    CHECK_THROWS_WITH_AS(load_csv(q), has(q + ": line 2, column 1: '1.5x' is not a number"),
                         std::runtime_error);
  }
  SUBCASE("NaN") {
    const auto p = err("nan.csv", "x,y\n1,2\nnan,3\n");
    CHECK_THROWS_WITH_AS(load_csv(p), has(p + ": line 3, column 1: NaN/inf is not allowed"),
                         std::runtime_error);
    const auto q = err("nan_first.csv", "NaN,1\n");  // a first line of numbers and NaN is data
    CHECK_THROWS_WITH_AS(load_csv(q), has(q + ": line 1, column 1: NaN/inf is not allowed"),
                         std::runtime_error);
  }
  SUBCASE("inf") {
    const auto p = err("inf.csv", "1,2\n3,inf\n");
    CHECK_THROWS_WITH_AS(load_csv(p), has(p + ": line 2, column 2: NaN/inf is not allowed"),
                         std::runtime_error);
    const auto q = err("minf.csv", "1,2\n3,4\n-Infinity,4\n");
    CHECK_THROWS_WITH_AS(load_csv(q), has(q + ": line 3, column 1: NaN/inf is not allowed"),
                         std::runtime_error);
    const auto r = err("huge.csv", "1,2\n3,1e39\n");  // finite in double, inf in float32
    CHECK_THROWS_WITH_AS(load_csv(r), has(r + ": line 2, column 2: '1e39' is out of"),
                         std::runtime_error);
  }
  SUBCASE("ragged row") {
    const auto p = err("ragged.csv", "1,2\n3,4,5\n");
    CHECK_THROWS_WITH_AS(load_csv(p), has(p + ": line 2: expected 2 columns"), std::runtime_error);
    CHECK_THROWS_WITH_AS(load_csv(p), doctest::Contains("got 3"), std::runtime_error);
    const auto q = err("ragged_header.csv", "a,b,c\n1,2,3\n\n4,5\n");
    CHECK_THROWS_WITH_AS(load_csv(q), has(q + ": line 4: expected 3 columns"), std::runtime_error);
    CHECK_THROWS_WITH_AS(load_csv(q), doctest::Contains("got 2"), std::runtime_error);
  }
  SUBCASE("one column") {
    const auto p = err("one.csv", "1\n2\n");
    CHECK_THROWS_WITH_AS(load_csv(p), has(p + ": line 1: need at least 2 columns"),
                         std::runtime_error);
    const auto q = err("one_header.csv", "x\n1\n");
    CHECK_THROWS_WITH_AS(load_csv(q), has(q + ": line 1: need at least 2 columns"),
                         std::runtime_error);
  }
  SUBCASE("empty file, blank file, header only") {
    const auto p = err("empty.csv", "");
    CHECK_THROWS_WITH_AS(load_csv(p), has(p + ": no data rows"), std::runtime_error);
    const auto q = err("blank.csv", "\n  \n\r\n");
    CHECK_THROWS_WITH_AS(load_csv(q), has(q + ": no data rows"), std::runtime_error);
    const auto r = err("header_only.csv", "x,y\n");
    CHECK_THROWS_WITH_AS(load_csv(r), has(r + ": no data rows"), std::runtime_error);
  }
  SUBCASE("missing file, a directory") {
    const auto p = (dir.path / "no_such.csv").string();
    CHECK_THROWS_WITH_AS(load_csv(p), has(p + ":"), std::runtime_error);
    const auto d = dir.path.string();
    CHECK_THROWS_WITH_AS(load_csv(d), has(d + ":"), std::runtime_error);
  }
  SUBCASE("a header is allowed on the first non-blank line only") {
    const auto p = err("two_headers.csv", "x,y\na,b\n1,2\n");
    CHECK_THROWS_WITH_AS(load_csv(p), has(p + ": line 2, column 1: 'a' is not a number"),
                         std::runtime_error);
  }
}

// ---------------------------------------------------------------------------------------------
// Splits and sampling

TEST_CASE("split_rows: sizes, every row in exactly one part, seeded") {
  const Index rows = 101;
  TensorF data(Shape{rows, 3});
  for (Index i = 0; i < rows; ++i) {
    data(i, 0) = float(i);
    data(i, 1) = float(i) + 0.5f;
    data(i, 2) = -float(i);
  }
  const Split s = split_rows(data, 0.2, 11);
  CHECK(s.test.shape() == Shape{20, 3});  // round(20.2)
  CHECK(s.train.shape() == Shape{81, 3});
  std::vector<int> seen(static_cast<std::size_t>(rows), 0);
  for (const TensorF* part : {&s.train, &s.test})
    for (Index i = 0; i < part->rows(); ++i) {
      const float id = (*part)(i, 0);
      REQUIRE(id >= 0);
      REQUIRE(id < float(rows));
      ++seen[static_cast<std::size_t>(id)];
      CHECK((*part)(i, 1) == id + 0.5f);  // rows stay whole
      CHECK((*part)(i, 2) == -id);
    }
  CHECK(std::all_of(seen.begin(), seen.end(), [](int c) { return c == 1; }));

  const Split again = split_rows(data, 0.2, 11);
  CHECK(same(again.test, s.test));
  CHECK(same(again.train, s.train));
  CHECK_FALSE(same(split_rows(data, 0.2, 12).test, s.test));
  // Shuffled: the test part is not simply the first or the last rows.
  bool sorted = true;
  for (Index i = 1; i < s.test.rows(); ++i) sorted = sorted && s.test(i, 0) == s.test(i - 1, 0) + 1;
  CHECK_FALSE(sorted);

  CHECK(split_rows(data, 0.001, 1).test.rows() == 1);  // at least 1
  TensorF ten(Shape{10, 2});
  CHECK(split_rows(ten, 0.25, 1).test.rows() == 3);  // round(2.5) = 3
  CHECK(split_rows(ten, 0.9, 1).train.rows() == 1);
  CHECK_THROWS_AS(split_rows(ten, 0.96, 1), std::invalid_argument);  // all rows in test
  CHECK_THROWS_AS(split_rows(ten, 0.0, 1), std::invalid_argument);
  CHECK_THROWS_AS(split_rows(ten, 1.0, 1), std::invalid_argument);
  CHECK_THROWS_AS(split_rows(ten, std::nan(""), 1), std::invalid_argument);
  CHECK_THROWS_AS(split_rows(TensorF(Shape{1, 2}), 0.5, 1), std::invalid_argument);
}

TEST_CASE("sample_rows: shape, rows of the data, seeded") {
  TensorF data(Shape{7, 2});
  for (Index i = 0; i < 7; ++i) {
    data(i, 0) = float(i);
    data(i, 1) = float(10 * i);
  }
  Generator gen(5);
  TensorF out;
  sample_rows(data, 1000, gen, out);
  REQUIRE(out.shape() == Shape{1000, 2});
  std::array<int, 7> counts{};
  for (Index i = 0; i < out.rows(); ++i) {
    const float id = out(i, 0);
    REQUIRE(id >= 0);
    REQUIRE(id < 7);
    CHECK(out(i, 1) == 10 * id);
    ++counts[static_cast<std::size_t>(id)];
  }
  for (int c : counts) CHECK(c > 100);  // 1000 / 7 = 143 each, with replacement
  // Reuses the buffer for a smaller draw; same seed, same rows.
  Generator g1(9), g2(9);
  TensorF a, b;
  sample_rows(data, 50, g1, a);
  sample_rows(data, 50, g2, b);
  CHECK(same(a, b));
  sample_rows(data, 0, g1, a);
  CHECK(a.rows() == 0);
  CHECK_THROWS_AS(sample_rows(TensorF(Shape{0, 2}), 3, gen, out), std::invalid_argument);
  CHECK_THROWS_AS(sample_rows(data, -1, gen, out), std::invalid_argument);
}

TEST_CASE("load_csv: a larger file through the fast path, value for value") {
  // 20,000 rows of 3 columns written with %.9g, which round-trips every float exactly; later rows
  // vary the spacing, signs and line endings that the per-line fast path must accept like the
  // first line's slow path does.
  TempDir dir;
  Generator gen(42);
  const Index rows = 20000;
  TensorF expected(Shape{rows, 3});
  std::string text = "a,b,c\n";
  char buf[128];
  for (Index i = 0; i < rows; ++i) {
    for (Index j = 0; j < 3; ++j)
      expected(i, j) = static_cast<float>(gen.normal() * std::pow(10.0, double(i % 7) - 3));
    const char* fmt = i % 5 == 0   ? "%.9g,%.9g,%.9g\n"
                      : i % 5 == 1 ? " %.9g ,\t%.9g,%.9g\t\r\n"
                      : i % 5 == 2 ? "%.9g,%.9g,%.9g\r\n"
                      : i % 5 == 3 ? "%.9g , %.9g , %.9g\n\n"
                                   : "%.9g,%.9g,%.9g\n";
    std::snprintf(buf, sizeof buf, fmt, double(expected(i, 0)), double(expected(i, 1)),
                  double(expected(i, 2)));
    text += buf;
  }
  text += "+1.5,2e3,-0\n";
  const CsvData d = load_csv(dir.write("big.csv", text));
  REQUIRE(d.points.shape() == Shape{rows + 1, 3});
  CHECK(d.columns == std::vector<std::string>{"a", "b", "c"});
  bool all_equal = true;
  for (Index i = 0; i < rows; ++i)
    for (Index j = 0; j < 3; ++j) all_equal = all_equal && d.points(i, j) == expected(i, j);
  CHECK(all_equal);
  CHECK(d.points(rows, 0) == 1.5f);
  CHECK(d.points(rows, 1) == 2000.0f);

  // An error deep in the file still names its line (the header is line 1, and every fourth row is
  // followed by a blank line) and column.
  const std::size_t cut = text.size() - std::string("+1.5,2e3,-0\n").size();
  const auto p = dir.write("bad.csv", text.substr(0, cut) + "1,2,3\n4,,6\n");
  const std::size_t lines_before = 1 + static_cast<std::size_t>(rows) + rows / 5;
  CHECK_THROWS_WITH_AS(
      load_csv(p),
      has(p + ": line " + std::to_string(lines_before + 2) + ", column 2: missing value"),
      std::runtime_error);
  const auto q = dir.write("ragged.csv", text.substr(0, cut) + "1,2,3,\n");
  CHECK_THROWS_WITH_AS(load_csv(q),
                       has(q + ": line " + std::to_string(lines_before + 1) +
                           ": expected 3 columns (as the header on line 1), got 4"),
                       std::runtime_error);
  const auto r = dir.write("plusminus.csv", "1,2\n+-3,4\n");
  CHECK_THROWS_WITH_AS(load_csv(r), has(r + ": line 2, column 1: '+-3' is not a number"),
                       std::runtime_error);
}

TEST_CASE("load_csv_as<double>: float64 values and range") {
  TempDir dir;
  const auto p = dir.write("d.csv", "x,y\n0.1,1e39\n-2.5e-300,3\n");
  const CsvTable<double> d = load_csv_as<double>(p);
  REQUIRE(d.points.shape() == Shape{2, 2});
  CHECK(d.points(0, 0) == 0.1);
  CHECK(d.points(0, 1) == 1e39);
  CHECK(d.points(1, 0) == -2.5e-300);
  const auto q = dir.write("huge.csv", "1,2\n3,1e309\n");
  CHECK_THROWS_WITH_AS(load_csv_as<double>(q),
                       has(q + ": line 2, column 2: '1e309' is out of the float64 range"),
                       std::runtime_error);
  CHECK_THROWS_WITH_AS(load_csv(dir.write("f.csv", "1,2\n3,1e39\n")),
                       doctest::Contains("is out of the float32 range"), std::runtime_error);
}

// ---------------------------------------------------------------------------------------------
// Generator state

TEST_CASE("Generator::state round trip, with and without a pending Box-Muller value") {
  Generator a(123);
  for (int i = 0; i < 5; ++i) a.next_u64();
  SUBCASE("no spare pending") {
    const std::string s = a.state();
    CHECK(s.size() == 4 * 17 + 1);
    CHECK(s.back() == '-');
    Generator b(999);
    b.set_state(s);
    CHECK(b.state() == s);
    for (int i = 0; i < 10; ++i) CHECK(a.next_u64() == b.next_u64());
    for (int i = 0; i < 5; ++i) CHECK(a.normal() == b.normal());
  }
  SUBCASE("a spare pending") {
    a.normal();  // draws a pair, returns one and keeps the other
    const std::string s = a.state();
    CHECK(s.size() == 5 * 17 - 1);
    Generator b(7);
    b.normal();
    b.normal();  // b has no spare now; set_state must give it a's
    b.set_state(s);
    for (int i = 0; i < 7; ++i) CHECK(a.normal() == b.normal());
    CHECK(a.next_u64() == b.next_u64());
  }
  SUBCASE("a restored generator without a spare drops the target's own") {
    Generator b(8);
    b.normal();  // b holds a spare
    b.set_state(a.state());
    Generator c(123);
    for (int i = 0; i < 5; ++i) c.next_u64();
    CHECK(b.normal() == c.normal());
  }
}

TEST_CASE("Generator::set_state rejects malformed states and leaves the generator alone") {
  Generator g(5);
  const std::string good = g.state();
  const std::string word = good.substr(0, 16);
  const std::vector<std::string> bad = {
      "",
      "garbage",
      word + "," + word + "," + word + "," + word,                              // 4 fields
      word + "," + word + "," + word + "," + word + ",-,-",                     // 6 fields
      word + "," + word + "," + word + "," + word.substr(1) + ",-",             // 15 digits
      word + "," + word + "," + word + "," + word + "0,-",                      // 17 digits
      word + "," + word + "," + word + ",0123456789abcdeg,-",                   // not hex
      "0000000000000000,0000000000000000,0000000000000000,0000000000000000,-",  // all zero
      word + "," + word + "," + word + "," + word + ",7ff8000000000000",        // NaN spare
      word + "," + word + "," + word + "," + word + ",- ",
  };
  for (const auto& s : bad) {
    CAPTURE(s);
    CHECK_THROWS_AS(g.set_state(s), std::invalid_argument);
    CHECK(g.state() == good);
  }
  CHECK_NOTHROW(g.set_state(word + "," + word + "," + word + "," + word + ",3FF0000000000000"));
  CHECK(g.normal() == 1.0);  // the restored spare comes first
}

// ---------------------------------------------------------------------------------------------
// Batches

TEST_CASE("BatchSampler: every row exactly once per epoch, the last batch kept or dropped") {
  const TensorF data = numbered_rows(103);
  SUBCASE("kept") {
    BatchSampler<float> s(data, {.batch = 10}, 1);
    CHECK(s.batches_per_epoch() == 11);
    TensorF out;
    for (long epoch = 1; epoch <= 3; ++epoch) {
      std::vector<int> seen(103, 0);
      for (int b = 0; b < 11; ++b) {
        s.next(out);
        CHECK(s.epoch() == epoch);
        CHECK(out.rows() == (b < 10 ? 10 : 3));
        for (Index i = 0; i < out.rows(); ++i) {
          CHECK(out(i, 1) == 10 * out(i, 0));  // rows stay whole
          ++seen[static_cast<std::size_t>(out(i, 0))];
        }
      }
      CHECK(std::all_of(seen.begin(), seen.end(), [](int c) { return c == 1; }));
    }
  }
  SUBCASE("dropped") {
    BatchSampler<float> s(data, {.batch = 10, .drop_last = true}, 1);
    CHECK(s.batches_per_epoch() == 10);
    TensorF out;
    for (long epoch = 1; epoch <= 3; ++epoch) {
      std::set<Index> seen;
      for (int b = 0; b < 10; ++b) {
        s.next(out);
        CHECK(s.epoch() == epoch);
        CHECK(out.rows() == 10);
        for (const Index id : ids(out)) seen.insert(id);
      }
      CHECK(seen.size() == 100);  // distinct rows; 3 left out this epoch
    }
    CHECK_THROWS_AS(BatchSampler<float>(data, {.batch = 104, .drop_last = true}, 1),
                    std::invalid_argument);
  }
  SUBCASE("a batch larger than the data is the whole permutation") {
    BatchSampler<float> s(data, {.batch = 500}, 1);
    TensorF out;
    s.next(out);
    CHECK(out.rows() == 103);
    s.next(out);
    CHECK(s.epoch() == 2);
  }
  const TensorF empty(Shape{0, 2});
  CHECK_THROWS_AS(BatchSampler<float>(empty, {}, 1), std::invalid_argument);
  CHECK_THROWS_AS(BatchSampler<float>(data, {.batch = 0}, 1), std::invalid_argument);
}

TEST_CASE("BatchSampler: the seed fixes the batches, and each epoch has its own order") {
  const TensorF data = numbered_rows(64);
  BatchSampler<float> a(data, {.batch = 16}, 3), b(data, {.batch = 16}, 3),
      c(data, {.batch = 16}, 4);
  TensorF x, y, z;
  std::vector<std::vector<Index>> epochs(2);
  bool c_differs = false;
  for (int e = 0; e < 2; ++e)
    for (int k = 0; k < 4; ++k) {
      a.next(x);
      b.next(y);
      c.next(z);
      CHECK(same(x, y));
      c_differs = c_differs || !same(x, z);
      for (const Index id : ids(x)) epochs[static_cast<std::size_t>(e)].push_back(id);
    }
  CHECK(c_differs);
  CHECK(epochs[0] != epochs[1]);
  // Shuffled, not in storage order.
  std::vector<Index> sorted = epochs[0];
  std::sort(sorted.begin(), sorted.end());
  CHECK(sorted != epochs[0]);
}

TEST_CASE("BatchSampler with replacement: rows drawn uniformly") {
  const TensorF data = numbered_rows(5);
  BatchSampler<float> s(data, {.batch = 1000, .replacement = true}, 9);
  std::array<long, 5> counts{};
  TensorF out;
  for (int k = 0; k < 20; ++k) {
    s.next(out);
    REQUIRE(out.rows() == 1000);
    for (const Index id : ids(out)) ++counts[static_cast<std::size_t>(id)];
  }
  // 20,000 draws, 4,000 expected per row with sd sqrt(20000 * 0.2 * 0.8) = 57: 5 sd each side.
  for (const long c : counts) CHECK(std::abs(c - 4000) < 285);
  CHECK(s.epoch() == 0);
  CHECK(s.batches_drawn() == 20);
  // The same draws as sample_rows from a generator with the same seed.
  Generator gen(9);
  TensorF ref;
  sample_rows(data, 1000, gen, ref);
  BatchSampler<float> again(data, {.batch = 1000, .replacement = true}, 9);
  again.next(out);
  CHECK(same(out, ref));
}

TEST_CASE("BatchSampler: a restored state continues exactly, mid-epoch and at epoch boundaries") {
  const TensorF data = numbered_rows(50);
  for (const bool replacement : {false, true})
    for (const bool drop_last : {false, true})
      for (const int before :
           {0, 1, 3, 4, 5, 9}) {  // 4 batches of 12 per epoch (+1 with the 2 left)
        CAPTURE(replacement);
        CAPTURE(drop_last);
        CAPTURE(before);
        const BatchOptions opt{.batch = 12, .replacement = replacement, .drop_last = drop_last};
        BatchSampler<float> a(data, opt, 77);
        TensorF x, y;
        for (int k = 0; k < before; ++k) a.next(x);
        const std::string state = a.state();
        BatchSampler<float> b(data, opt, 12345);  // another seed: the state replaces it
        b.set_state(state);
        CHECK(b.state() == state);
        CHECK(b.epoch() == a.epoch());
        CHECK(b.position() == a.position());
        for (int k = 0; k < 12; ++k) {
          a.next(x);
          b.next(y);
          CHECK(same(x, y));
        }
        CHECK(a.state() == b.state());
      }
}

TEST_CASE("BatchSampler::set_state rejects another sampler's or a damaged state") {
  const TensorF data = numbered_rows(50), other = numbered_rows(51);
  BatchSampler<float> a(data, {.batch = 12}, 1);
  TensorF x;
  a.next(x);
  const std::string good = a.state();
  BatchSampler<float> b(data, {.batch = 12}, 1);
  const std::string fresh = b.state();
  const std::vector<std::string> bad = {
      "",
      "batches/1",
      BatchSampler<float>(other, {.batch = 12}, 1).state(),  // other rows
      BatchSampler<float>(data, {.batch = 13}, 1).state(),   // other batch
      BatchSampler<float>(data, {.batch = 12, .replacement = true}, 1).state(),
      BatchSampler<float>(data, {.batch = 12, .drop_last = true}, 1).state(),
      good.substr(0, good.size() - 1),  // a damaged generator word
      good + " extra",
  };
  for (const auto& s : bad) {
    CAPTURE(s);
    CHECK_THROWS_AS(b.set_state(s), std::invalid_argument);
    CHECK(b.state() == fresh);
  }
  std::string pos = good;
  pos.replace(pos.find("position=12"), 11, "position=51");
  CHECK_THROWS_AS(b.set_state(pos), std::invalid_argument);
}

TEST_CASE("BatchSampler: a warm next() reuses the output buffer") {
  const TensorF data = numbered_rows(103);
  BatchSampler<float> s(data, {.batch = 10}, 2);
  TensorF out;
  s.next(out);
  const float* buffer = out.data();
  for (int k = 0; k < 40; ++k) {  // across epochs and their short last batches
    s.next(out);
    CHECK(out.data() == buffer);
  }
}

// Issue 18's numbers in data: the extremes of float32 load as written (denormals included, and
// values below the smallest denormal round to 0, as a float conversion does); what float64 itself
// cannot hold is an error naming the line and the column, as NaN and inf are.
TEST_CASE("load_csv: 1e38, float32's largest, denormals and underflow") {
  TempDir dir;
  const CsvData d =
      load_csv(dir.write("extremes.csv", "x,y\n1e38,1e-45\n-3.4028234e38,1e-50\n"));
  CHECK(d.points(0, 0) == 1e38f);
  CHECK(d.points(0, 1) == std::numeric_limits<float>::denorm_min());
  CHECK(d.points(1, 0) == -std::numeric_limits<float>::max());
  CHECK(d.points(1, 1) == 0.0f);
  const auto p = dir.write("tiny.csv", "x,y\n1,2\n1e-400,1\n");
  CHECK_THROWS_WITH_AS(load_csv(p), has(p + ": line 3, column 1: '1e-400' is out of the float32 range"),
                       std::runtime_error);
}
