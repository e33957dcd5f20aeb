# SPDX-License-Identifier: Apache-2.0
# Target helpers in the lineage of abseil's absl_cc_library: our own targets build with
# warnings as errors; sources are listed by hand.
include(GoogleTest)

# -Wno-restrict: g++ 12 at -O3 reports false positives inside libstdc++'s string concatenation
# (GCC bug 105329, fixed in 13).
set(SIGNPOST_WARNINGS -Wall -Wextra -Werror -Wimplicit-fallthrough -Wno-missing-field-initializers
    -Wno-restrict)

# signpost_cc_library(NAME n [HDRS ...] [SRCS ...] [DEPS ...])
#   -> target signpost_<n>, alias signpost::<n>. Without SRCS it is an INTERFACE library.
function(signpost_cc_library)
  cmake_parse_arguments(A "" "NAME" "HDRS;SRCS;DEPS" ${ARGN})
  set(t signpost_${A_NAME})
  if(A_SRCS)
    add_library(${t} STATIC ${A_SRCS} ${A_HDRS})
    target_include_directories(${t} PUBLIC ${PROJECT_SOURCE_DIR})
    target_link_libraries(${t} PUBLIC ${A_DEPS})
    target_compile_options(${t} PRIVATE ${SIGNPOST_WARNINGS})
  else()
    add_library(${t} INTERFACE ${A_HDRS})
    target_include_directories(${t} INTERFACE ${PROJECT_SOURCE_DIR})
    target_link_libraries(${t} INTERFACE ${A_DEPS})
  endif()
  add_library(signpost::${A_NAME} ALIAS ${t})
endfunction()

# signpost_cc_test(NAME n SRCS ... [DEPS ...] [LABELS ...] [KAFKA])
#   One ctest per TEST. KAFKA: the tests need the broker that the `kafka_broker` fixture starts.
function(signpost_cc_test)
  cmake_parse_arguments(A "KAFKA" "NAME" "SRCS;DEPS;LABELS" ${ARGN})
  add_executable(${A_NAME} ${A_SRCS})
  target_link_libraries(${A_NAME} PRIVATE ${A_DEPS} GTest::gmock GTest::gtest_main)
  target_compile_options(${A_NAME} PRIVATE ${SIGNPOST_WARNINGS})
  set(props LABELS "${A_LABELS}")
  if(A_KAFKA)
    list(APPEND props FIXTURES_REQUIRED kafka_broker RESOURCE_LOCK kafka_broker_load
         ENVIRONMENT "SIGNPOST_BROKER_DIR=${SIGNPOST_TEST_KAFKA_DIR}")
  endif()
  gtest_discover_tests(${A_NAME} DISCOVERY_MODE PRE_TEST PROPERTIES ${props})
endfunction()

# signpost_cc_bench(NAME n SRCS ... [DEPS ...])
#   Also registered as a quick ctest (<n>_smoke) so every bench keeps compiling and running.
function(signpost_cc_bench)
  cmake_parse_arguments(A "" "NAME" "SRCS;DEPS" ${ARGN})
  add_executable(${A_NAME} ${A_SRCS})
  target_link_libraries(${A_NAME} PRIVATE ${A_DEPS} benchmark::benchmark_main)
  target_compile_options(${A_NAME} PRIVATE ${SIGNPOST_WARNINGS})
  add_test(NAME ${A_NAME}_smoke COMMAND ${A_NAME} --benchmark_min_time=0.01)
  set_tests_properties(${A_NAME}_smoke PROPERTIES LABELS bench_smoke
                       ENVIRONMENT SIGNPOST_BENCH_SMOKE=1)
endfunction()
