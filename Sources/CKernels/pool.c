// A small fork-join pool for the encoder's parallel loops (see include/ckernels.h).
//
// Why not OpenBLAS's own threads: OpenBLAS splits one GEMM between its threads and re-packs
// the weights on each, and its idle threads spin on the cores the element-wise loops need.
// With OpenBLAS single-threaded and this pool splitting the work (a weight GEMM by output
// columns, attention by heads, element-wise loops by rows), each core streams its own part of
// the weights once and no two thread pools compete.
//
// Protocol: one 64-bit atomic "ticket" holds (generation:32 | next task:16 | task count:16).
// The submitter publishes a new generation; a thread claims a task with a compare-and-swap that
// succeeds only while that generation is current, so a thread that wakes late can never run a
// task of a later generation with the wrong function. The submitter runs tasks too and returns
// when every task of its generation has finished. Idle workers spin briefly (the encoder issues
// parallel steps back to back), then sleep on a condition variable.
#include "ckernels.h"
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <unistd.h>
#if defined(__x86_64__)
#include <immintrin.h>
#define CPU_RELAX() _mm_pause()
#else
#define CPU_RELAX() ((void)0)
#endif

#define MAX_THREADS 64
#define SPIN_ROUNDS 20000  // ~100-200 µs of pause instructions before a worker sleeps

static struct {
    pthread_mutex_t submit;        // held by the thread running a parallel step
    pthread_mutex_t start;         // held while worker threads are started (never during a step)
    pthread_mutex_t sleep_lock;
    pthread_cond_t wake;
    _Atomic uint64_t ticket;
    _Atomic long done;
    _Atomic int sleepers;
    _Atomic int threads;           // the process setting: threads taking part, the submitter included
    _Atomic int step_threads;      // threads taking part in the current step
    _Atomic int workers;           // worker threads started so far
    vani_task_fn fn;
    void *ctx;
} pool = {
    .submit = PTHREAD_MUTEX_INITIALIZER,
    .start = PTHREAD_MUTEX_INITIALIZER,
    .sleep_lock = PTHREAD_MUTEX_INITIALIZER,
    .wake = PTHREAD_COND_INITIALIZER,
    .threads = 1,
};

static _Thread_local int in_task = 0;
static _Thread_local int local_threads = 0;  // this thread's override (0: the process setting)

static inline uint32_t gen_of(uint64_t t) { return (uint32_t)(t >> 32); }
static inline long next_of(uint64_t t) { return (long)((t >> 16) & 0xFFFF); }
static inline long count_of(uint64_t t) { return (long)(t & 0xFFFF); }

// Claims and runs tasks of generation `gen` until none is left.
static void drain(uint32_t gen) {
    uint64_t t = atomic_load(&pool.ticket);
    for (;;) {
        if (gen_of(t) != gen || next_of(t) >= count_of(t)) return;
        uint64_t claimed = t + (1ull << 16);
        if (!atomic_compare_exchange_weak(&pool.ticket, &t, claimed)) continue;
        // The generation cannot end before this task is done, so fn and ctx are this generation's.
        vani_task_fn fn = pool.fn;
        void *ctx = pool.ctx;
        in_task = 1;
        fn(ctx, next_of(t));
        in_task = 0;
        atomic_fetch_add(&pool.done, 1);
        t = atomic_load(&pool.ticket);
    }
}

static void *worker_main(void *arg) {
    int id = (int)(intptr_t)arg;  // 1-based; the submitter is thread 0
    uint32_t seen = gen_of(atomic_load(&pool.ticket));
    int spins = 0;
    for (;;) {
        uint64_t t;
        while (gen_of(t = atomic_load(&pool.ticket)) == seen) {
            if (++spins < SPIN_ROUNDS) { CPU_RELAX(); continue; }
            pthread_mutex_lock(&pool.sleep_lock);
            atomic_fetch_add(&pool.sleepers, 1);
            while (gen_of(atomic_load(&pool.ticket)) == seen) pthread_cond_wait(&pool.wake, &pool.sleep_lock);
            atomic_fetch_sub(&pool.sleepers, 1);
            pthread_mutex_unlock(&pool.sleep_lock);
            spins = 0;
        }
        seen = gen_of(t);
        if (id < atomic_load(&pool.step_threads)) {
            drain(seen);
            spins = 0;             // spin a while: the next step usually follows at once
        } else {
            spins = SPIN_ROUNDS;   // not part of this step: back to sleep without spinning
        }
    }
    return 0;
}

// Starts workers until `threads` can take part; returns how many can. Called with `start` held
// (not `submit`, so that a task may change the setting without waiting for its own step).
static int start_workers(int threads) {
    if (threads < 1) threads = 1;
    if (threads > MAX_THREADS) threads = MAX_THREADS;
    while (pool.workers < threads - 1) {
        pthread_t tid;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        if (pthread_create(&tid, &attr, worker_main, (void *)(intptr_t)(pool.workers + 1)) != 0) {
            pthread_attr_destroy(&attr);
            break;  // run with the threads that did start
        }
        pthread_attr_destroy(&attr);
        pool.workers += 1;
    }
    return pool.workers + 1 < threads ? pool.workers + 1 : threads;
}

void vani_pool_set_threads(int threads) {
    pthread_mutex_lock(&pool.start);
    atomic_store(&pool.threads, start_workers(threads));
    pthread_mutex_unlock(&pool.start);
}

int vani_pool_set_local_threads(int threads) {
    int previous = local_threads;
    if (threads <= 0) {
        local_threads = 0;
    } else {
        pthread_mutex_lock(&pool.start);
        local_threads = start_workers(threads);
        pthread_mutex_unlock(&pool.start);
    }
    return previous;
}

int vani_pool_threads(void) { return local_threads > 0 ? local_threads : atomic_load(&pool.threads); }

// OpenBLAS is part of every program that links this library (TensorModule's CBLAS target).
extern void openblas_set_num_threads(int threads);

// At load, before any product runs: OpenBLAS single-threaded for the whole process (the pool
// shares the work), and the pool's default is every online core (workers start at the first
// shared step). Results then never depend on when or whether a thread count is set.
__attribute__((constructor)) static void pool_defaults(void) {
    openblas_set_num_threads(1);
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    atomic_store(&pool.threads, cores < 1 ? 1 : (cores > MAX_THREADS ? MAX_THREADS : (int)cores));
}

int vani_pool_in_task(void) { return in_task; }

void vani_pool_run(long tasks, vani_task_fn fn, void *ctx) {
    if (tasks <= 0) return;
    // Serial when there is nothing to share, when called from inside a task, when another
    // thread is using the pool (a second request in a server), or past the ticket's 16 bits.
    int threads = vani_pool_threads();
    if (tasks == 1 || in_task || threads <= 1 || tasks > 0xFFFF || pthread_mutex_trylock(&pool.submit) != 0) {
        // Serial, but still "in a task": steps started by fn run serially too, as in the pool.
        int outer = in_task;
        in_task = 1;
        for (long i = 0; i < tasks; i++) fn(ctx, i);
        in_task = outer;
        return;
    }
    if (pool.workers < threads - 1) {  // the default setting starts its workers here, once
        pthread_mutex_lock(&pool.start);
        int available = start_workers(threads);
        pthread_mutex_unlock(&pool.start);
        if (available < threads) threads = available;
    }
    atomic_store(&pool.step_threads, threads);
    pool.fn = fn;
    pool.ctx = ctx;
    atomic_store(&pool.done, 0);
    uint32_t gen = gen_of(atomic_load(&pool.ticket)) + 1;
    atomic_store(&pool.ticket, ((uint64_t)gen << 32) | (uint64_t)tasks);
    if (atomic_load(&pool.sleepers) > 0) {
        pthread_mutex_lock(&pool.sleep_lock);
        pthread_cond_broadcast(&pool.wake);
        pthread_mutex_unlock(&pool.sleep_lock);
    }
    drain(gen);
    // Wait for tasks other threads claimed; yield now and then in case one of them was preempted.
    for (long spins = 1; atomic_load(&pool.done) < tasks; spins++) {
        if (spins % 4096 == 0) sched_yield(); else CPU_RELAX();
    }
    pthread_mutex_unlock(&pool.submit);
}
