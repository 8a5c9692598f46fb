// The error codes the addon puts on the errors it throws; TypeScript's ERROR_CODES (lib/errors.ts) is the one
// list, and a test checks that every code here is on it (the addon exports kAll as `errorCodes`), so a typo
// here fails a test instead of turning into E_INTERNAL at run time.
#pragma once

namespace dupn_napi::codes {

inline constexpr const char kConfig[] = "E_CONFIG";
inline constexpr const char kInput[] = "E_INPUT";
inline constexpr const char kTask[] = "E_TASK";
inline constexpr const char kModelFile[] = "E_MODEL_FILE";
inline constexpr const char kDisposed[] = "E_DISPOSED";
inline constexpr const char kIo[] = "E_IO";
inline constexpr const char kUnsupported[] = "E_UNSUPPORTED";
inline constexpr const char kBusy[] = "E_BUSY";
inline constexpr const char kInternal[] = "E_INTERNAL";

inline constexpr const char* kAll[] = {kConfig, kInput, kTask, kModelFile, kDisposed, kIo, kUnsupported, kBusy, kInternal};

}  // namespace dupn_napi::codes
