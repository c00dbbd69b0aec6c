// Issue 14: Vani's bf16 / int8 kernels (Sources/CKernels/qgemm.c) against oneDNN 2.6's matmul
// (Debian's libdnnl-dev) and Vani's fp32 kernel at the encoder's shapes, one thread, CPU time of
// the calling thread (the machine is shared), medians of 15 runs. oneDNN gets every advantage:
// its weights reordered once into its preferred layout, its activations already bf16 / uint8
// (Vani's timings include rounding or quantizing the fp32 activations), no zero point.
//   apt-get install libdnnl-dev
//   for f in qgemm gemm pool kernels; do clang -O2 -c -I ../../Sources/CKernels/include ../../Sources/CKernels/$f.c; done
//   clang++ -O2 -std=c++17 -I ../../Sources/CKernels/include qbench.cpp *.o -o qbench -ldnnl $(pkg-config --libs openblas) -lpthread
//   OMP_NUM_THREADS=1 ./qbench 251 4096 1024      # M (frames) N (outputs) K (inputs)
#include <dnnl.hpp>
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <functional>
#include <vector>
extern "C" {
#include "ckernels.h"
}
using namespace dnnl;

static double cpu_ms() {
    timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return t.tv_sec * 1e3 + t.tv_nsec * 1e-6;
}

static double median_ms(const std::function<void()> &f) {
    f();
    std::vector<double> v;
    for (int r = 0; r < 15; r++) { double t = cpu_ms(); f(); v.push_back(cpu_ms() - t); }
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

int main(int argc, char **argv) {
    long m = argc > 1 ? atol(argv[1]) : 251, n = argc > 2 ? atol(argv[2]) : 4096, k = argc > 3 ? atol(argv[3]) : 1024;
    vani_pool_set_threads(1);
    std::vector<float> a(m * k), w(n * k), c(m * n);
    srand(1);
    for (auto &x : a) x = rand() / (float)RAND_MAX - 0.5f;
    for (auto &x : w) x = (rand() / (float)RAND_MAX - 0.5f) * 0.1f;
    long kb = (k + 1) & ~1L, kq = (k + 3) & ~3L;
    std::vector<uint16_t> wb(n * kb, 0);
    for (long r = 0; r < n; r++) vani_f32_to_bf16(&w[r * k], k, &wb[r * kb]);
    std::vector<int8_t> wq(n * kq);
    std::vector<float> sc(n);
    std::vector<int32_t> su(n);
    vani_quantize_weights_int8(w.data(), n, k, k, wq.data(), kq, sc.data(), su.data());
    double flop = 2.0 * m * n * k;
    auto report = [&](const char *name, double ms) { printf("%-26s %8.3f ms  %6.0f GFLOP/s\n", name, ms, flop / ms / 1e6); };
    printf("M %ld, N %ld, K %ld, one thread\n", m, n, k);
    report("Vani fp32 (gemm.c)", median_ms([&] { vani_sgemm_nt(m, n, k, 1, a.data(), k, w.data(), k, 0, c.data(), n, 1); }));
    report("Vani bf16 (qgemm.c)", median_ms([&] { vani_gemm_bf16(m, n, k, a.data(), k, wb.data(), kb, 0, c.data(), n, 1); }));
    report("Vani int8 (qgemm.c)", median_ms([&] {
        vani_gemm_int8(m, n, k, a.data(), k, wq.data(), kq, sc.data(), su.data(), 0, c.data(), n, 1); }));

    engine eng(engine::kind::cpu, 0);
    stream s(eng);
    using dt = memory::data_type;
    using tag = memory::format_tag;
    auto run = [&](const char *name, dt adt, dt wdt, void *a_data, void *w_data, bool scales) {
        memory::desc a_md({m, k}, adt, tag::ab), w_md({k, n}, wdt, tag::any), c_md({m, n}, dt::f32, tag::ab);
        primitive_attr attr;
        if (scales) attr.set_output_scales(2, sc);
        matmul::primitive_desc pd(matmul::desc(a_md, w_md, c_md), attr, eng);
        memory w_user({{k, n}, wdt, tag::ba}, eng, w_data), w_mem(pd.weights_desc(), eng);
        reorder(w_user, w_mem).execute(s, w_user, w_mem);
        memory a_mem(a_md, eng, a_data), c_mem(c_md, eng, c.data());
        matmul mm(pd);
        report(name, median_ms([&] {
            mm.execute(s, {{DNNL_ARG_SRC, a_mem}, {DNNL_ARG_WEIGHTS, w_mem}, {DNNL_ARG_DST, c_mem}});
            s.wait();
        }));
    };
    std::vector<uint16_t> ab(m * kb, 0);
    for (long r = 0; r < m; r++) vani_f32_to_bf16(&a[r * k], k, &ab[r * kb]);
    std::vector<uint16_t> ab_dense(m * k);
    for (long r = 0; r < m; r++) std::copy(&ab[r * kb], &ab[r * kb] + k, &ab_dense[r * k]);
    std::vector<uint16_t> wb_dense(n * k);
    for (long r = 0; r < n; r++) std::copy(&wb[r * kb], &wb[r * kb] + k, &wb_dense[r * k]);
    std::vector<uint8_t> aq(m * k);
    for (auto i = 0L; i < m * k; i++) aq[i] = (uint8_t)(128 + a[i] * 250);
    std::vector<int8_t> wq_dense(n * k);
    for (long r = 0; r < n; r++) std::copy(&wq[r * kq], &wq[r * kq] + k, &wq_dense[r * k]);
    run("oneDNN fp32 matmul", dt::f32, dt::f32, a.data(), w.data(), false);
    run("oneDNN bf16 matmul", dt::bf16, dt::bf16, ab_dense.data(), wb_dense.data(), false);
    run("oneDNN u8·s8 matmul", dt::u8, dt::s8, aq.data(), wq_dense.data(), true);
    return 0;
}
