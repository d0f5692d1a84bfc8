// FileArchive: hourly JSON-lines files of the raw change stream.
#include "file_archive.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "sink_fakes.h"

namespace splitstream::pipeline::testing {
namespace {

std::string ReadAll(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class FileArchiveTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("sink_archive_" + std::to_string(getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::filesystem::path dir_;
  FakeClock clock_{1'700'000'000'000'000};
};

TEST_F(FileArchiveTest, PathIsTopicDayAndUtcHourOfTheMessageTimestamp) {
  // 2023-11-14T22:13:20Z
  EXPECT_EQ(FileArchive::RelativePath("p.public.events", 1700000000000),
            "p.public.events/2023-11-14/22.jsonl");
  EXPECT_EQ(FileArchive::RelativePath("t", 0), "t/1970-01-01/00.jsonl");
  EXPECT_EQ(FileArchive::RelativePath("t", 1700000000000 + 3600 * 1000 * 2 - 1),
            "t/2023-11-15/00.jsonl");
}

TEST_F(FileArchiveTest, LineEmbedsJsonKeepsOtherTextAsAStringAndNullForAbsent) {
  auto m = Message::Make("t", 2, 42, "{\"id\": 1}", "{\n \"a\": [1, 2]\n}", 1700000000000);
  EXPECT_EQ(FileArchive::Line(m),
            R"({"topic":"t","partition":2,"offset":42,"timestamp_ms":1700000000000,)"
            R"("key":{"id":1},"value":{"a":[1,2]}})");
  auto tomb = Message::Make("t", 0, 1, "[1]", std::nullopt, 5);
  EXPECT_EQ(FileArchive::Line(tomb),
            R"({"topic":"t","partition":0,"offset":1,"timestamp_ms":5,"key":[1],"value":null})");
  auto garbage = Message::Make("t", 0, 2, std::nullopt, "not \"json\"\n", 5);
  EXPECT_EQ(FileArchive::Line(garbage),
            R"({"topic":"t","partition":0,"offset":2,"timestamp_ms":5,"key":null,)"
            R"("value":"not \"json\"\n"})");
}

TEST_F(FileArchiveTest, FlushAppendsToHourlyFiles) {
  FileArchive archive(dir_.string(), &clock_);
  const int64_t h22 = 1700000000000, h23 = h22 + 3600 * 1000;
  ASSERT_TRUE(archive.Add(Message::Make("a", 0, 0, std::nullopt, "1", h22)).ok());
  ASSERT_TRUE(archive.Add(Message::Make("a", 0, 1, std::nullopt, "2", h23)).ok());
  ASSERT_TRUE(archive.Add(Message::Make("b", 1, 0, std::nullopt, "3", h22)).ok());
  EXPECT_EQ(archive.buffered_rows(), 3u);
  EXPECT_GT(archive.buffered_bytes(), 0u);
  EXPECT_FALSE(std::filesystem::exists(dir_)) << "nothing is written before Flush";
  ASSERT_TRUE(archive.Flush().ok());
  EXPECT_EQ(archive.buffered_rows(), 0u);
  EXPECT_EQ(archive.buffered_bytes(), 0u);
  ASSERT_TRUE(archive.Add(Message::Make("a", 0, 2, std::nullopt, "4", h22 + 1)).ok());
  ASSERT_TRUE(archive.Flush().ok());

  EXPECT_EQ(ReadAll(dir_ / "a/2023-11-14/22.jsonl"),
            "{\"topic\":\"a\",\"partition\":0,\"offset\":0,\"timestamp_ms\":1700000000000,"
            "\"key\":null,\"value\":1}\n"
            "{\"topic\":\"a\",\"partition\":0,\"offset\":2,\"timestamp_ms\":1700000000001,"
            "\"key\":null,\"value\":4}\n");
  EXPECT_NE(ReadAll(dir_ / "a/2023-11-14/23.jsonl").find("\"offset\":1,"), std::string::npos);
  EXPECT_NE(ReadAll(dir_ / "b/2023-11-14/22.jsonl").find("\"value\":3"), std::string::npos);
  EXPECT_EQ(archive.rows_written(), (std::map<std::string, uint64_t>{{"a", 3}, {"b", 1}}));
}

TEST_F(FileArchiveTest, AMessageWithoutTimestampUsesTheClock) {
  FileArchive archive(dir_.string(), &clock_);
  ASSERT_TRUE(archive.Add(Message::Make("a", 0, 0, std::nullopt, "1", -1)).ok());
  ASSERT_TRUE(archive.Flush().ok());
  EXPECT_TRUE(std::filesystem::exists(dir_ / "a/2023-11-14/22.jsonl"));
}

TEST_F(FileArchiveTest, TopicsThatWouldEscapeTheDirectoryAreRejected) {
  FileArchive archive(dir_.string(), &clock_);
  EXPECT_EQ(archive.Add(Message::Make("..", 0, 0, std::nullopt, "1", 0)).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(archive.Add(Message::Make("a/b", 0, 0, std::nullopt, "1", 0)).code(),
            StatusCode::kInvalidArgument);
}

TEST_F(FileArchiveTest, AFailedFlushKeepsTheLinesForARetry) {
  // The directory's place is taken by a file: mkdir fails.
  std::filesystem::create_directories(dir_.parent_path());
  { std::ofstream(dir_.string()) << "x"; }
  FileArchive archive(dir_.string(), &clock_);
  ASSERT_TRUE(archive.Add(Message::Make("a", 0, 0, std::nullopt, "1", 0)).ok());
  Status st = archive.Flush();
  EXPECT_EQ(st.code(), StatusCode::kUnavailable) << st.ToString();
  EXPECT_EQ(archive.buffered_rows(), 1u);
  std::filesystem::remove(dir_);
  ASSERT_TRUE(archive.Flush().ok());
  EXPECT_EQ(archive.rows_written().at("a"), 1u);
  EXPECT_NE(ReadAll(dir_ / "a/1970-01-01/00.jsonl").find("\"offset\":0"), std::string::npos);
}

}  // namespace
}  // namespace splitstream::pipeline::testing
