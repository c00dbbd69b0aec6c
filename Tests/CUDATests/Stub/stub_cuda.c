// Look-alikes of libcuda.so.1, libnvrtc.so.13, libcublas.so.13 and libcublasLt.so.13 for the
// loader tests (docs/GPU.md, "Loader logic against a stub"). Built by CUDATests with cc, one
// variant per -D choice; no NVIDIA code. They answer like a machine with one fake GPU, or fail
// the way real installations fail.
//
//   -DSTUB_DRIVER -DINIT_RESULT=N   cuInit returns N (0, 34 = stub library, 100 = no device)
//   -DSTUB_GETPROC                  export cuGetProcAddress_v2 (else only exact names resolve)
//   -DSTUB_NO_V2                    export cuMemAlloc (v1) but not cuMemAlloc_v2
//   -DSTUB_NVRTC / -DSTUB_CUBLAS / -DSTUB_CUBLASLT

#define _GNU_SOURCE 1   // dladdr
#include <stddef.h>
#include <string.h>

#ifdef STUB_DRIVER
typedef int CUresult;
#define EXPORT __attribute__((visibility("default")))

EXPORT CUresult cuInit(unsigned flags) { (void)flags; return INIT_RESULT; }
EXPORT CUresult cuGetErrorString(CUresult e, const char **text) {
    *text = e == 34 ? "CUDA driver is a stub library" : e == 100 ? "no CUDA-capable device is detected" : "stub error";
    return 0;
}
EXPORT CUresult cuDriverGetVersion(int *v) { *v = 13000; return 0; }
EXPORT CUresult cuDeviceGetCount(int *n) { *n = 1; return 0; }
EXPORT CUresult cuDeviceGet(int *d, int ordinal) { if (ordinal != 0) return 101; *d = 0; return 0; }
EXPORT CUresult cuDeviceGetName(char *name, int len, int d) { (void)d; strncpy(name, "Vani Stub GPU", (size_t)len); return 0; }
EXPORT CUresult cuDeviceTotalMem_v2(size_t *bytes, int d) { (void)d; *bytes = (size_t)80 << 30; return 0; }
EXPORT CUresult cuDeviceGetAttribute(int *v, int attribute, int d) {
    (void)d;
    switch (attribute) {
    case 75: *v = 9; return 0;        // compute capability major
    case 76: *v = 0; return 0;        // minor
    case 16: *v = 132; return 0;      // SMs
    case 38: *v = 50 << 20; return 0; // L2 bytes
    default: *v = 0; return 1;
    }
}
EXPORT CUresult cuDevicePrimaryCtxRetain(void **c, int d) { (void)d; *c = (void *)1; return 0; }
EXPORT CUresult cuDevicePrimaryCtxRelease_v2(int d) { (void)d; return 0; }
EXPORT CUresult cuCtxSetCurrent(void *c) { (void)c; return 0; }
// The v1 ABI must never be picked: it answers with an error the tests look for.
EXPORT CUresult cuMemAlloc(unsigned *p, unsigned bytes) { (void)p; (void)bytes; return 999; }
#ifndef STUB_NO_V2
EXPORT CUresult cuMemAlloc_v2(unsigned long long *p, size_t bytes) { *p = 0x1000; (void)bytes; return 0; }
#endif
EXPORT CUresult cuMemFree_v2(unsigned long long p) { (void)p; return 0; }
EXPORT CUresult cuMemGetInfo_v2(size_t *f, size_t *t) { *f = 1; *t = 2; return 0; }
EXPORT CUresult cuMemcpyHtoDAsync_v2(unsigned long long d, const void *s, size_t n, void *st) { (void)d; (void)s; (void)n; (void)st; return 0; }
EXPORT CUresult cuMemcpyDtoHAsync_v2(void *d, unsigned long long s, size_t n, void *st) { (void)d; (void)s; (void)n; (void)st; return 0; }
EXPORT CUresult cuMemcpyDtoDAsync_v2(unsigned long long d, unsigned long long s, size_t n, void *st) { (void)d; (void)s; (void)n; (void)st; return 0; }
EXPORT CUresult cuMemsetD8Async(unsigned long long d, unsigned char v, size_t n, void *st) { (void)d; (void)v; (void)n; (void)st; return 0; }
EXPORT CUresult cuStreamCreate(void **s, unsigned f) { (void)f; *s = (void *)1; return 0; }
EXPORT CUresult cuStreamSynchronize(void *s) { (void)s; return 0; }
EXPORT CUresult cuStreamDestroy_v2(void *s) { (void)s; return 0; }
EXPORT CUresult cuModuleLoadData(void **m, const void *image) { (void)image; *m = (void *)1; return 0; }
EXPORT CUresult cuModuleGetFunction(void **f, void *m, const char *name) { (void)m; (void)name; *f = (void *)1; return 0; }
EXPORT CUresult cuModuleUnload(void *m) { (void)m; return 0; }
EXPORT CUresult cuLaunchKernel(void *f, unsigned a, unsigned b, unsigned c, unsigned d, unsigned e, unsigned g,
                               unsigned sh, void *st, void **p, void **x) {
    (void)f; (void)a; (void)b; (void)c; (void)d; (void)e; (void)g; (void)sh; (void)st; (void)p; (void)x; return 0;
}
EXPORT CUresult cuEventCreate(void **e, unsigned f) { (void)f; *e = (void *)1; return 0; }
EXPORT CUresult cuEventRecord(void *e, void *s) { (void)e; (void)s; return 0; }
EXPORT CUresult cuEventSynchronize(void *e) { (void)e; return 0; }
EXPORT CUresult cuEventElapsedTime_v2(float *ms, void *a, void *b) { (void)a; (void)b; *ms = 1.5f; return 0; }
EXPORT CUresult cuEventDestroy_v2(void *e) { (void)e; return 0; }

#ifdef STUB_GETPROC
// Maps base names to the newest ABI, as the real driver does for cudaVersion 13000.
#include <dlfcn.h>
EXPORT CUresult cuGetProcAddress_v2(const char *symbol, void **pfn, int version, unsigned long long flags, int *status) {
    (void)flags;
    static const char *const versioned[] = { "cuDeviceTotalMem", "cuDevicePrimaryCtxRelease", "cuMemAlloc", "cuMemFree",
        "cuMemGetInfo", "cuMemcpyHtoDAsync", "cuMemcpyDtoHAsync", "cuMemcpyDtoDAsync", "cuStreamDestroy", "cuEventElapsedTime", "cuEventDestroy" };
    char name[128];
    strncpy(name, symbol, sizeof name - 4);
    name[sizeof name - 4] = 0;
    if (version >= 12000)
        for (size_t i = 0; i < sizeof versioned / sizeof versioned[0]; i++)
            if (strcmp(symbol, versioned[i]) == 0) { strcat(name, "_v2"); break; }
    Dl_info self;
    dladdr((void *)cuInit, &self);
    void *handle = dlopen(self.dli_fname, RTLD_NOW | RTLD_NOLOAD);
    *pfn = handle ? dlsym(handle, name) : NULL;
    if (handle) dlclose(handle);
    *status = *pfn ? 0 : 1;
    return *pfn ? 0 : 500;   // CUDA_ERROR_NOT_FOUND
}
#endif
#endif

#ifdef STUB_NVRTC
#define EXPORT __attribute__((visibility("default")))
EXPORT int nvrtcVersion(int *major, int *minor) { *major = 13; *minor = 0; return 0; }
EXPORT int nvrtcGetNumSupportedArchs(int *n) { *n = 2; return 0; }
EXPORT int nvrtcGetSupportedArchs(int *a) { a[0] = 80; a[1] = 90; return 0; }
EXPORT int nvrtcCreateProgram(void **p, const char *s, const char *n, int h, const char *const *a, const char *const *b) {
    (void)s; (void)n; (void)h; (void)a; (void)b; *p = (void *)1; return 0;
}
EXPORT int nvrtcCompileProgram(void *p, int n, const char *const *o) { (void)p; (void)n; (void)o; return 6; }  // COMPILATION
EXPORT int nvrtcGetProgramLogSize(void *p, size_t *n) { (void)p; *n = sizeof "stub: no ptx"; return 0; }
EXPORT int nvrtcGetProgramLog(void *p, char *log) { (void)p; memcpy(log, "stub: no ptx", sizeof "stub: no ptx"); return 0; }
EXPORT int nvrtcGetCUBINSize(void *p, size_t *n) { (void)p; *n = 0; return 0; }
EXPORT int nvrtcGetCUBIN(void *p, char *c) { (void)p; (void)c; return 0; }
EXPORT int nvrtcDestroyProgram(void **p) { *p = NULL; return 0; }
EXPORT const char *nvrtcGetErrorString(int r) { return r == 6 ? "NVRTC_ERROR_COMPILATION" : "NVRTC stub"; }
#endif

#ifdef STUB_CUBLASLT
__attribute__((visibility("default"))) size_t cublasLtGetVersion(void) { return 130100; }
#endif

#ifdef STUB_CUBLAS
#define EXPORT __attribute__((visibility("default")))
EXPORT int cublasCreate_v2(void **h) { *h = (void *)1; return 0; }
EXPORT int cublasDestroy_v2(void *h) { (void)h; return 0; }
EXPORT int cublasSetStream_v2(void *h, void *s) { (void)h; (void)s; return 0; }
EXPORT int cublasSetWorkspace_v2(void *h, void *w, size_t n) { (void)h; (void)w; (void)n; return 0; }
EXPORT int cublasSetMathMode(void *h, int m) { (void)h; (void)m; return 0; }
EXPORT int cublasGetProperty(int type, int *v) { *v = type == 0 ? 13 : type == 1 ? 1 : 0; return 0; }
EXPORT int cublasGemmEx(void) { return 0; }
EXPORT int cublasGemmStridedBatchedEx(void) { return 0; }
#endif
