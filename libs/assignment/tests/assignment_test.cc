// Tests of libs/assignment. Expected hashes, ranges and choices come from GrowthBook:
// testdata/growthbook_cases.json (the SDK's published cases.json) and
// testdata/growthbook_unicode_cases.json (the npm SDK run on non-ASCII strings by
// testdata/gen_unicode_cases.js). None are computed by the code under test.
#include "splitstream/assignment/assignment.h"

#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <boost/math/distributions/chi_squared.hpp>
#include <charconv>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

// Defined in allocation_counter.cc, which replaces the global operator new.
long AllocationCount();

namespace splitstream::assignment {
namespace {

// ---------------------------------------------------------------------------------------
// Helpers

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

// Parses with full precision so "0.22" becomes the nearest double, like JavaScript.
rapidjson::Document LoadJson(const std::string& name) {
  const std::string text = ReadFile(std::string(SPLITSTREAM_ASSIGNMENT_TESTDATA) + "/" + name);
  rapidjson::Document doc;
  doc.Parse<rapidjson::kParseFullPrecisionFlag>(text.c_str());
  EXPECT_FALSE(doc.HasParseError()) << name;
  EXPECT_TRUE(doc.IsObject()) << name;
  return doc;
}

std::string FromHex(std::string_view hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    unsigned value = 0;
    std::from_chars(hex.data() + i, hex.data() + i + 2, value, 16);
    out.push_back(static_cast<char>(value));
  }
  return out;
}

std::vector<BucketRange> RangesFromJson(const rapidjson::Value& array) {
  std::vector<BucketRange> ranges;
  for (const auto& r : array.GetArray()) ranges.push_back({r[0].GetDouble(), r[1].GetDouble()});
  return ranges;
}

// Reference FNV-1a over UTF-16 code units the compiler produced (u"..." literals): an
// independent oracle for the UTF-8 decoding in Fnv32a().
uint32_t ReferenceFnv(std::u16string_view units) {
  uint32_t h = 0x811C9DC5u;
  for (char16_t c : units) h = (h ^ c) * 0x01000193u;
  return h;
}

// Writes "user-<i>" into `buffer` without allocating.
std::string_view UserId(uint64_t i, char (&buffer)[32]) {
  constexpr std::string_view kPrefix = "user-";
  std::copy(kPrefix.begin(), kPrefix.end(), buffer);
  auto [end, ec] = std::to_chars(buffer + kPrefix.size(), buffer + sizeof(buffer), i);
  (void)ec;
  return std::string_view(buffer, end - buffer);
}

// ---------------------------------------------------------------------------------------
// GrowthBook's cases.json

TEST(GrowthBookCases, Hash) {
  const rapidjson::Document doc = LoadJson("growthbook_cases.json");
  ASSERT_TRUE(doc.HasMember("hash"));
  int checked = 0;
  for (const auto& c : doc["hash"].GetArray()) {
    const std::string seed = c["seed"].GetString();
    const std::string value = c["value"].GetString();
    const int version = c["version"].GetInt();
    const std::optional<double> got = Hash(seed, value, version);
    if (c["hash"].IsNull()) {
      EXPECT_FALSE(got.has_value()) << seed << "/" << value << " v" << version;
    } else {
      ASSERT_TRUE(got.has_value()) << seed << "/" << value << " v" << version;
      // Exact: both sides are the double nearest to k/1000 or k/10000.
      EXPECT_EQ(*got, c["hash"].GetDouble()) << seed << "/" << value << " v" << version;
    }
    ++checked;
  }
  EXPECT_EQ(checked, 15);
}

TEST(GrowthBookCases, GetBucketRange) {
  const rapidjson::Document doc = LoadJson("growthbook_cases.json");
  int checked = 0;
  for (const auto& c : doc["getBucketRange"].GetArray()) {
    const std::string name = c["name"].GetString();
    std::vector<double> weights;
    if (!c["weights"].IsNull()) {
      for (const auto& w : c["weights"].GetArray()) weights.push_back(w.GetDouble());
    }
    const auto got = BucketRanges(c["variations"].GetInt(), c["coverage"].GetDouble(), weights);
    const auto want = RangesFromJson(c["ranges"]);
    ASSERT_EQ(got.size(), want.size()) << name;
    for (size_t i = 0; i < want.size(); ++i) {
      // The SDK's own test rounds to 1e-6 (e.g. 0.2 * 0.2 = 0.04000000000000001).
      EXPECT_NEAR(got[i].start, want[i].start, 1e-9) << name << " range " << i;
      EXPECT_NEAR(got[i].end, want[i].end, 1e-9) << name << " range " << i;
    }
    ++checked;
  }
  EXPECT_EQ(checked, 13);
}

TEST(GrowthBookCases, ChooseVariation) {
  const rapidjson::Document doc = LoadJson("growthbook_cases.json");
  int checked = 0;
  for (const auto& c : doc["chooseVariation"].GetArray()) {
    const auto ranges = RangesFromJson(c["ranges"]);
    EXPECT_EQ(ChooseVariation(c["n"].GetDouble(), ranges), c["variation"].GetInt())
        << c["name"].GetString();
    ++checked;
  }
  EXPECT_EQ(checked, 13);
}

TEST(GrowthBookCases, InNamespace) {
  const rapidjson::Document doc = LoadJson("growthbook_cases.json");
  int checked = 0;
  for (const auto& c : doc["inNamespace"].GetArray()) {
    const LayerShare share{c["layer"].GetString(), c["start"].GetDouble(), c["end"].GetDouble()};
    EXPECT_EQ(InLayer(c["user"].GetString(), share), c["in"].GetBool())
        << c["user"].GetString() << " " << share.layer << " [" << share.start << ", " << share.end
        << ")";
    ++checked;
  }
  EXPECT_EQ(checked, 16);
}

// Whole experiments from the SDK's feature/run/stickyBucket cases.
TEST(GrowthBookCases, Assign) {
  const rapidjson::Document doc = LoadJson("growthbook_cases.json");
  int checked = 0;
  for (const auto& c : doc["assign"].GetArray()) {
    const std::string name = c["name"].GetString();
    std::vector<double> weights;
    for (const auto& w : c["weights"].GetArray()) weights.push_back(w.GetDouble());
    const Allocation allocation(c["seed"].GetString(), c["version"].GetInt(),
                                c["coverage"].GetDouble(), weights, std::nullopt);
    const Decision d = allocation.Assign(c["user"].GetString());
    EXPECT_EQ(d.reason, Reason::kAssigned) << name;
    EXPECT_EQ(d.variant, c["variation"].GetInt()) << name;
    if (!c["bucket"].IsNull()) {
      EXPECT_EQ(d.bucket, c["bucket"].GetDouble()) << name;
    }
    ++checked;
  }
  EXPECT_EQ(checked, 7);
}

// The npm SDK on accents, CJK, emoji (surrogate pairs) and ill-formed UTF-8.
TEST(GrowthBookCases, UnicodeHash) {
  const rapidjson::Document doc = LoadJson("growthbook_unicode_cases.json");
  int checked = 0;
  for (const auto& c : doc["hash"].GetArray()) {
    const std::string seed = FromHex(c["seed"].GetString());
    const std::string value = FromHex(c["value"].GetString());
    const int version = c["version"].GetInt();
    const std::optional<double> got = Hash(seed, value, version);
    ASSERT_TRUE(got.has_value());
    EXPECT_EQ(*got, c["hash"].GetDouble()) << "seed " << c["seed"].GetString() << " value "
                                           << c["value"].GetString() << " v" << version;
    ++checked;
  }
  EXPECT_EQ(checked, 144);
}

TEST(GrowthBookCases, UnicodeInNamespace) {
  const rapidjson::Document doc = LoadJson("growthbook_unicode_cases.json");
  int checked = 0;
  for (const auto& c : doc["inNamespace"].GetArray()) {
    const LayerShare share{FromHex(c["layer"].GetString()), c["start"].GetDouble(),
                           c["end"].GetDouble()};
    EXPECT_EQ(InLayer(FromHex(c["user"].GetString()), share), c["in"].GetBool())
        << c["user"].GetString() << " " << c["layer"].GetString();
    ++checked;
  }
  EXPECT_EQ(checked, 27);
}

// ---------------------------------------------------------------------------------------
// Fixed tables pinning the hash (values copied from the two data files above).

struct HashCase {
  std::string_view seed;
  std::string_view value;
  int version;
  double hash;
};

constexpr HashCase kHashTable[] = {
    {"", "a", 1, 0.22},
    {"b", "a", 1, 0.946},
    {"asdf", "8952klfjas09ujk", 1, 0.549},
    {"", "___)((*\":&", 1, 0.563},
    {"seed", "a", 2, 0.0505},
    {"foo", "def", 2, 0.2019},
    {"90850943850283058242805", "123", 2, 0.7516},
    {"()**(%$##$%#$#", "___)((*\":&", 2, 0.0128},
    {"feature", "123", 1, 0.863},
    {"feature-exp", "i123", 2, 0.9943},
    // Non-ASCII, from @growthbook/growthbook 1.8.0.
    {"", "caf\xc3\xa9", 1, 0.068},                                            // café
    {"exp-1", "Z\xc3\xbcrich", 2, 0.919},                                     // Zürich
    {"exp-1", "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e", 2, 0.2751},             // 日本語
    {"", "\xf0\x9f\x98\x80", 2, 0.4971},                                      // 😀
    {"exp-1", "user-\xf0\x9f\x9a\x80-42", 1, 0.854},                          // user-🚀-42
    {"\xc3\xa9", "\xf0\x9f\x91\xa9\xe2\x80\x8d\xf0\x9f\x92\xbb", 2, 0.5368},  // é, 👩‍💻
    {"\xf0\x9f\x8e\xafseed", "\xf0\x9d\x84\x9emusic", 2, 0.9867},             // 🎯seed, 𝄞music
    // Ill-formed UTF-8 (WHATWG TextDecoder replacement).
    {"exp-1", "\xff", 2, 0.8164},
    {"exp-1", "a\xc3(", 2, 0.3479},
    {"exp-1", "\xed\xa0\x80", 1, 0.799},
    {"\xc3\xa9",
     "\x80\xbf"
     "A",
     2, 0.1167},
};

TEST(GoldenTable, Hash) {
  for (const HashCase& c : kHashTable) {
    const std::optional<double> got = Hash(c.seed, c.value, c.version);
    ASSERT_TRUE(got.has_value());
    EXPECT_EQ(*got, c.hash) << c.seed << "/" << c.value << " v" << c.version;
  }
  EXPECT_FALSE(Hash("abc", "def", 99).has_value());
  EXPECT_FALSE(Hash("abc", "def", 0).has_value());
  EXPECT_FALSE(Hash("abc", "def", 3).has_value());
}

TEST(GoldenTable, RangesAndChoices) {
  const double uneven[] = {0.2, 0.3, 0.5};
  const auto ranges = BucketRanges(3, 0.2, uneven);
  ASSERT_EQ(ranges.size(), 3u);
  EXPECT_NEAR(ranges[0].end, 0.04, 1e-12);
  EXPECT_NEAR(ranges[1].start, 0.2, 1e-12);
  EXPECT_NEAR(ranges[1].end, 0.26, 1e-12);
  EXPECT_NEAR(ranges[2].start, 0.5, 1e-12);
  EXPECT_NEAR(ranges[2].end, 0.6, 1e-12);
  const double almost[] = {0.4, 0.5999};
  EXPECT_NEAR(BucketRanges(2, 1, almost)[1].end, 0.9999, 1e-12);
  const double mismatched[] = {0.4, 0.4, 0.2};
  EXPECT_NEAR(BucketRanges(4, 1, mismatched)[3].start, 0.75, 1e-12);
  EXPECT_TRUE(BucketRanges(0, 1, {}).empty());
  EXPECT_TRUE(BucketRanges(-1, 1, {}).empty());

  const BucketRange reduced[] = {{0, 0.25}, {0.5, 0.75}};
  EXPECT_EQ(ChooseVariation(0.2, reduced), 0);
  EXPECT_EQ(ChooseVariation(0.25, reduced), -1);
  EXPECT_EQ(ChooseVariation(0.5, reduced), 1);
  EXPECT_EQ(ChooseVariation(0.75, reduced), -1);
  const BucketRange zero_width[] = {{0, 0.5}, {0.5, 0.5}, {0.5, 1}};
  EXPECT_EQ(ChooseVariation(0.5, zero_width), 2);
}

// ---------------------------------------------------------------------------------------
// Fnv32a

TEST(Fnv32a, PublishedVectors) {
  // FNV-1a 32 test vectors (draft-eastlake-fnv, appendix C); ASCII, so bytes = UTF-16 units.
  EXPECT_EQ(Fnv32a(""), 0x811C9DC5u);
  EXPECT_EQ(Fnv32a("a"), 0xE40C292Cu);
  EXPECT_EQ(Fnv32a("foobar"), 0xBF9CF968u);
}

TEST(Fnv32a, HashesUtf16CodeUnits) {
  EXPECT_EQ(Fnv32a("caf\xc3\xa9"), ReferenceFnv(u"caf\u00e9"));
  EXPECT_EQ(Fnv32a("\xe6\x97\xa5\xe6\x9c\xac"), ReferenceFnv(u"\u65e5\u672c"));
  EXPECT_EQ(Fnv32a("\xf0\x9f\x98\x80"), ReferenceFnv(u"\U0001F600"));  // D83D DE00
  EXPECT_EQ(Fnv32a("\xf4\x8f\xbf\xbf"), ReferenceFnv(u"\U0010FFFF"));
  EXPECT_EQ(Fnv32a("\xef\xbf\xbf"), ReferenceFnv(u"\uFFFF"));
  EXPECT_EQ(Fnv32a(std::string_view("a\0b", 3)), ReferenceFnv(std::u16string_view(u"a\0b", 3)));
}

TEST(Fnv32a, IllFormedBytesBecomeReplacementCharacters) {
  EXPECT_EQ(Fnv32a("\xff"), ReferenceFnv(u"\uFFFD"));
  EXPECT_EQ(Fnv32a("\xc3"), ReferenceFnv(u"\uFFFD"));                      // truncated at the end
  EXPECT_EQ(Fnv32a("\xf0\x9f\x98"), ReferenceFnv(u"\uFFFD"));              // one U+FFFD per subpart
  EXPECT_EQ(Fnv32a("a\xc3(b"), ReferenceFnv(u"a\uFFFD(b"));                // '(' decoded again
  EXPECT_EQ(Fnv32a("\xc0\xaf"), ReferenceFnv(u"\uFFFD\uFFFD"));            // overlong
  EXPECT_EQ(Fnv32a("\xed\xa0\x80"), ReferenceFnv(u"\uFFFD\uFFFD\uFFFD"));  // surrogate
  EXPECT_EQ(Fnv32a("\xf4\x90\x80\x80"), ReferenceFnv(u"\uFFFD\uFFFD\uFFFD\uFFFD"));
  EXPECT_EQ(Fnv32a("\x80\xbf"
                   "A"),
            ReferenceFnv(u"\uFFFD\uFFFDA"));
}

// ---------------------------------------------------------------------------------------
// Determinism and the Assign() contract

TEST(Allocation, DeterministicAcrossInstancesAndCalls) {
  const Allocation a("checkout-button", 2, 0.8, {0.2, 0.3, 0.5}, std::nullopt);
  const Allocation b("checkout-button", 2, 0.8, {0.2, 0.3, 0.5}, std::nullopt);
  char buffer[32];
  for (uint64_t i = 0; i < 10000; ++i) {
    const std::string_view id = UserId(i, buffer);
    const Decision first = a.Assign(id);
    const Decision again = a.Assign(id);
    const Decision other = b.Assign(std::string(id));
    EXPECT_EQ(first.variant, again.variant);
    EXPECT_EQ(first.variant, other.variant);
    EXPECT_EQ(first.reason, other.reason);
    EXPECT_EQ(first.bucket, other.bucket);
    // Assign is Hash + ChooseVariation over the ranges.
    EXPECT_EQ(first.bucket, *Hash("checkout-button", id, 2));
    EXPECT_EQ(first.variant, ChooseVariation(first.bucket, a.ranges()));
  }
}

TEST(Allocation, SeedChangesTheAssignment) {
  const Allocation a("seed-a", 2, 1, {0.5, 0.5}, std::nullopt);
  const Allocation b("seed-b", 2, 1, {0.5, 0.5}, std::nullopt);
  char buffer[32];
  int differ = 0;
  for (uint64_t i = 0; i < 10000; ++i) {
    const std::string_view id = UserId(i, buffer);
    differ += a.Assign(id).variant != b.Assign(id).variant;
  }
  // Independent seeds: about half the users differ.
  EXPECT_GT(differ, 4500);
  EXPECT_LT(differ, 5500);
}

TEST(Allocation, EmptyUserId) {
  const Allocation a("exp", 2, 1, {0.5, 0.5}, LayerShare{"layer", 0, 1});
  const Decision d = a.Assign("");
  EXPECT_EQ(d.reason, Reason::kEmptyUserId);
  EXPECT_EQ(d.variant, -1);
}

TEST(Allocation, LayerIsCheckedBeforeTraffic) {
  // Coverage 0 keeps everybody out of traffic, but users outside the share must be told
  // kNotInLayer. Users "1".."4" are outside namespace1 [0, 0.4) in GrowthBook's cases.
  const Allocation a("exp", 2, 0, {0.5, 0.5}, LayerShare{"namespace1", 0, 0.4});
  for (const char* user : {"1", "2", "3", "4"}) {
    EXPECT_EQ(a.Assign(user).reason, Reason::kNotInLayer) << user;
  }
  // User "3" is inside namespace2 [0, 0.4): it passes the layer and then misses traffic.
  const Allocation b("exp", 2, 0, {0.5, 0.5}, LayerShare{"namespace2", 0, 0.4});
  const Decision d = b.Assign("3");
  EXPECT_EQ(d.reason, Reason::kNotInTraffic);
  EXPECT_EQ(d.variant, -1);
}

TEST(Allocation, UnknownHashVersionAssignsNobody) {
  EXPECT_TRUE(IsSupportedHashVersion(1));
  EXPECT_TRUE(IsSupportedHashVersion(2));
  EXPECT_FALSE(IsSupportedHashVersion(3));
  const Allocation a("exp", 7, 1, {0.5, 0.5}, std::nullopt);
  EXPECT_EQ(a.Assign("user-1").reason, Reason::kNotInTraffic);
  EXPECT_EQ(a.Assign("user-1").variant, -1);
}

TEST(Allocation, WeightsOffOneAreNormalised) {
  const Allocation raw("exp", 2, 1, {1, 3}, std::nullopt);
  ASSERT_EQ(raw.ranges().size(), 2u);
  EXPECT_DOUBLE_EQ(raw.ranges()[0].end, 0.25);
  EXPECT_DOUBLE_EQ(raw.ranges()[1].start, 0.25);
  EXPECT_DOUBLE_EQ(raw.ranges()[1].end, 1.0);
  // Weights GrowthBook accepts (sum 0.9999) are kept as they are.
  const Allocation almost("exp", 2, 1, {0.4, 0.5999}, std::nullopt);
  EXPECT_DOUBLE_EQ(almost.ranges()[1].end, 0.9999);
  // Non-positive weights cannot be normalised: equal weights.
  const Allocation bad("exp", 2, 1, {-1, 3}, std::nullopt);
  EXPECT_DOUBLE_EQ(bad.ranges()[0].end, 0.5);
  // No weights: no variants, nobody assigned.
  const Allocation none("exp", 2, 1, {}, std::nullopt);
  EXPECT_TRUE(none.ranges().empty());
  EXPECT_EQ(none.Assign("user-1").reason, Reason::kNotInTraffic);
}

TEST(Allocation, ReasonNames) {
  EXPECT_EQ(ReasonName(Reason::kAssigned), "assigned");
  EXPECT_EQ(ReasonName(Reason::kNotInLayer), "not_in_layer");
  EXPECT_EQ(ReasonName(Reason::kNotInTraffic), "not_in_traffic");
  EXPECT_EQ(ReasonName(Reason::kEmptyUserId), "empty_user_id");
}

// Assign hashes the layer and the experiment side by side (two FNV chains in one loop while
// both inputs are ASCII); it must decide exactly as the published hashes one after the other:
// hash("__" + layer, user, 1) against the share, then hash(seed, user, version) against the
// ranges. ASCII, Unicode and ill-formed user ids and layers, of every length up to 40 bytes.
TEST(Allocation, AssignWithALayerEqualsTheHashesOneAfterTheOther) {
  std::vector<std::string> users;
  char buffer[32];
  for (uint64_t i = 0; i < 2000; ++i) users.emplace_back(UserId(i, buffer));
  std::mt19937_64 rng(20261206);
  for (int i = 0; i < 4000; ++i) {
    std::string u(1 + rng() % 40, ' ');
    const bool ascii = i % 2 == 0;
    for (char& c : u) c = static_cast<char>(ascii ? 0x20 + rng() % 0x5F : rng() % 256);
    if (!ascii && i % 4 == 1)
      u.replace(rng() % u.size(), 1, "\xf0\x9f\x9a\x80");  // a surrogate pair
    users.push_back(u);
  }
  users.push_back("caf\xc3\xa9");
  users.push_back(std::string(1, '\xff'));
  const std::vector<std::string> layers = {"checkout-layer", "", "L",
                                           "caf\xc3\xa9-\xf0\x9f\x9a\x80-layer",
                                           std::string(45, 'x') + "\xe2\x82\xac"};
  int in_layer = 0;
  int out_of_layer = 0;
  for (const std::string& layer : layers) {
    for (int version : {1, 2}) {
      const LayerShare share{layer, 0.1, 0.95};
      const Allocation a("seed-\xc3\xa9-" + layer, version, 0.8, {0.2, 0.3, 0.5}, share);
      for (const std::string& u : users) {
        const Decision got = a.Assign(u);
        const double layer_hash = *Hash("__" + layer, u, 1);
        if (!(layer_hash >= share.start && layer_hash < share.end)) {
          ASSERT_EQ(got.reason, Reason::kNotInLayer) << layer << " v" << version << " " << u;
          ASSERT_EQ(got.bucket, layer_hash) << layer << " v" << version << " " << u;
          ++out_of_layer;
          continue;
        }
        ++in_layer;
        const double n = *Hash("seed-\xc3\xa9-" + layer, u, version);
        const int variant = ChooseVariation(n, a.ranges());
        ASSERT_EQ(got.bucket, n) << layer << " v" << version << " " << u;
        ASSERT_EQ(got.variant, variant) << layer << " v" << version << " " << u;
        ASSERT_EQ(got.reason, variant < 0 ? Reason::kNotInTraffic : Reason::kAssigned);
      }
    }
  }
  EXPECT_GT(in_layer, 1000);
  EXPECT_GT(out_of_layer, 1000);
}

TEST(Allocation, AssignDoesNotAllocate) {
  const Allocation a("a-fairly-long-experiment-seed", 2, 0.9, {0.1, 0.2, 0.3, 0.4},
                     LayerShare{"checkout-layer", 0.1, 0.95});
  const std::string non_ascii = "user-\xf0\x9f\x9a\x80-caf\xc3\xa9-\xff";
  char buffer[32];
  const long before = AllocationCount();
  int assigned = 0;
  for (uint64_t i = 0; i < 1000; ++i) {
    assigned += a.Assign(UserId(i, buffer)).reason == Reason::kAssigned;
  }
  assigned += a.Assign(non_ascii).reason == Reason::kAssigned;
  EXPECT_EQ(AllocationCount() - before, 0);
  EXPECT_GT(assigned, 0);
}

// ---------------------------------------------------------------------------------------
// Statistical properties

// Pearson's chi-square of the variant counts against the weights, over 1 M users, rejected
// at alpha = 1e-4 (critical value from Boost.Math) so a correct hash fails 1 run in 10 000.
void ExpectUniform(const std::vector<double>& weights, std::string_view seed) {
  constexpr uint64_t kUsers = 1'000'000;
  const Allocation allocation(std::string(seed), 2, 1, weights, std::nullopt);
  std::vector<uint64_t> counts(weights.size(), 0);
  char buffer[32];
  for (uint64_t i = 0; i < kUsers; ++i) {
    const Decision d = allocation.Assign(UserId(i, buffer));
    ASSERT_EQ(d.reason, Reason::kAssigned);
    ++counts[static_cast<size_t>(d.variant)];
  }
  double chi2 = 0;
  for (size_t v = 0; v < weights.size(); ++v) {
    const double expected = weights[v] * kUsers;
    const double diff = static_cast<double>(counts[v]) - expected;
    chi2 += diff * diff / expected;
  }
  const boost::math::chi_squared dist(static_cast<double>(weights.size() - 1));
  const double critical = boost::math::quantile(boost::math::complement(dist, 1e-4));
  EXPECT_LT(chi2, critical) << "seed " << seed << ", " << weights.size() << " variants";
}

TEST(Uniformity, FiftyFifty) { ExpectUniform({0.5, 0.5}, "uniform-50-50"); }
TEST(Uniformity, TenNinety) { ExpectUniform({0.1, 0.9}, "uniform-10-90"); }
TEST(Uniformity, ThreeEqual) { ExpectUniform({1.0 / 3, 1.0 / 3, 1.0 / 3}, "uniform-3"); }
TEST(Uniformity, TwentyThirtyFifty) { ExpectUniform({0.2, 0.3, 0.5}, "uniform-20-30-50"); }

TEST(Uniformity, CriticalValueRejectsABiasedSplit) {
  // The check above can fail: a 50.5/49.5 split over 1 M users is far past the critical
  // value (chi2 = 100 against about 15.1 for one degree of freedom).
  const boost::math::chi_squared dist(1);
  const double critical = boost::math::quantile(boost::math::complement(dist, 1e-4));
  const double diff = 5000;
  EXPECT_GT(2 * diff * diff / 500000, critical);
  EXPECT_NEAR(critical, 15.137, 0.01);  // chi2(1) upper 1e-4 quantile, from tables
}

TEST(Coverage, LoweringCoverageNeverMovesAUser) {
  const std::vector<std::vector<double>> weight_sets = {
      {0.5, 0.5}, {0.1, 0.9}, {0.2, 0.3, 0.5}, {0.25, 0.25, 0.25, 0.25}};
  const double coverages[] = {1.0, 0.9, 0.5, 0.2, 0.05, 0.0};
  char buffer[32];
  for (const auto& weights : weight_sets) {
    std::vector<Allocation> allocations;
    for (double c : coverages)
      allocations.emplace_back("coverage-exp", 2, c, weights, std::nullopt);
    for (uint64_t i = 0; i < 100'000; ++i) {
      const std::string_view id = UserId(i, buffer);
      for (size_t k = 1; k < allocations.size(); ++k) {
        const Decision wider = allocations[k - 1].Assign(id);
        const Decision narrower = allocations[k].Assign(id);
        if (narrower.reason == Reason::kAssigned) {
          ASSERT_EQ(wider.reason, Reason::kAssigned) << id << " coverage " << coverages[k];
          ASSERT_EQ(wider.variant, narrower.variant) << id << " coverage " << coverages[k];
        }
      }
    }
  }
}

TEST(Coverage, TrafficShareMatchesCoverage) {
  constexpr uint64_t kUsers = 200'000;
  const Allocation a("traffic-exp", 2, 0.3, {0.5, 0.5}, std::nullopt);
  char buffer[32];
  uint64_t in = 0;
  for (uint64_t i = 0; i < kUsers; ++i)
    in += a.Assign(UserId(i, buffer)).reason == Reason::kAssigned;
  // Binomial(200 000, 0.3): sd about 205; allow 5 sd.
  EXPECT_NEAR(static_cast<double>(in), 0.3 * kUsers, 5 * 205.0);
}

TEST(Layers, DisjointSharesPartitionUsers) {
  const LayerShare first{"checkout", 0, 0.5};
  const LayerShare second{"checkout", 0.5, 1};
  const Allocation a("exp-a", 2, 1, {0.5, 0.5}, first);
  const Allocation b("exp-b", 2, 1, {0.5, 0.5}, second);
  constexpr uint64_t kUsers = 200'000;
  char buffer[32];
  uint64_t in_a = 0;
  for (uint64_t i = 0; i < kUsers; ++i) {
    const std::string_view id = UserId(i, buffer);
    const bool a_in = a.Assign(id).reason != Reason::kNotInLayer;
    const bool b_in = b.Assign(id).reason != Reason::kNotInLayer;
    ASSERT_NE(a_in, b_in) << id;  // exactly one of the two
    in_a += a_in;
  }
  // The layer hash (v1) has 1000 buckets; the split is still about even.
  EXPECT_NEAR(static_cast<double>(in_a), kUsers / 2.0, 5 * 224.0);
}

TEST(Layers, LayersAreIndependent) {
  // The same share of two unrelated layers selects unrelated users: about a quarter are in
  // both halves.
  const LayerShare x{"checkout", 0, 0.5};
  const LayerShare y{"search-ranking", 0, 0.5};
  char buffer[32];
  int both = 0;
  for (uint64_t i = 0; i < 20'000; ++i) {
    const std::string_view id = UserId(i, buffer);
    both += InLayer(id, x) && InLayer(id, y);
  }
  EXPECT_NEAR(both, 5000, 5 * 61.0);  // Binomial(20 000, 0.25)
}

TEST(Layers, NearIdenticalLayerNamesCorrelateAsInGrowthBook) {
  // GrowthBook's namespace hash is v1 (FNV-1a of user + "__" + layer, mod 1000), which mixes
  // the last characters poorly: "layer-x" and "layer-y" share far fewer users than 1/4. The
  // reference SDK (@growthbook/growthbook 1.8.0 inNamespace) counts 2342 of these 20 000
  // users in [0, 0.5) of both; we must agree, bias included.
  const LayerShare x{"layer-x", 0, 0.5};
  const LayerShare y{"layer-y", 0, 0.5};
  char buffer[32];
  int both = 0;
  for (uint64_t i = 0; i < 20'000; ++i) {
    const std::string_view id = UserId(i, buffer);
    both += InLayer(id, x) && InLayer(id, y);
  }
  EXPECT_EQ(both, 2342);
}

TEST(Layers, Overlaps) {
  EXPECT_FALSE(Overlaps({"l", 0, 0.5}, {"l", 0.5, 1}));
  EXPECT_FALSE(Overlaps({"l", 0.5, 1}, {"l", 0, 0.5}));
  EXPECT_TRUE(Overlaps({"l", 0, 0.6}, {"l", 0.5, 1}));
  EXPECT_TRUE(Overlaps({"l", 0.2, 0.3}, {"l", 0, 1}));
  EXPECT_TRUE(Overlaps({"l", 0, 1}, {"l", 0, 1}));
  EXPECT_FALSE(Overlaps({"l", 0, 0.6}, {"m", 0.5, 1}));  // different layers
  EXPECT_FALSE(Overlaps({"l", 0.3, 0.3}, {"l", 0, 1}));  // empty share
  EXPECT_FALSE(Overlaps({"l", 0.6, 0.4}, {"l", 0, 1}));  // inverted share
}

}  // namespace
}  // namespace splitstream::assignment
