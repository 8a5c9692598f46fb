#pragma once
#include <napi.h>
namespace dupn_napi {
void InitModel(Napi::Env env, Napi::Object exports);
}
