// mapFile(path) → ArrayBuffer over a private, copy-on-write memory map of the file (docs/model.md, Model file): large
// embedding tables are not copied into the process, and processes serving the same model share its
// pages through the page cache. Writes (never made by dupn) would stay private to the process.
#include <napi.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "convert.h"
#include "map_file.h"

#if defined(__unix__) || defined(__APPLE__)
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#define DUPN_HAVE_MMAP 1
#endif

namespace dupn_napi {
namespace {

Napi::Value MapFile(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) throw_code(env, codes::kInput, "mapFile: path must be a string");
  const std::string path = info[0].As<Napi::String>().Utf8Value();
  if (path.find('\0') != std::string::npos) throw_code(env, codes::kInput, "mapFile: the path contains a NUL byte");
#ifdef DUPN_HAVE_MMAP
  // O_NONBLOCK: opening a FIFO must not wait for a writer (it is refused below as not a regular file).
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) throw_code(env, codes::kIo, "cannot open model file " + path + ": " + std::strerror(errno));
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    const std::string why = std::strerror(errno);
    ::close(fd);
    throw_code(env, codes::kIo, "cannot stat model file " + path + ": " + why);
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    throw_code(env, codes::kIo, "cannot map model file " + path + ": " + (S_ISDIR(st.st_mode) ? "it is a directory" : "not a regular file"));
  }
  const size_t size = static_cast<size_t>(st.st_size);
  if (size == 0) {
    ::close(fd);
    return Napi::ArrayBuffer::New(env, 0);
  }
  void* data = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (data == MAP_FAILED) throw_code(env, codes::kIo, "cannot map model file " + path + ": " + std::strerror(errno));
  return Napi::ArrayBuffer::New(env, data, size, [](Napi::Env, void* p, size_t* n) {
    ::munmap(p, *n);
    delete n;
  }, new size_t(size));
#else
  throw_code(env, codes::kUnsupported, "mapFile: memory maps are not available on this platform");
#endif
}

}  // namespace

void InitMapFile(Napi::Env env, Napi::Object exports) { exports.Set("mapFile", Napi::Function::New(env, MapFile)); }

}  // namespace dupn_napi
