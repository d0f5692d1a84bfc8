#include "file_archive.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>

namespace splitstream::pipeline {
namespace {

// Writes `text` as embedded JSON when it parses as one JSON document, else as a string.
void WriteEmbedded(rapidjson::Writer<rapidjson::StringBuffer>& w,
                   std::optional<std::string_view> text) {
  if (!text) {
    w.Null();
    return;
  }
  rapidjson::Document doc;
  doc.Parse(text->data(), text->size());
  if (!doc.HasParseError()) {
    doc.Accept(w);  // re-serialised: one line whatever the original whitespace
  } else {
    w.String(text->data(), static_cast<rapidjson::SizeType>(text->size()));
  }
}

Status Errno(std::string_view what, const std::string& path) {
  return Status::Unavailable(fmt::format("{} {}: {}", what, path, std::strerror(errno)));
}

Status FsyncPath(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Errno("open", path);
  int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) return Errno("fsync", path);
  return Status::Ok();
}

// Creates `dir` and its missing parents, fsyncing the parent of each directory it creates.
Status MakeDirs(const std::filesystem::path& dir) {
  if (dir.empty() || std::filesystem::is_directory(dir)) return Status::Ok();
  SPLITSTREAM_RETURN_IF_ERROR(MakeDirs(dir.parent_path()));
  if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) return Errno("mkdir", dir.string());
  std::filesystem::path parent = dir.parent_path();
  return FsyncPath(parent.empty() ? "." : parent.string());
}

}  // namespace

std::unique_ptr<SinkTarget> MakeFileArchive(std::string dir, Clock* clock) {
  return std::make_unique<FileArchive>(std::move(dir), clock);
}

std::string FileArchive::RelativePath(std::string_view topic, int64_t timestamp_ms) {
  time_t seconds = static_cast<time_t>(timestamp_ms >= 0 ? timestamp_ms / 1000 : 0);
  struct tm tm {};
  gmtime_r(&seconds, &tm);
  return fmt::format("{}/{:04d}-{:02d}-{:02d}/{:02d}.jsonl", topic, tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour);
}

std::string FileArchive::Line(const kafka::Message& m) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  w.Key("topic");
  w.String(m.topic().data(), static_cast<rapidjson::SizeType>(m.topic().size()));
  w.Key("partition");
  w.Int(m.partition());
  w.Key("offset");
  w.Int64(m.offset());
  w.Key("timestamp_ms");
  w.Int64(m.timestamp_ms());
  w.Key("key");
  WriteEmbedded(w, m.key());
  w.Key("value");
  WriteEmbedded(w, m.value());
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

Status FileArchive::Add(const kafka::Message& m) {
  std::string_view topic = m.topic();
  if (topic.empty() || topic == "." || topic == ".." || topic.find('/') != std::string_view::npos) {
    return Status::InvalidArgument(fmt::format("topic \"{}\" cannot name a directory", topic));
  }
  int64_t ts = m.timestamp_ms() >= 0 ? m.timestamp_ms() : clock_->WallMicros() / 1000;
  Pending& p = files_[RelativePath(topic, ts)];
  if (p.topic.empty()) p.topic = std::string(topic);
  size_t before = p.data.size();
  p.data += Line(m);
  p.data += '\n';
  ++p.rows;
  ++buffered_rows_;
  buffered_bytes_ += p.data.size() - before;
  return Status::Ok();
}

Status FileArchive::Flush() {
  for (auto it = files_.begin(); it != files_.end();) {
    std::filesystem::path path = std::filesystem::path(dir_) / it->first;
    Pending& p = it->second;
    SPLITSTREAM_RETURN_IF_ERROR(MakeDirs(path.parent_path()));
    bool existed = std::filesystem::exists(path);
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) return Errno("open", path.string());
    struct stat st {};
    off_t size_before = ::fstat(fd, &st) == 0 ? st.st_size : 0;
    size_t done = 0;
    Status status;
    while (done < p.data.size()) {
      ssize_t n = ::write(fd, p.data.data() + done, p.data.size() - done);
      if (n < 0) {
        if (errno == EINTR) continue;
        status = Errno("write", path.string());
        break;
      }
      done += static_cast<size_t>(n);
    }
    if (status.ok() && ::fsync(fd) != 0) status = Errno("fsync", path.string());
    if (!status.ok()) {
      // Leave no partial line behind: the lines are written again on the retry.
      if (::ftruncate(fd, size_before) != 0) {
        status = status.WithContext(
            fmt::format("(and truncating back failed: {})", std::strerror(errno)));
      }
      ::close(fd);
      return status;
    }
    ::close(fd);
    if (!existed) SPLITSTREAM_RETURN_IF_ERROR(FsyncPath(path.parent_path().string()));
    written_[p.topic] += p.rows;
    buffered_rows_ -= p.rows;
    buffered_bytes_ -= p.data.size();
    it = files_.erase(it);
  }
  return Status::Ok();
}

}  // namespace splitstream::pipeline
