// Run-time loading of the NVIDIA driver, NVRTC and cuBLAS(Lt): see include/ccuda.h and
// docs/GPU.md ("The C API surface", pitfalls 1, 2 and 4).

#define _GNU_SOURCE 1   // dladdr, Dl_info

#include "ccuda.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#if defined(__linux__)
#include <dlfcn.h>
#include <glob.h>

static void say(char *reason, size_t len, const char *format, ...) {
    if (!reason || len == 0) return;
    va_list args;
    va_start(args, format);
    vsnprintf(reason, len, format, args);
    va_end(args);
}

/// dlopen `name` in `dir` ("" = by SONAME through the loader's path); the path tried goes to
/// `path`, the last dlerror to `error`.
static void *open_in(const char *dir, const char *name, int flags, char *path, size_t path_len,
                     char *error, size_t error_len) {
    if (dir[0] == '\0') snprintf(path, path_len, "%s", name);
    else snprintf(path, path_len, "%s/%s", dir, name);
    void *handle = dlopen(path, flags);
    if (!handle) {
        const char *e = dlerror();
        snprintf(error, error_len, "%s", e ? e : "unknown dlopen error");
    }
    return handle;
}

/// The first of `names` found in the first directory that has one. On failure `reason` lists
/// what was searched and the last loader error.
static void *open_first(const char *what, const char *const *names, int name_count,
                        const char *const *dirs, int count, int flags,
                        char *path, size_t path_len, char *reason, size_t reason_len) {
    char error[512] = "no directory to search";
    char searched[768] = "";
    for (int d = 0; d < count; d++) {
        size_t used = strlen(searched);
        if (used + 4 < sizeof searched)
            snprintf(searched + used, sizeof searched - used, "%s%s", used ? ", " : "",
                     dirs[d][0] ? dirs[d] : "(loader path)");
        for (int n = 0; n < name_count; n++) {
            void *handle = open_in(dirs[d], names[n], flags, path, path_len, error, sizeof error);
            if (handle) {
                return handle;
            }
        }
    }
    say(reason, reason_len, "%s not found (searched %s; last loader error: %s)", what, searched, error);
    return NULL;
}

/// Resolves `name` in `handle`; on failure fills `reason` naming the symbol and the file.
static int need(void *handle, const char *file, const char *name, void **slot, char *reason, size_t len) {
    dlerror();
    *slot = dlsym(handle, name);
    if (*slot) return 1;
    say(reason, len, "%s lacks the entry point %s", file, name);
    return 0;
}

// MARK: - Driver

typedef CUresult (*get_proc_fn)(const char *symbol, void **pfn, int cudaVersion,
                                unsigned long long flags, int *symbolStatus);

/// Base name (for cuGetProcAddress_v2) and exact versioned export (for dlsym) of each entry.
typedef struct { size_t offset; const char *base; const char *exact; } driver_entry;

#define ENTRY(field, exact) { offsetof(vani_cuda_driver, field), #field, exact }
static const driver_entry driver_entries[] = {
    ENTRY(cuDriverGetVersion, "cuDriverGetVersion"),
    ENTRY(cuDeviceGetCount, "cuDeviceGetCount"),
    ENTRY(cuDeviceGet, "cuDeviceGet"),
    ENTRY(cuDeviceGetName, "cuDeviceGetName"),
    ENTRY(cuDeviceTotalMem, "cuDeviceTotalMem_v2"),
    ENTRY(cuDeviceGetAttribute, "cuDeviceGetAttribute"),
    ENTRY(cuDevicePrimaryCtxRetain, "cuDevicePrimaryCtxRetain"),
    ENTRY(cuDevicePrimaryCtxRelease, "cuDevicePrimaryCtxRelease_v2"),
    ENTRY(cuCtxSetCurrent, "cuCtxSetCurrent"),
    ENTRY(cuMemAlloc, "cuMemAlloc_v2"),
    ENTRY(cuMemFree, "cuMemFree_v2"),
    ENTRY(cuMemGetInfo, "cuMemGetInfo_v2"),
    ENTRY(cuMemcpyHtoDAsync, "cuMemcpyHtoDAsync_v2"),
    ENTRY(cuMemcpyDtoHAsync, "cuMemcpyDtoHAsync_v2"),
    ENTRY(cuMemcpyDtoDAsync, "cuMemcpyDtoDAsync_v2"),
    ENTRY(cuMemsetD8Async, "cuMemsetD8Async"),
    ENTRY(cuStreamCreate, "cuStreamCreate"),
    ENTRY(cuStreamSynchronize, "cuStreamSynchronize"),
    ENTRY(cuStreamDestroy, "cuStreamDestroy_v2"),
    ENTRY(cuModuleLoadData, "cuModuleLoadData"),
    ENTRY(cuModuleGetFunction, "cuModuleGetFunction"),
    ENTRY(cuModuleUnload, "cuModuleUnload"),
    ENTRY(cuLaunchKernel, "cuLaunchKernel"),
    ENTRY(cuEventCreate, "cuEventCreate"),
    ENTRY(cuEventRecord, "cuEventRecord"),
    ENTRY(cuEventSynchronize, "cuEventSynchronize"),
    ENTRY(cuEventElapsedTime, "cuEventElapsedTime_v2"),
    ENTRY(cuEventDestroy, "cuEventDestroy_v2"),
};
#undef ENTRY

int vani_cuda_driver_open(vani_cuda_driver *out, const char *const *dirs, int count,
                          char *reason, size_t reason_len) {
    memset(out, 0, sizeof *out);
    // Always the driver's SONAME, never the toolkit's unversioned stubs/libcuda.so (pitfall 2).
    const char *names[] = { "libcuda.so.1" };
    char why[1024];
    void *handle = open_first("the NVIDIA driver (libcuda.so.1)", names, 1, dirs, count,
                              RTLD_NOW | RTLD_LOCAL, out->path, sizeof out->path, why, sizeof why);
    if (!handle) { say(reason, reason_len, "no NVIDIA driver: %s", why); return VANI_CUDA_NO_LIBRARY; }
    out->handle = handle;
    {   // Record the file the loader mapped, not the name asked for.
        void *init = dlsym(handle, "cuInit");
        Dl_info info;
        if (init && dladdr(init, &info) && info.dli_fname) snprintf(out->path, sizeof out->path, "%s", info.dli_fname);
    }
    if (!need(handle, out->path, "cuInit", (void **)&out->cuInit, reason, reason_len) ||
        !need(handle, out->path, "cuGetErrorString", (void **)&out->cuGetErrorString, reason, reason_len)) {
        vani_cuda_driver_close(out);
        return VANI_CUDA_MISSING_SYMBOL;
    }
    CUresult status = out->cuInit(0);
    if (status != VANI_CUDA_SUCCESS) {
        const char *text = NULL;
        if (out->cuGetErrorString(status, &text) != VANI_CUDA_SUCCESS || !text) text = "no description";
        int kind;
        if (status == VANI_CUDA_ERROR_STUB_LIBRARY) {
            say(reason, reason_len, "%s is the CUDA toolkit's stub library, not a driver (cuInit: error 34, %s): "
                "install the NVIDIA driver or take the stubs directory off the search path", out->path, text);
            kind = VANI_CUDA_STUB_DRIVER;
        } else if (status == VANI_CUDA_ERROR_NO_DEVICE) {
            say(reason, reason_len, "the NVIDIA driver (%s) sees no CUDA device (cuInit: error 100, %s)", out->path, text);
            kind = VANI_CUDA_NO_DEVICE;
        } else {
            say(reason, reason_len, "the NVIDIA driver (%s) failed to initialise (cuInit: error %d, %s)", out->path, status, text);
            kind = VANI_CUDA_INIT_FAILED;
        }
        vani_cuda_driver_close(out);
        return kind;
    }
    // Versioned entry points through cuGetProcAddress_v2 when the driver has it (pitfall 1),
    // else by their exact versioned export names.
    get_proc_fn get_proc = (get_proc_fn)dlsym(handle, "cuGetProcAddress_v2");
    size_t entries = sizeof driver_entries / sizeof driver_entries[0];
    for (size_t i = 0; i < entries; i++) {
        void **slot = (void **)((char *)out + driver_entries[i].offset);
        *slot = NULL;
        if (get_proc) {
            int symbol_status = 0;
            void *pfn = NULL;
            if (get_proc(driver_entries[i].base, &pfn, VANI_CUDA_API_VERSION, 0, &symbol_status) == VANI_CUDA_SUCCESS
                && symbol_status == 0 && pfn) *slot = pfn;
        }
        if (!*slot && !need(handle, out->path, driver_entries[i].exact, slot, reason, reason_len)) {
            vani_cuda_driver_close(out);
            return VANI_CUDA_MISSING_SYMBOL;
        }
    }
    return VANI_CUDA_OK;
}

void vani_cuda_driver_close(vani_cuda_driver *lib) {
    if (lib->handle) dlclose(lib->handle);
    memset(lib, 0, sizeof *lib);
}

// MARK: - NVRTC

int vani_nvrtc_open(vani_nvrtc *out, const char *const *dirs, int count, char *reason, size_t reason_len) {
    memset(out, 0, sizeof *out);
    const char *names[] = { "libnvrtc.so.13", "libnvrtc.so.12" };
    char error[512] = "no directory to search";
    void *handle = NULL;
    char searched[768] = "";
    for (int d = 0; d < count && !handle; d++) {
        size_t used = strlen(searched);
        if (used + 4 < sizeof searched)
            snprintf(searched + used, sizeof searched - used, "%s%s", used ? ", " : "", dirs[d][0] ? dirs[d] : "(loader path)");
        for (int n = 0; n < 2 && !handle; n++) {
            if (dirs[d][0] != '\0') {
                // libnvrtc finds its builtins by SONAME only: pre-load them from the same folder
                // by absolute path, RTLD_GLOBAL, so the later lookup finds them loaded.
                char pattern[1200];
                snprintf(pattern, sizeof pattern, "%s/libnvrtc-builtins.so.%s*", dirs[d], n == 0 ? "13" : "12");
                glob_t found;
                if (glob(pattern, 0, NULL, &found) == 0) {
                    for (size_t i = 0; i < found.gl_pathc; i++) dlopen(found.gl_pathv[i], RTLD_NOW | RTLD_GLOBAL);
                    globfree(&found);
                }
            }
            handle = open_in(dirs[d], names[n], RTLD_NOW | RTLD_LOCAL, out->path, sizeof out->path, error, sizeof error);
        }
    }
    if (!handle) {
        say(reason, reason_len, "missing NVRTC: libnvrtc.so.13 or .12 not found (searched %s; last loader error: %s)", searched, error);
        return VANI_CUDA_NO_LIBRARY;
    }
    out->handle = handle;
#define NEED(field) if (!need(handle, out->path, #field, (void **)&out->field, reason, reason_len)) { vani_nvrtc_close(out); return VANI_CUDA_MISSING_SYMBOL; }
    NEED(nvrtcVersion) NEED(nvrtcGetNumSupportedArchs) NEED(nvrtcGetSupportedArchs) NEED(nvrtcCreateProgram)
    NEED(nvrtcCompileProgram) NEED(nvrtcGetProgramLogSize) NEED(nvrtcGetProgramLog) NEED(nvrtcGetCUBINSize)
    NEED(nvrtcGetCUBIN) NEED(nvrtcDestroyProgram) NEED(nvrtcGetErrorString)
#undef NEED
    Dl_info info;
    if (dladdr((void *)out->nvrtcVersion, &info) && info.dli_fname) snprintf(out->path, sizeof out->path, "%s", info.dli_fname);
    return VANI_CUDA_OK;
}

void vani_nvrtc_close(vani_nvrtc *lib) {
    if (lib->handle) dlclose(lib->handle);
    memset(lib, 0, sizeof *lib);
}

// MARK: - cuBLAS(Lt)

int vani_cublas_open(vani_cublas *out, const char *const *dirs, int count, char *reason, size_t reason_len) {
    memset(out, 0, sizeof *out);
    // cuBLAS needs cuBLASLt beside it; open Lt first, RTLD_GLOBAL, so cuBLAS's SONAME lookup finds it.
    const char *lt_names[] = { "libcublasLt.so.13", "libcublasLt.so.12" };
    const char *names[] = { "libcublas.so.13", "libcublas.so.12" };
    char why[1024];
    out->lt_handle = open_first("cuBLASLt (libcublasLt.so.13 or .12)", lt_names, 2, dirs, count, RTLD_NOW | RTLD_GLOBAL,
                                out->lt_path, sizeof out->lt_path, why, sizeof why);
    if (!out->lt_handle) { say(reason, reason_len, "missing cuBLAS: %s", why); return VANI_CUDA_NO_LIBRARY; }
    out->handle = open_first("cuBLAS (libcublas.so.13 or .12)", names, 2, dirs, count, RTLD_NOW | RTLD_LOCAL,
                             out->path, sizeof out->path, why, sizeof why);
    if (!out->handle) { say(reason, reason_len, "missing cuBLAS: %s", why); vani_cublas_close(out); return VANI_CUDA_NO_LIBRARY; }
#define NEED(h, file, field, name) if (!need(h, file, name, (void **)&out->field, reason, reason_len)) { vani_cublas_close(out); return VANI_CUDA_MISSING_SYMBOL; }
    NEED(out->handle, out->path, cublasCreate, "cublasCreate_v2")
    NEED(out->handle, out->path, cublasDestroy, "cublasDestroy_v2")
    NEED(out->handle, out->path, cublasSetStream, "cublasSetStream_v2")
    NEED(out->handle, out->path, cublasSetWorkspace, "cublasSetWorkspace_v2")
    NEED(out->handle, out->path, cublasSetMathMode, "cublasSetMathMode")
    NEED(out->handle, out->path, cublasGetProperty, "cublasGetProperty")
    NEED(out->handle, out->path, cublasGemmEx, "cublasGemmEx")
    NEED(out->handle, out->path, cublasGemmStridedBatchedEx, "cublasGemmStridedBatchedEx")
    NEED(out->lt_handle, out->lt_path, cublasLtGetVersion, "cublasLtGetVersion")
#undef NEED
    Dl_info info;
    if (dladdr((void *)out->cublasCreate, &info) && info.dli_fname) snprintf(out->path, sizeof out->path, "%s", info.dli_fname);
    if (dladdr((void *)out->cublasLtGetVersion, &info) && info.dli_fname) snprintf(out->lt_path, sizeof out->lt_path, "%s", info.dli_fname);
    return VANI_CUDA_OK;
}

void vani_cublas_close(vani_cublas *lib) {
    if (lib->handle) dlclose(lib->handle);
    if (lib->lt_handle) dlclose(lib->lt_handle);
    memset(lib, 0, sizeof *lib);
}

#else  // not Linux: nothing to load

static int unsupported(char *reason, size_t len) {
    if (reason && len) snprintf(reason, len, "CUDA is supported on Linux only");
    return VANI_CUDA_UNSUPPORTED;
}
int vani_cuda_driver_open(vani_cuda_driver *out, const char *const *dirs, int count, char *reason, size_t reason_len) {
    (void)dirs; (void)count; memset(out, 0, sizeof *out); return unsupported(reason, reason_len);
}
int vani_nvrtc_open(vani_nvrtc *out, const char *const *dirs, int count, char *reason, size_t reason_len) {
    (void)dirs; (void)count; memset(out, 0, sizeof *out); return unsupported(reason, reason_len);
}
int vani_cublas_open(vani_cublas *out, const char *const *dirs, int count, char *reason, size_t reason_len) {
    (void)dirs; (void)count; memset(out, 0, sizeof *out); return unsupported(reason, reason_len);
}
void vani_cuda_driver_close(vani_cuda_driver *lib) { memset(lib, 0, sizeof *lib); }
void vani_nvrtc_close(vani_nvrtc *lib) { memset(lib, 0, sizeof *lib); }
void vani_cublas_close(vani_cublas *lib) { memset(lib, 0, sizeof *lib); }

#endif
