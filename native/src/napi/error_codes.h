// The error codes the addon puts on the errors it throws; TypeScript's ERROR_CODES (lib/errors.ts) is the one
// list, and a test checks that every code here is on it (the addon exports kAll as `errorCodes`), so a typo
// here fails a test instead of turning into E_INTERNAL at run time. One X-list, so a constant cannot be left
// out of kAll.
#pragma once

#define DUPN_ERROR_CODES(X) \
  X(kConfig, "E_CONFIG")    \
  X(kInput, "E_INPUT")      \
  X(kTask, "E_TASK")        \
  X(kModelFile, "E_MODEL_FILE") \
  X(kDisposed, "E_DISPOSED") \
  X(kIo, "E_IO")            \
  X(kUnsupported, "E_UNSUPPORTED") \
  X(kBusy, "E_BUSY")        \
  X(kInternal, "E_INTERNAL")

namespace dupn_napi::codes {

#define DUPN_CODE_CONSTANT(name, text) inline constexpr const char name[] = text;
DUPN_ERROR_CODES(DUPN_CODE_CONSTANT)
#undef DUPN_CODE_CONSTANT

#define DUPN_CODE_ENTRY(name, text) name,
inline constexpr const char* kAll[] = {DUPN_ERROR_CODES(DUPN_CODE_ENTRY)};
#undef DUPN_CODE_ENTRY

}  // namespace dupn_napi::codes
