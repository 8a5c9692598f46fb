#pragma once
#include <napi.h>
namespace dupn_napi {
void InitTrainer(Napi::Env env, Napi::Object exports);
}
