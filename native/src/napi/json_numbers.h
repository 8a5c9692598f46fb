#pragma once
#include <napi.h>
namespace dupn_napi {
void InitJsonNumbers(Napi::Env env, Napi::Object exports);
}
