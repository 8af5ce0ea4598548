// Backs a short-lived process's malloc heap with transparent huge pages.
//
// A document is hundreds of thousands of small blocks reached at random (an
// element index, sequence blocks, change rows). With 4 KiB pages, loading
// a large one spends a sixth of its time in page faults (about 4 µs each on
// the VMs we measure on) and more in TLB misses; with 2 MiB pages it loads
// about a third faster (doc/design.md, "Huge pages for one-document
// processes").
//
// For processes that load a document and exit (`etherply doc`), not for the
// server: with thousands of small workspaces, huge pages multiplied the
// server's memory per workspace by ten.
//
// glibc's malloc asks for huge pages (madvise(MADV_HUGEPAGE) on the memory it
// maps) when the tunable glibc.malloc.hugetlb=1 is set, and glibc reads
// tunables only from the environment at start. So the process sets the
// tunable and re-executes itself, once, before it does anything else.
//
// Thread-safety: call first in main, before any thread starts.
#pragma once

#include <optional>
#include <string>

namespace etherply {

// Re-executes the program (/proc/self/exe, same argv, same pid) with
// GLIBC_TUNABLES = HugePageTunables(its value), when that is not nullopt
// and the build does not use a sanitizer's allocator. Returns only when it
// did not re-execute (or the exec failed: the program then runs as it would
// have, with small pages, and GLIBC_TUNABLES as it was).
void UseHugePageMalloc(char** argv);

// GLIBC_TUNABLES with glibc.malloc.hugetlb=1 added (current: its value, or
// null when unset); nullopt when current already names glibc.malloc.hugetlb
// (=0 opts out, e.g. under valgrind, which does not follow the exec).
std::optional<std::string> HugePageTunables(const char* current);

}  // namespace etherply
