#include "splitstream/clickhouse/client.h"

#include <curl/curl.h>
#include <zlib.h>

#include <functional>
#include <mutex>

#include "splitstream/core/strings.h"

namespace splitstream::clickhouse {
namespace {

constexpr long kReceiveBufferBytes = 512 * 1024;
constexpr long kUploadBufferBytes = 2 * 1024 * 1024;  // libcurl's maximum

// curl_global_init is not guaranteed thread-safe on every libcurl build: run it once.
void InitCurlOnce() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

size_t AppendBody(char* data, size_t size, size_t count, void* user) {
  static_cast<std::string*>(user)->append(data, size * count);
  return size * count;
}

// QueryStream's receiver: a 200 answer goes to the caller piece by piece; any other status's
// body is kept for the error.
struct StreamSink {
  CURL* curl;
  const std::function<Status(std::string_view)>* on_bytes;
  std::string* error_body;
  Status status;
};

size_t StreamBody(char* data, size_t size, size_t count, void* user) {
  auto* sink = static_cast<StreamSink*>(user);
  long http_status = 0;
  curl_easy_getinfo(sink->curl, CURLINFO_RESPONSE_CODE, &http_status);
  if (http_status != 200) {
    sink->error_body->append(data, size * count);
    return size * count;
  }
  sink->status = (*sink->on_bytes)(std::string_view(data, size * count));
  return sink->status.ok() ? size * count : 0;  // 0 makes curl stop the transfer
}

bool HeaderIs(std::string_view line, std::string_view name) {
  if (line.size() <= name.size() || line[name.size()] != ':') return false;
  for (size_t i = 0; i < name.size(); ++i) {
    char a = line[i], b = name[i];
    if (a >= 'A' && a <= 'Z') a = static_cast<char>(a - 'A' + 'a');
    if (b >= 'A' && b <= 'Z') b = static_cast<char>(b - 'A' + 'a');
    if (a != b) return false;
  }
  return true;
}

// Keeps the value of X-ClickHouse-Exception-Code (sent by current releases only).
size_t ReadHeader(char* data, size_t size, size_t count, void* user) {
  std::string_view line(data, size * count);
  constexpr std::string_view kName = "x-clickhouse-exception-code";
  if (HeaderIs(line, kName)) {
    std::string_view value = line.substr(kName.size() + 1);
    while (!value.empty() && (value.back() == '\r' || value.back() == '\n')) value.remove_suffix(1);
    *static_cast<std::string*>(user) = std::string(value);
  }
  return size * count;
}

// Transport failures: the server may be down or restarting, so retrying may help.
Status CurlError(CURLcode code, const char* detail, const std::string& redacted_url) {
  std::string msg = "ClickHouse at " + redacted_url + ": ";
  msg += (detail && *detail) ? detail : curl_easy_strerror(code);
  msg = SanitizeForMessage(msg, 500);
  switch (code) {
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
      return Status::InvalidArgument(std::move(msg));
    case CURLE_OUT_OF_MEMORY:
    case CURLE_BAD_CONTENT_ENCODING:
    case CURLE_BAD_FUNCTION_ARGUMENT:
      return Status::Internal(std::move(msg));
    default:
      // connect refused/timeout, resolve, send/recv, empty reply, partial body, TLS.
      return Status::Unavailable(std::move(msg));
  }
}

class CurlClient final : public Client {
 public:
  explicit CurlClient(ClientOptions options)
      : options_(std::move(options)), redacted_url_(RedactSecrets(options_.url)) {
    while (!options_.url.empty() && options_.url.back() == '/') options_.url.pop_back();
  }

  ~CurlClient() override {
    if (deflate_ready_) deflateEnd(&zstream_);
    curl_slist_free_all(headers_);
    curl_slist_free_all(gzip_headers_);
    if (curl_) curl_easy_cleanup(curl_);
  }

  Status Init() {
    curl_ = curl_easy_init();
    if (!curl_) return Status::Internal("curl_easy_init failed");
    headers_ = curl_slist_append(headers_, "Expect:");  // no 100-continue round trip
    if (!options_.user.empty()) {
      headers_ = curl_slist_append(headers_, ("X-ClickHouse-User: " + options_.user).c_str());
      headers_ = curl_slist_append(headers_, ("X-ClickHouse-Key: " + options_.password).c_str());
    }
    for (curl_slist* h = headers_; h; h = h->next) {
      gzip_headers_ = curl_slist_append(gzip_headers_, h->data);
    }
    gzip_headers_ = curl_slist_append(gzip_headers_, "Content-Encoding: gzip");
    if (!headers_ || !gzip_headers_) return Status::Internal("curl_slist_append failed");

    curl_easy_setopt(curl_, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl_, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(curl_, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(curl_, CURLOPT_CONNECTTIMEOUT_MS,
                     static_cast<long>(options_.connect_timeout.count()));
    curl_easy_setopt(curl_, CURLOPT_TIMEOUT_MS,
                     static_cast<long>(options_.request_timeout.count()));
    curl_easy_setopt(curl_, CURLOPT_BUFFERSIZE, kReceiveBufferBytes);
    curl_easy_setopt(curl_, CURLOPT_UPLOAD_BUFFERSIZE, kUploadBufferBytes);
    curl_easy_setopt(curl_, CURLOPT_MAXCONNECTS, 1L);
    curl_easy_setopt(curl_, CURLOPT_WRITEFUNCTION, &AppendBody);
    curl_easy_setopt(curl_, CURLOPT_WRITEDATA, &response_);
    curl_easy_setopt(curl_, CURLOPT_HEADERFUNCTION, &ReadHeader);
    curl_easy_setopt(curl_, CURLOPT_HEADERDATA, &exception_code_);
    curl_easy_setopt(curl_, CURLOPT_ERRORBUFFER, error_buffer_);
    if (options_.compress_responses) curl_easy_setopt(curl_, CURLOPT_ACCEPT_ENCODING, "gzip");

    if (options_.compress_requests) {
      zstream_ = {};
      if (deflateInit2(&zstream_, options_.compression_level, Z_DEFLATED, 15 + 16, 8,
                       Z_DEFAULT_STRATEGY) != Z_OK) {
        return Status::InvalidArgument("compression_level must be 1..9");
      }
      deflate_ready_ = true;
    }
    return Status::Ok();
  }

  Status Execute(std::string_view sql, const Settings& settings) override {
    return Post(sql, settings, {}, options_.wait_end_of_query).status();
  }

  Result<std::string> Query(std::string_view sql, const Settings& settings) override {
    return Post(sql, settings, {}, options_.wait_end_of_query);
  }

  Status QueryStream(std::string_view sql, const std::function<Status(std::string_view)>& on_bytes,
                     const Settings& settings) override {
    StreamSink sink{curl_, &on_bytes, &response_, Status::Ok()};
    curl_easy_setopt(curl_, CURLOPT_WRITEFUNCTION, &StreamBody);
    curl_easy_setopt(curl_, CURLOPT_WRITEDATA, &sink);
    // The whole answer is computed before the first byte is sent: an error of the query is
    // an HTTP status, never text in the middle of the rows.
    Result<std::string> done = Post(sql, settings, {}, /*wait_end_of_query=*/true);
    curl_easy_setopt(curl_, CURLOPT_WRITEFUNCTION, &AppendBody);
    curl_easy_setopt(curl_, CURLOPT_WRITEDATA, &response_);
    if (!sink.status.ok()) return sink.status;
    return done.status();
  }

  Result<std::vector<std::vector<std::string>>> QueryRows(std::string_view sql,
                                                          const Settings& settings) override {
    SPLITSTREAM_ASSIGN_OR_RETURN(auto rows, QueryNullableRows(sql, settings));
    std::vector<std::vector<std::string>> out;
    out.reserve(rows.size());
    for (NullableRow& row : rows) {
      std::vector<std::string>& fields = out.emplace_back();
      fields.reserve(row.size());
      for (std::optional<std::string>& f : row) fields.push_back(f ? std::move(*f) : "\\N");
    }
    return out;
  }

  Result<std::vector<NullableRow>> QueryNullableRows(std::string_view sql,
                                                     const Settings& settings) override {
    SPLITSTREAM_ASSIGN_OR_RETURN(std::string body, Query(sql, settings));
    auto rows = ParseTabSeparated(body);
    if (!rows.ok()) return rows.status().WithContext("ClickHouse answer");
    return rows;
  }

  Status Insert(std::string_view table, std::span<const std::string> columns,
                std::string_view format, std::string_view body, const Settings& settings) override {
    if (table.empty()) return Status::InvalidArgument("Insert: empty table name", "table");
    if (!IsPlainName(format)) {
      return Status::InvalidArgument("Insert: format must be a plain name", "format");
    }
    std::string sql = "INSERT INTO ";
    sql += table;
    if (!columns.empty()) {
      sql += " (";
      for (size_t i = 0; i < columns.size(); ++i) {
        if (i) sql += ", ";
        sql += QuoteIdentifier(columns[i]);
      }
      sql += ")";
    }
    sql += " FORMAT ";
    sql += format;
    return Post(body, settings, sql, false).status();
  }

  Status Ping() override {
    std::string url = options_.url + "/ping";
    curl_easy_setopt(curl_, CURLOPT_HTTPGET, 1L);
    curl_easy_setopt(curl_, CURLOPT_HTTPHEADER, headers_);
    SPLITSTREAM_ASSIGN_OR_RETURN(std::string body, Perform(url));
    if (body != "Ok.\n") {
      return Status::Unavailable("ClickHouse at " + redacted_url_ +
                                 ": unexpected /ping answer: " + SanitizeForMessage(body));
    }
    return Status::Ok();
  }

  ClientStats stats() const override { return stats_; }
  const ClientOptions& options() const override { return options_; }

 private:
  // POSTs `body` to "/?" + parameters; `insert_sql` (when not empty) goes in query=.
  Result<std::string> Post(std::string_view body, const Settings& settings,
                           std::string_view insert_sql, bool wait_end_of_query) {
    SPLITSTREAM_ASSIGN_OR_RETURN(std::string url,
                                 BuildUrl(settings, insert_sql, wait_end_of_query));
    std::string_view sent = body;
    bool gzip = false;
    if (deflate_ready_ && body.size() >= options_.compress_min_bytes) {
      SPLITSTREAM_RETURN_IF_ERROR(Gzip(body));
      sent = compressed_;
      gzip = true;
    }
    curl_easy_setopt(curl_, CURLOPT_POST, 1L);
    curl_easy_setopt(curl_, CURLOPT_POSTFIELDS, sent.data());
    curl_easy_setopt(curl_, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(sent.size()));
    curl_easy_setopt(curl_, CURLOPT_HTTPHEADER, gzip ? gzip_headers_ : headers_);
    stats_.body_bytes += static_cast<int64_t>(body.size());
    stats_.uploaded_bytes += static_cast<int64_t>(sent.size());
    if (gzip) ++stats_.compressed_requests;
    return Perform(url);
  }

  Result<std::string> BuildUrl(const Settings& settings, std::string_view insert_sql,
                               bool wait_end_of_query) {
    std::string url = options_.url + "/?";
    bool database_set = false;
    auto add = [&](std::string_view name, std::string_view value) -> Status {
      char* escaped = curl_easy_escape(curl_, value.data(), static_cast<int>(value.size()));
      if (!escaped) return Status::Internal("curl_easy_escape failed");
      if (url.back() != '?') url += '&';
      url += name;
      url += '=';
      url += escaped;
      curl_free(escaped);
      return Status::Ok();
    };
    for (const auto& [name, value] : settings) {
      if (!IsPlainName(name)) {
        return Status::InvalidArgument(
            "setting name must be a plain name: " + SanitizeForMessage(name), "settings");
      }
      if (name == "database") database_set = true;
      SPLITSTREAM_RETURN_IF_ERROR(add(name, value));
    }
    if (!database_set && !options_.database.empty()) {
      SPLITSTREAM_RETURN_IF_ERROR(add("database", options_.database));
    }
    if (options_.compress_responses)
      SPLITSTREAM_RETURN_IF_ERROR(add("enable_http_compression", "1"));
    if (wait_end_of_query) SPLITSTREAM_RETURN_IF_ERROR(add("wait_end_of_query", "1"));
    if (!insert_sql.empty()) SPLITSTREAM_RETURN_IF_ERROR(add("query", insert_sql));
    return url;
  }

  // Compresses `body` into compressed_ as one gzip member.
  Status Gzip(std::string_view body) {
    if (deflateReset(&zstream_) != Z_OK) return Status::Internal("deflateReset failed");
    compressed_.resize(deflateBound(&zstream_, body.size()));
    zstream_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(body.data()));
    zstream_.avail_in = static_cast<uInt>(body.size());
    zstream_.next_out = reinterpret_cast<Bytef*>(compressed_.data());
    zstream_.avail_out = static_cast<uInt>(compressed_.size());
    if (body.size() > 0xFFFFFFFFu || deflate(&zstream_, Z_FINISH) != Z_STREAM_END) {
      return Status::Internal("gzip of a request body failed");
    }
    compressed_.resize(zstream_.total_out);
    return Status::Ok();
  }

  Result<std::string> Perform(const std::string& url) {
    response_.clear();
    exception_code_.clear();
    error_buffer_[0] = '\0';
    curl_easy_setopt(curl_, CURLOPT_URL, url.c_str());
    ++stats_.requests;
    CURLcode rc = curl_easy_perform(curl_);
    long connects = 0;
    if (curl_easy_getinfo(curl_, CURLINFO_NUM_CONNECTS, &connects) == CURLE_OK) {
      stats_.connects += connects;
    }
    if (rc != CURLE_OK) return CurlError(rc, error_buffer_, redacted_url_);
    long http_status = 0;
    curl_easy_getinfo(curl_, CURLINFO_RESPONSE_CODE, &http_status);
    if (http_status != 200) return ErrorFromResponse(http_status, response_, exception_code_);
    return std::move(response_);
  }

  ClientOptions options_;
  std::string redacted_url_;
  CURL* curl_ = nullptr;
  curl_slist* headers_ = nullptr;
  curl_slist* gzip_headers_ = nullptr;
  z_stream zstream_{};
  bool deflate_ready_ = false;
  std::string compressed_;
  std::string response_;
  std::string exception_code_;
  char error_buffer_[CURL_ERROR_SIZE] = {};
  ClientStats stats_;
};

}  // namespace

Status Client::QueryStream(std::string_view sql,
                           const std::function<Status(std::string_view)>& on_bytes,
                           const Settings& settings) {
  SPLITSTREAM_ASSIGN_OR_RETURN(std::string body, Query(sql, settings));
  return on_bytes(body);
}

Result<std::unique_ptr<Client>> Client::Create(ClientOptions options) {
  if (!options.url.starts_with("http://") && !options.url.starts_with("https://")) {
    return Status::InvalidArgument(
        "ClickHouse URL must start with http:// or https://: " + RedactSecrets(options.url), "url");
  }
  if (!options.database.empty() && options.database.find('\0') != std::string::npos) {
    return Status::InvalidArgument("database name holds a NUL byte", "database");
  }
  for (const std::string* value : {&options.user, &options.password}) {
    if (value->find_first_of(std::string_view("\r\n\0", 3)) != std::string::npos) {
      return Status::InvalidArgument("ClickHouse user and password must not hold CR, LF or NUL");
    }
  }
  if (options.compression_level < 1 || options.compression_level > 9) {
    return Status::InvalidArgument("compression_level must be 1..9", "compression_level");
  }
  if (options.connect_timeout.count() <= 0 || options.request_timeout.count() <= 0) {
    return Status::InvalidArgument("timeouts must be positive");
  }
  InitCurlOnce();
  auto client = std::make_unique<CurlClient>(std::move(options));
  SPLITSTREAM_RETURN_IF_ERROR(client->Init());
  return std::unique_ptr<Client>(std::move(client));
}

}  // namespace splitstream::clickhouse
