# Target helpers: one library per directory, linked through splitstream::<name> aliases.
# A library sees only the include directories of what it links, so the build enforces the
# dependency direction described in STYLE.md.

# splitstream_library(name SRCS ... [DEPS public deps] [PRIVATE_DEPS private deps])
function(splitstream_library name)
  cmake_parse_arguments(ARG "" "" "SRCS;DEPS;PRIVATE_DEPS" ${ARGN})
  add_library(splitstream_${name} STATIC ${ARG_SRCS})
  add_library(splitstream::${name} ALIAS splitstream_${name})
  target_include_directories(splitstream_${name}
    PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}/include
    PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/src)
  target_link_libraries(splitstream_${name} PUBLIC ${ARG_DEPS} PRIVATE ${ARG_PRIVATE_DEPS})
endfunction()

# splitstream_test(name SRCS ... DEPS ... [LABELS unit|integration])
# Each GoogleTest case becomes one ctest test. Integration tests read the SPLITSTREAM_*
# variables that scripts/stack prints and fail (never skip) when the servers are absent.
function(splitstream_test name)
  if(NOT SPLITSTREAM_BUILD_TESTS)
    return()
  endif()
  cmake_parse_arguments(ARG "" "" "SRCS;DEPS;LABELS" ${ARGN})
  if(NOT ARG_LABELS)
    set(ARG_LABELS unit)
  endif()
  add_executable(${name} ${ARG_SRCS})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} GTest::gtest GTest::gmock GTest::gtest_main)
  gtest_discover_tests(${name} DISCOVERY_MODE PRE_TEST TEST_PREFIX "${name}."
    PROPERTIES LABELS "${ARG_LABELS}" TIMEOUT 300)
endfunction()

# splitstream_bench(name SRCS ... DEPS ...)
function(splitstream_bench name)
  if(NOT SPLITSTREAM_BUILD_BENCH)
    return()
  endif()
  cmake_parse_arguments(ARG "" "" "SRCS;DEPS" ${ARGN})
  add_executable(${name} ${ARG_SRCS})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} benchmark::benchmark)
endfunction()
