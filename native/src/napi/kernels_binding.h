#pragma once
#include <napi.h>
namespace dupn_napi {
void InitKernels(Napi::Env env, Napi::Object exports);
}
