#include "base/huge_page_malloc.h"

#include <unistd.h>

#include <cstdlib>
#include <string_view>

namespace etherply {

std::optional<std::string> HugePageTunables(const char* current) {
  constexpr std::string_view kTunable = "glibc.malloc.hugetlb";
  std::string tunables = current ? current : "";
  if (tunables.find(kTunable) != std::string::npos) return std::nullopt;  // chosen already
  if (!tunables.empty()) tunables += ':';
  return tunables + std::string(kTunable) + "=1";
}

void UseHugePageMalloc(char** argv) {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  (void)argv;  // the sanitizer's allocator, not glibc's, serves malloc
#else
  const char* current = std::getenv("GLIBC_TUNABLES");
  const std::optional<std::string> before = current ? std::optional<std::string>(current) : std::nullopt;
  std::optional<std::string> tunables = HugePageTunables(current);
  if (!tunables || setenv("GLIBC_TUNABLES", tunables->c_str(), 1) != 0) return;
  execv("/proc/self/exe", argv);
  // Still here: no /proc, or the exec was refused. Run on as we are, and
  // leave the variable as it was so that child processes see no change.
  if (before) {
    setenv("GLIBC_TUNABLES", before->c_str(), 1);
  } else {
    unsetenv("GLIBC_TUNABLES");
  }
#endif
}

}  // namespace etherply
