// Node binding of the CUDA mask kernels (supsup_cuda.h). Built by native/cuda/build.sh into
// build/cuda/supsup_cuda.node, only where nvcc exists; the TypeScript side is src/cuda/cuda-addon.ts.
//
//   deviceInfo() -> { ok, reason, name, computeCapability, multiprocessors, memoryBytes, driverVersion, runtimeVersion }
//   new CudaBank(words)
//     .upload(raw) .uploadBlocks(raw, first, count)            the packed bank, resident on the device
//     .scores(v, examples, out) .subsetCount(slots, out)       MaskKernels over the resident bank
//     .attachNetwork(shapes, scales, signs, classes)           base network: [in, out, offset] per layer, c_l, sign bits
//     .superpose(slots) .slotGradients(x, batch, objective, perExample, out)
//     .taskLogits(slot, x, batch, out)                         given-task forward from the packed bits
//     .readFloorSeconds(repeats) .lastPassSeconds() .residentBytes() .blocks() .dispose()

#include <napi.h>

#include <memory>
#include <stdexcept>
#include <vector>

#include "supsup_cuda.h"

namespace {

using supsup_cuda::ResidentBank;

template <class T>
bool IsTyped(const Napi::Value& v, napi_typedarray_type type) {
  return v.IsTypedArray() && v.As<Napi::TypedArray>().TypedArrayType() == type;
}

/** Runs fn, turning C++ exceptions into JavaScript errors (RangeError for bad arguments). */
template <class F>
Napi::Value Guard(Napi::Env env, F fn) {
  try {
    return fn();
  } catch (const std::invalid_argument& e) {
    Napi::RangeError::New(env, e.what()).ThrowAsJavaScriptException();
  } catch (const std::exception& e) {
    Napi::Error::New(env, e.what()).ThrowAsJavaScriptException();
  }
  return env.Undefined();
}

struct Args {
  const Napi::CallbackInfo& info;
  template <class T>
  Napi::TypedArrayOf<T> Array(size_t i, napi_typedarray_type type, const char* what) const {
    if (!IsTyped<T>(info[i], type)) throw std::invalid_argument(std::string(what) + " has the wrong type");
    return info[i].As<Napi::TypedArrayOf<T>>();
  }
  int Int(size_t i, const char* what) const {
    if (!info[i].IsNumber()) throw std::invalid_argument(std::string(what) + " must be a number");
    const double d = info[i].As<Napi::Number>().DoubleValue();
    if (d != double(int(d))) throw std::invalid_argument(std::string(what) + " must be an integer");
    return int(d);
  }
};

void Need(bool ok, const char* message) {
  if (!ok) throw std::invalid_argument(message);
}

class CudaBank : public Napi::ObjectWrap<CudaBank> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "CudaBank",
                       {
                           InstanceMethod("upload", &CudaBank::Upload),
                           InstanceMethod("uploadBlocks", &CudaBank::UploadBlocks),
                           InstanceMethod("scores", &CudaBank::Scores),
                           InstanceMethod("subsetCount", &CudaBank::SubsetCount),
                           InstanceMethod("attachNetwork", &CudaBank::AttachNetwork),
                           InstanceMethod("superpose", &CudaBank::Superpose),
                           InstanceMethod("slotGradients", &CudaBank::SlotGradients),
                           InstanceMethod("taskLogits", &CudaBank::TaskLogits),
                           InstanceMethod("readFloorSeconds", &CudaBank::ReadFloorSeconds),
                           InstanceMethod("lastPassSeconds", &CudaBank::LastPassSeconds),
                           InstanceMethod("residentBytes", &CudaBank::ResidentBytes),
                           InstanceMethod("blocks", &CudaBank::Blocks),
                           InstanceMethod("dispose", &CudaBank::Dispose),
                       });
  }

  explicit CudaBank(const Napi::CallbackInfo& info) : Napi::ObjectWrap<CudaBank>(info) {
    Guard(info.Env(), [&] {
      bank_ = std::make_unique<ResidentBank>(Args{info}.Int(0, "words"));
      return info.Env().Undefined();
    });
  }

 private:
  ResidentBank& Bank() {
    if (!bank_) throw std::invalid_argument("this CudaBank was disposed");
    return *bank_;
  }

  Napi::Value Upload(const Napi::CallbackInfo& info) {
    return Guard(info.Env(), [&] {
      auto raw = Args{info}.Array<uint32_t>(0, napi_uint32_array, "bank");
      Bank().Upload(raw.Data(), int64_t(raw.ElementLength()));
      return info.Env().Undefined();
    });
  }

  Napi::Value UploadBlocks(const Napi::CallbackInfo& info) {
    return Guard(info.Env(), [&] {
      Args a{info};
      auto raw = a.Array<uint32_t>(0, napi_uint32_array, "bank");
      Bank().UploadBlocks(raw.Data(), int64_t(raw.ElementLength()), a.Int(1, "first"), a.Int(2, "count"));
      return info.Env().Undefined();
    });
  }

  Napi::Value Scores(const Napi::CallbackInfo& info) {
    return Guard(info.Env(), [&] {
      Args a{info};
      ResidentBank& b = Bank();
      auto v = a.Array<float>(0, napi_float32_array, "v");
      const int examples = a.Int(1, "examples");
      auto out = a.Array<float>(2, napi_float32_array, "out");
      Need(examples >= 0, "examples must be a non-negative integer");
      Need(v.ElementLength() >= size_t(examples) * b.words() * 32, "v is shorter than examples * words * 32");
      Need(out.ElementLength() >= size_t(examples) * b.blocks() * 8, "out is shorter than examples * blocks * 8");
      b.Scores(v.Data(), examples, out.Data());
      return info.Env().Undefined();
    });
  }

  Napi::Value SubsetCount(const Napi::CallbackInfo& info) {
    return Guard(info.Env(), [&] {
      Args a{info};
      ResidentBank& b = Bank();
      auto slots = a.Array<int32_t>(0, napi_int32_array, "slots");
      auto out = a.Array<float>(1, napi_float32_array, "out");
      Need(out.ElementLength() >= size_t(b.words()) * 32, "out is shorter than words * 32");
      b.SubsetCount(slots.Data(), int(slots.ElementLength()), out.Data());
      return info.Env().Undefined();
    });
  }

  Napi::Value AttachNetwork(const Napi::CallbackInfo& info) {
    return Guard(info.Env(), [&] {
      Args a{info};
      auto shapes = a.Array<int32_t>(0, napi_int32_array, "shapes");
      auto scales = a.Array<float>(1, napi_float32_array, "scales");
      auto signs = a.Array<uint32_t>(2, napi_uint32_array, "signs");
      const int classes = a.Int(3, "classes");
      const size_t layers = scales.ElementLength();
      Need(shapes.ElementLength() == layers * 3, "shapes must hold [in, out, offset] for each of the scales' layers");
      std::vector<supsup_cuda::Layer> list(layers);
      for (size_t l = 0; l < layers; l++) list[l] = {shapes[l * 3], shapes[l * 3 + 1], shapes[l * 3 + 2], scales[l]};
      Bank().AttachNetwork(list, signs.Data(), int64_t(signs.ElementLength()), classes);
      inputs_ = list.front().in;
      outputs_ = list.back().out;
      return info.Env().Undefined();
    });
  }

  Napi::Value Superpose(const Napi::CallbackInfo& info) {
    return Guard(info.Env(), [&] {
      auto slots = Args{info}.Array<int32_t>(0, napi_int32_array, "slots");
      Bank().Superpose(slots.Data(), int(slots.ElementLength()));
      return info.Env().Undefined();
    });
  }

  Napi::Value SlotGradients(const Napi::CallbackInfo& info) {
    return Guard(info.Env(), [&] {
      Args a{info};
      ResidentBank& b = Bank();
      auto x = a.Array<float>(0, napi_float32_array, "x");
      const int batch = a.Int(1, "batch");
      const int objective = a.Int(2, "objective");
      Need(info[3].IsBoolean(), "perExample must be a boolean");
      const bool perExample = info[3].As<Napi::Boolean>().Value();
      auto out = a.Array<float>(4, napi_float32_array, "out");
      Need(batch > 0, "batch must be a positive integer");
      Need(x.ElementLength() % size_t(batch) == 0, "x must hold batch rows of the input size");
      Need(out.ElementLength() >= size_t(perExample ? batch : 1) * b.blocks() * 8, "out is shorter than rows * slots");
      CheckInput(x.ElementLength() / size_t(batch));
      b.SlotGradients(x.Data(), batch, objective, perExample, out.Data());
      return info.Env().Undefined();
    });
  }

  Napi::Value TaskLogits(const Napi::CallbackInfo& info) {
    return Guard(info.Env(), [&] {
      Args a{info};
      const int slot = a.Int(0, "slot");
      auto x = a.Array<float>(1, napi_float32_array, "x");
      const int batch = a.Int(2, "batch");
      auto out = a.Array<float>(3, napi_float32_array, "out");
      Need(batch > 0, "batch must be a positive integer");
      Need(x.ElementLength() % size_t(batch) == 0, "x must hold batch rows of the input size");
      CheckInput(x.ElementLength() / size_t(batch));
      Need(out.ElementLength() >= size_t(batch) * outputs_, "out is shorter than batch * outputs");
      Bank().TaskLogits(slot, x.Data(), batch, out.Data());
      return info.Env().Undefined();
    });
  }

  Napi::Value ReadFloorSeconds(const Napi::CallbackInfo& info) {
    return Guard(info.Env(), [&] {
      return Napi::Number::New(info.Env(), Bank().ReadFloorSeconds(Args{info}.Int(0, "repeats")));
    });
  }

  Napi::Value LastPassSeconds(const Napi::CallbackInfo& info) {
    return Guard(info.Env(), [&] { return Napi::Number::New(info.Env(), Bank().LastPassSeconds()); });
  }

  Napi::Value ResidentBytes(const Napi::CallbackInfo& info) {
    return Guard(info.Env(), [&] { return Napi::Number::New(info.Env(), double(Bank().residentBytes())); });
  }

  Napi::Value Blocks(const Napi::CallbackInfo& info) {
    return Guard(info.Env(), [&] { return Napi::Number::New(info.Env(), Bank().blocks()); });
  }

  Napi::Value Dispose(const Napi::CallbackInfo& info) {
    bank_.reset();
    return info.Env().Undefined();
  }

  void CheckInput(size_t width) {
    Need(inputs_ > 0, "no network attached");
    Need(width == size_t(inputs_), "x rows do not have the network's input size");
  }

  std::unique_ptr<ResidentBank> bank_;
  int inputs_ = 0, outputs_ = 0;  // the attached network's widths, for the argument checks
};

Napi::Value DeviceInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const supsup_cuda::DeviceInfo d = supsup_cuda::QueryDevice();
  Napi::Object o = Napi::Object::New(env);
  o.Set("ok", d.ok);
  o.Set("reason", d.reason);
  o.Set("name", d.name);
  o.Set("computeCapability", std::to_string(d.major) + "." + std::to_string(d.minor));
  o.Set("multiprocessors", d.multiprocessors);
  o.Set("memoryBytes", d.memoryBytes);
  o.Set("driverVersion", d.driverVersion);
  o.Set("runtimeVersion", d.runtimeVersion);
  return o;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("deviceInfo", Napi::Function::New(env, DeviceInfo, "deviceInfo"));
  exports.Set("CudaBank", CudaBank::Define(env));
  return exports;
}

}  // namespace

NODE_API_MODULE(supsup_cuda, Init)
