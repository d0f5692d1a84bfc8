// The browser dashboard (design.md section 3, GET /): the files of web/dashboard, embedded
// into the binary at build time by cmake/EmbedAssets.cmake, so `splitstream serve` needs no
// files beside it.
#pragma once

#include <span>
#include <string_view>

namespace splitstream::api {

struct StaticAsset {
  std::string_view path;          // the URL path it is served at ("/", "/dashboard.js")
  std::string_view content_type;  // with charset for text
  std::string_view body;
};

// Every file of the dashboard; the generated dashboard_assets.cc defines it.
std::span<const StaticAsset> DashboardAssets();

}  // namespace splitstream::api
