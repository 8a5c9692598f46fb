#pragma once
#include <napi.h>
namespace dupn_napi {
void InitHash(Napi::Env env, Napi::Object exports);
}
