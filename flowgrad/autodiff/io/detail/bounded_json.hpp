#pragma once
// JSON from files of unknown origin, parsed with a bound on nesting. nlohmann's parser itself is
// iterative, but copying, comparing and dumping a value recurse, so text like "[[[[..." a few
// megabytes deep parses fine and then overflows the stack at the first dump() in an error message.
// For the library's own .cpp files only (nlohmann never appears in a public header).
#include <cstddef>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <string_view>

namespace flowgrad::detail {

// Thrown by parse_json_bounded; callers put it into their own "<path>: <what>" errors.
struct JsonTooDeep : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// A SAX pass that builds nothing and stops where a container opens too deep. (nlohmann's parser
// callback could do this during the DOM parse, but its DOM-with-callback parser rescans the
// enclosing container at the end of every object, which is quadratic in the number of elements.)
class DepthCheck : public nlohmann::json_sax<nlohmann::json> {
 public:
  explicit DepthCheck(int max_depth) : max_depth_(max_depth) {}
  bool too_deep() const { return too_deep_; }

  bool null() override { return true; }
  bool boolean(bool) override { return true; }
  bool number_integer(number_integer_t) override { return true; }
  bool number_unsigned(number_unsigned_t) override { return true; }
  bool number_float(number_float_t, const string_t&) override { return true; }
  bool string(string_t&) override { return true; }
  bool binary(binary_t&) override { return true; }
  bool start_object(std::size_t) override { return open(); }
  bool key(string_t&) override { return true; }
  bool end_object() override { return close(); }
  bool start_array(std::size_t) override { return open(); }
  bool end_array() override { return close(); }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) override {
    return false;  // the DOM parse that follows throws the error, worded by nlohmann
  }

 private:
  bool open() {
    if (depth_ > max_depth_) {
      too_deep_ = true;
      return false;
    }
    ++depth_;
    return true;
  }
  bool close() {
    --depth_;
    return true;
  }
  int max_depth_, depth_ = 0;
  bool too_deep_ = false;
};

// Parses `text` (nlohmann::json::exception on a syntax error), or throws JsonTooDeep when an
// object or array opens at a depth over `max_depth` (the outermost value is at depth 0, its
// members at 1). Both passes take time linear in the text.
inline nlohmann::json parse_json_bounded(std::string_view text, int max_depth) {
  DepthCheck check(max_depth);
  nlohmann::json::sax_parse(text.begin(), text.end(), &check);
  if (check.too_deep())
    throw JsonTooDeep("JSON nested deeper than " + std::to_string(max_depth + 1) + " levels");
  return nlohmann::json::parse(text.begin(), text.end());
}

}  // namespace flowgrad::detail
