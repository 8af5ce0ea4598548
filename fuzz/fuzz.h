// Fuzz targets: each defines LLVMFuzzerTestOneInput, the libFuzzer entry
// point, and checks properties that must hold for any input, aborting when
// one does not (a crash is a finding, as is a sanitizer report or a hang).
//
// Built two ways (CMakeLists.txt): with clang and ETHERPLY_FUZZ=ON, linked
// with libFuzzer to search (fuzz/run.sh, `make fuzz`); always, linked with
// replay_main.cc, as a test that runs every input of fuzz/corpus/<target>/
// once, so that each finding kept there stays fixed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

// Aborts with the failed condition: a finding.
#define FUZZ_CHECK(cond)                                                                  \
  do {                                                                                    \
    if (!(cond)) {                                                                        \
      std::fprintf(stderr, "FUZZ_CHECK failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__); \
      std::abort();                                                                       \
    }                                                                                     \
  } while (0)

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);
