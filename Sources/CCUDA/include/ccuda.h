// CCUDA: the few NVIDIA driver, NVRTC and cuBLAS(Lt) entry points Vani uses, declared here (no
// NVIDIA header in the repository, no toolkit at build time) and loaded with dlopen at run time.
// Names and constants are CUDA 13's (docs/GPU.md, "The C API surface"). Every failure leaves a
// one-line reason in the caller's buffer; nothing here aborts. Inert off Linux.

#ifndef VANI_CCUDA_H
#define VANI_CCUDA_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// MARK: - Driver API types and constants (cuda.h, CUDA 13.0)

typedef int CUresult;                 // CUDA_SUCCESS = 0
typedef int CUdevice;
typedef unsigned long long CUdeviceptr;
typedef struct CUctx_st *CUcontext;
typedef struct CUstream_st *CUstream;
typedef struct CUmod_st *CUmodule;
typedef struct CUfunc_st *CUfunction;
typedef struct CUevent_st *CUevent;
typedef struct CUgraph_st *CUgraph;
typedef struct CUgraphExec_st *CUgraphExec;

enum {
    VANI_CUDA_SUCCESS = 0,
    VANI_CUDA_ERROR_NOT_INITIALIZED = 3,
    VANI_CUDA_ERROR_STUB_LIBRARY = 34,
    VANI_CUDA_ERROR_INSUFFICIENT_DRIVER = 35,
    VANI_CUDA_ERROR_NO_DEVICE = 100,
    VANI_CUDA_ERROR_INVALID_DEVICE = 101,
    VANI_CUDA_ERROR_UNSUPPORTED_PTX_VERSION = 222,
};

enum {
    VANI_CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT = 16,
    VANI_CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE = 38,
    VANI_CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = 75,
    VANI_CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR = 76,
};

/// The CUDA version whose ABI `cuGetProcAddress_v2` is asked for (CUDA_VERSION of 13.0).
#define VANI_CUDA_API_VERSION 13000

// MARK: - cuBLAS / NVRTC constants (library_types.h, cublas_api.h 13.0)

enum {
    VANI_CUDA_R_32F = 0, VANI_CUDA_R_16F = 2, VANI_CUDA_R_16BF = 14,
    VANI_CUBLAS_COMPUTE_32F = 68, VANI_CUBLAS_COMPUTE_32F_FAST_16BF = 75, VANI_CUBLAS_COMPUTE_32F_FAST_TF32 = 77,
    VANI_CUBLAS_OP_N = 0, VANI_CUBLAS_OP_T = 1,
    VANI_CUBLAS_GEMM_DEFAULT = -1,
    VANI_CUBLASLT_EPILOGUE_DEFAULT = 1, VANI_CUBLASLT_EPILOGUE_BIAS = 4,
};

typedef struct cublasContext *cublasHandle_t;
typedef struct cublasLtContext *cublasLtHandle_t;
typedef struct _nvrtcProgram *nvrtcProgram;

// MARK: - The loaded libraries

/// The driver's entry points, resolved through `cuGetProcAddress_v2` (or, when the library has
/// no such symbol, by their exact versioned names). All non-null after a successful open.
typedef struct vani_cuda_driver {
    void *handle;
    char path[1024];                  // the file the loader picked
    CUresult (*cuInit)(unsigned int flags);
    CUresult (*cuDriverGetVersion)(int *version);
    CUresult (*cuDeviceGetCount)(int *count);
    CUresult (*cuDeviceGet)(CUdevice *device, int ordinal);
    CUresult (*cuDeviceGetName)(char *name, int len, CUdevice device);
    CUresult (*cuDeviceTotalMem)(size_t *bytes, CUdevice device);                 // _v2
    CUresult (*cuDeviceGetAttribute)(int *value, int attribute, CUdevice device);
    CUresult (*cuDevicePrimaryCtxRetain)(CUcontext *context, CUdevice device);
    CUresult (*cuDevicePrimaryCtxRelease)(CUdevice device);                      // _v2
    CUresult (*cuCtxSetCurrent)(CUcontext context);
    CUresult (*cuMemAlloc)(CUdeviceptr *pointer, size_t bytes);                   // _v2
    CUresult (*cuMemFree)(CUdeviceptr pointer);                                   // _v2
    CUresult (*cuMemGetInfo)(size_t *free, size_t *total);                        // _v2
    CUresult (*cuMemcpyHtoDAsync)(CUdeviceptr dst, const void *src, size_t bytes, CUstream stream); // _v2
    CUresult (*cuMemcpyDtoHAsync)(void *dst, CUdeviceptr src, size_t bytes, CUstream stream);       // _v2
    CUresult (*cuMemcpyDtoDAsync)(CUdeviceptr dst, CUdeviceptr src, size_t bytes, CUstream stream); // _v2
    CUresult (*cuMemsetD8Async)(CUdeviceptr dst, unsigned char value, size_t bytes, CUstream stream);
    CUresult (*cuStreamCreate)(CUstream *stream, unsigned int flags);
    CUresult (*cuStreamSynchronize)(CUstream stream);
    CUresult (*cuStreamDestroy)(CUstream stream);                                 // _v2
    CUresult (*cuModuleLoadData)(CUmodule *module, const void *image);
    CUresult (*cuModuleGetFunction)(CUfunction *function, CUmodule module, const char *name);
    CUresult (*cuModuleUnload)(CUmodule module);
    CUresult (*cuLaunchKernel)(CUfunction f, unsigned gx, unsigned gy, unsigned gz,
                               unsigned bx, unsigned by, unsigned bz, unsigned sharedBytes,
                               CUstream stream, void **params, void **extra);
    CUresult (*cuEventCreate)(CUevent *event, unsigned int flags);
    CUresult (*cuEventRecord)(CUevent event, CUstream stream);
    CUresult (*cuEventSynchronize)(CUevent event);
    CUresult (*cuEventElapsedTime)(float *ms, CUevent start, CUevent end);        // _v2
    CUresult (*cuEventDestroy)(CUevent event);                                    // _v2
    CUresult (*cuGetErrorString)(CUresult error, const char **text);
} vani_cuda_driver;

/// NVRTC's entry points (libnvrtc.so.13, else .12).
typedef struct vani_nvrtc {
    void *handle;
    char path[1024];
    int (*nvrtcVersion)(int *major, int *minor);
    int (*nvrtcGetNumSupportedArchs)(int *count);
    int (*nvrtcGetSupportedArchs)(int *archs);
    int (*nvrtcCreateProgram)(nvrtcProgram *program, const char *source, const char *name,
                              int headerCount, const char *const *headers, const char *const *includeNames);
    int (*nvrtcCompileProgram)(nvrtcProgram program, int optionCount, const char *const *options);
    int (*nvrtcGetProgramLogSize)(nvrtcProgram program, size_t *size);
    int (*nvrtcGetProgramLog)(nvrtcProgram program, char *log);
    int (*nvrtcGetCUBINSize)(nvrtcProgram program, size_t *size);
    int (*nvrtcGetCUBIN)(nvrtcProgram program, char *cubin);
    int (*nvrtcDestroyProgram)(nvrtcProgram *program);
    const char *(*nvrtcGetErrorString)(int result);
} vani_nvrtc;

/// cuBLAS and cuBLASLt entry points (libcublas.so.13 / libcublasLt.so.13, else .12).
typedef struct vani_cublas {
    void *handle;
    void *lt_handle;
    char path[1024];
    char lt_path[1024];
    int (*cublasCreate)(cublasHandle_t *handle);                                   // _v2
    int (*cublasDestroy)(cublasHandle_t handle);                                   // _v2
    int (*cublasSetStream)(cublasHandle_t handle, CUstream stream);                // _v2
    int (*cublasSetWorkspace)(cublasHandle_t handle, void *workspace, size_t bytes); // _v2
    int (*cublasSetMathMode)(cublasHandle_t handle, int mode);
    int (*cublasGetProperty)(int type, int *value);
    int (*cublasGemmEx)(cublasHandle_t handle, int transa, int transb, int m, int n, int k,
                        const void *alpha, const void *A, int Atype, int lda,
                        const void *B, int Btype, int ldb, const void *beta,
                        void *C, int Ctype, int ldc, int computeType, int algo);
    int (*cublasGemmStridedBatchedEx)(cublasHandle_t handle, int transa, int transb, int m, int n, int k,
                                      const void *alpha, const void *A, int Atype, int lda, long long strideA,
                                      const void *B, int Btype, int ldb, long long strideB, const void *beta,
                                      void *C, int Ctype, int ldc, long long strideC,
                                      int batchCount, int computeType, int algo);
    size_t (*cublasLtGetVersion)(void);
} vani_cublas;

// MARK: - Loading

/// Opens the driver library. `dirs` is a list of `count` directories tried in order for
/// `libcuda.so.1`; an empty string means "the dynamic loader's own path" (dlopen by SONAME).
/// Resolves every entry point (a missing one is an error naming it), then calls `cuInit(0)`.
/// Returns 0 on success; otherwise a `vani_cuda_status` value and a one-line reason in
/// `reason` (at most `reason_len` bytes, NUL-terminated). On failure `out` holds no library.
int vani_cuda_driver_open(vani_cuda_driver *out, const char *const *dirs, int count,
                          char *reason, size_t reason_len);

/// Opens NVRTC from the first of `dirs` holding libnvrtc.so.13 (else .12); pre-loads the
/// matching libnvrtc-builtins by absolute path with RTLD_GLOBAL first (the library finds it by
/// SONAME only, docs/GPU.md pitfall 4). Same return and reason contract as the driver's.
int vani_nvrtc_open(vani_nvrtc *out, const char *const *dirs, int count, char *reason, size_t reason_len);

/// Opens cuBLASLt and cuBLAS (13, else 12) from `dirs`. Same contract.
int vani_cublas_open(vani_cublas *out, const char *const *dirs, int count, char *reason, size_t reason_len);

/// Failure kinds of the open functions (0: success).
typedef enum vani_cuda_status {
    VANI_CUDA_OK = 0,
    VANI_CUDA_NO_LIBRARY = 1,       // no file found in any directory
    VANI_CUDA_MISSING_SYMBOL = 2,   // a file without one of the entry points
    VANI_CUDA_STUB_DRIVER = 3,      // the toolkit's stubs/libcuda.so (error 34)
    VANI_CUDA_NO_DEVICE = 4,        // a driver but no device (error 100)
    VANI_CUDA_INIT_FAILED = 5,      // cuInit failed otherwise
    VANI_CUDA_UNSUPPORTED = 6,      // not Linux
} vani_cuda_status;

/// Closes what an open function opened (safe on a zeroed struct).
void vani_cuda_driver_close(vani_cuda_driver *lib);
void vani_nvrtc_close(vani_nvrtc *lib);
void vani_cublas_close(vani_cublas *lib);

#ifdef __cplusplus
}
#endif

#endif
