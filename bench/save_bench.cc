// Save/load benchmark, EtherPly side; the reference side is save_bench.mjs,
// the driver save_bench.sh.
//
//   etherply_bench_save save FILE OUT   load FILE (untimed), time Save, write OUT
//   etherply_bench_save load FILE       time LoadIncremental of FILE
// Prints one JSON line: {"impl":"etherply","op":...,"seconds":S,"bytes":N}.
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>

#include "automerge/document.h"

namespace am = etherply::automerge;

namespace {

etherply::Bytes ReadFile(const char* path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "etherply_bench_save: cannot open %s\n", path);
    std::exit(1);
  }
  return etherply::Bytes(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

double Seconds(std::chrono::steady_clock::duration d) { return std::chrono::duration<double>(d).count(); }

void Load(am::Document& doc, const etherply::Bytes& bytes) {
  if (etherply::Status s = doc.LoadIncremental(bytes); !s.ok()) {
    std::fprintf(stderr, "etherply_bench_save: %s\n", s.ToString().c_str());
    std::exit(1);
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::string op = argc > 1 ? argv[1] : "";
  if (op == "save" && argc == 4) {
    am::Document doc;
    Load(doc, ReadFile(argv[2]));
    auto t0 = std::chrono::steady_clock::now();
    etherply::Bytes out = doc.Save();
    double s = Seconds(std::chrono::steady_clock::now() - t0);
    std::ofstream(argv[3], std::ios::binary).write(reinterpret_cast<const char*>(out.data()),
                                                   static_cast<std::streamsize>(out.size()));
    std::printf("{\"impl\":\"etherply\",\"op\":\"save\",\"seconds\":%.6f,\"bytes\":%zu}\n", s, out.size());
  } else if (op == "load" && argc == 3) {
    etherply::Bytes bytes = ReadFile(argv[2]);
    am::Document doc;
    auto t0 = std::chrono::steady_clock::now();
    Load(doc, bytes);
    double s = Seconds(std::chrono::steady_clock::now() - t0);
    std::printf("{\"impl\":\"etherply\",\"op\":\"load\",\"seconds\":%.6f,\"heads\":%zu}\n", s,
                doc.heads().size());
  } else {
    std::fprintf(stderr, "usage: etherply_bench_save save FILE OUT | load FILE\n");
    return 2;
  }
  return 0;
}
