#pragma once
#include <napi.h>
namespace dupn_napi {
void InitMapFile(Napi::Env env, Napi::Object exports);
}
