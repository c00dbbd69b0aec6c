// A fixed set of worker threads that run the blocking work (JSON and base64 decoding, BLAS),
// so that neither NIO's event loops nor Swift's cooperative pool ever wait on a forward pass.
//
// Admission happens before a request body is read: at most `workers + queueCapacity` requests
// hold a body at once, so memory stays bounded by that many bodies no matter the load.

import Foundation
import Logging

/// Bounded worker pool with admission control and per-job deadlines.
final class InferencePool: @unchecked Sendable {
    /// Why the pool did not run a job (mapped to the client's error in one place, APIError.swift).
    enum Rejection: Error, Sendable, Equatable {
        /// Every place is taken; a place is likely free in `retryAfter` seconds.
        case queueFull(retryAfter: Int)
        /// The job did not finish within `seconds` (queueing included).
        case deadlineExceeded(seconds: Double)
        /// The waiting request was cancelled (its client went away).
        case cancelled
        /// A ticket was submitted twice (a bug in the caller).
        case ticketReused
    }

    /// A place in the pool, taken before the body is read and held until the work finishes
    /// (or, if it never starts, until the handler lets go of it).
    final class Ticket: @unchecked Sendable {
        fileprivate weak var pool: InferencePool?
        private let lock = NSLock()
        private var released = false
        private var submitted = false
        fileprivate init(pool: InferencePool) { self.pool = pool }

        /// Gives the place back unless a job owns it now. Idempotent.
        func releaseIfUnsubmitted() {
            lock.lock()
            let release = !submitted && !released
            if release { released = true }
            lock.unlock()
            if release { pool?.finished(seconds: nil) }
        }

        fileprivate func markSubmitted() -> Bool {
            lock.lock(); defer { lock.unlock() }
            guard !released, !submitted else { return false }
            submitted = true
            return true
        }

        fileprivate func releaseAfterWork(seconds: Double?) {
            lock.lock()
            let release = !released
            released = true
            lock.unlock()
            if release { pool?.finished(seconds: seconds) }
        }
    }

    /// Tells a running job whether anyone still waits for its answer (a batch stops early).
    struct Deadline: Sendable {
        fileprivate let box: AnyCompletion
        var isExpired: Bool { box.isCompleted }
    }

    let workers: Int
    let queueCapacity: Int
    private let condition = NSCondition()
    private var jobs: [() -> Void] = []
    private var jobHead = 0
    private var admitted = 0
    private var runningJobs = 0
    private var stopping = false
    // Exponential moving average of a job's seconds, for Retry-After.
    private var meanJobSeconds = 1.0

    /// `workers` jobs counted as running (admission and Retry-After); `threads` worker threads
    /// (at least `workers`; more when jobs mostly wait, as in the batch scheduler).
    init(workers: Int, queueCapacity: Int, threads: Int = 0) {
        self.workers = max(1, workers)
        self.queueCapacity = max(0, queueCapacity)
        for index in 0..<max(self.workers, threads) {
            let thread = Thread { [self] in self.workLoop() }
            thread.name = "vani-worker-\(index)"
            thread.stackSize = 8 << 20
            thread.start()
        }
    }

    /// Requests admitted and not yet finished (running or waiting).
    var load: Int {
        condition.lock(); defer { condition.unlock() }
        return admitted
    }

    /// Jobs running on a worker now (the rest of `load` is waiting for a worker).
    var running: Int {
        condition.lock(); defer { condition.unlock() }
        return runningJobs
    }

    /// Takes a place or refuses at once: refused when `workers + queueCapacity` places are taken,
    /// or when the request would wait so long (the queue ahead of it divided among the workers,
    /// at the mean job time) that it could not finish within `deadline` seconds.
    /// - Throws: `.queueFull` with the seconds until a place is likely free.
    func admit(deadline: Double = .infinity) throws(Rejection) -> Ticket {
        condition.lock()
        let waitingAhead = admitted - workers + 1
        let estimatedWait = waitingAhead > 0 ? Double(waitingAhead) / Double(workers) * meanJobSeconds : 0
        guard admitted < workers + queueCapacity, estimatedWait + meanJobSeconds <= deadline || admitted < workers else {
            let retry = retryAfterLocked()
            condition.unlock()
            throw .queueFull(retryAfter: retry)
        }
        admitted += 1
        condition.unlock()
        return Ticket(pool: self)
    }

    /// Runs `work` on a worker thread and returns its result, or throws `.deadlineExceeded`
    /// after `timeout` seconds (the work, if started, finishes in the background and its
    /// result is dropped; if not started, it never starts), or `.cancelled` when the waiting
    /// task is cancelled. Consumes `ticket`.
    func run<T: Sendable>(_ ticket: Ticket, timeout: Double,
                          _ work: @escaping @Sendable (Deadline) -> T) async throws(Rejection) -> T {
        guard ticket.markSubmitted() else { throw .ticketReused }
        let completion = Completion<T>()
        let result: Result<T, Rejection> = await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Result<T, Rejection>, Never>) in
                completion.install(continuation)
                // A Dispatch timer, not a Task: the deadline must fire even while Swift's
                // cooperative threads are all busy.
                let timer = DispatchWorkItem { completion.complete(.failure(.deadlineExceeded(seconds: timeout))) }
                DispatchQueue.global().asyncAfter(deadline: .now() + timeout, execute: timer)
                completion.onComplete { timer.cancel() }
                enqueue {
                    guard !completion.isCompleted else {
                        ticket.releaseAfterWork(seconds: nil)
                        return
                    }
                    let started = ContinuousClock.now
                    self.changeRunning(by: 1)
                    let outcome = work(Deadline(box: completion))
                    self.changeRunning(by: -1)
                    // Release before answering, so a client that sends its next request as soon
                    // as it has this answer finds the place free.
                    ticket.releaseAfterWork(seconds: (ContinuousClock.now - started).seconds)
                    completion.complete(.success(outcome))
                }
            }
        } onCancel: {
            completion.complete(.failure(.cancelled))
        }
        return try result.get()
    }

    // MARK: - Workers

    private func enqueue(_ job: @escaping () -> Void) {
        condition.lock()
        jobs.append(job)
        condition.signal()
        condition.unlock()
    }

    /// Lets the workers exit once the jobs already queued have run.
    func shutdown() {
        condition.lock()
        stopping = true
        condition.broadcast()
        condition.unlock()
    }

    private func workLoop() {
        while true {
            condition.lock()
            while jobHead == jobs.count && !stopping { condition.wait() }
            if jobHead == jobs.count { condition.unlock(); return }
            let job = jobs[jobHead]
            jobHead += 1
            if jobHead == jobs.count { jobs.removeAll(keepingCapacity: true); jobHead = 0 }
            condition.unlock()
            job()
        }
    }

    private func changeRunning(by delta: Int) {
        condition.lock()
        runningJobs += delta
        condition.unlock()
    }

    fileprivate func finished(seconds: Double?) {
        condition.lock()
        admitted -= 1
        if let seconds { meanJobSeconds = 0.8 * meanJobSeconds + 0.2 * seconds }
        condition.unlock()
    }

    /// Seconds until a place is likely free: the queue ahead divided among the workers.
    private func retryAfterLocked() -> Int {
        let waves = Double(admitted) / Double(workers)
        return max(1, Int((waves * meanJobSeconds).rounded(.up)))
    }
}

/// Completion state shared by a job, its timer and its waiting handler.
class AnyCompletion: @unchecked Sendable {
    fileprivate let lock = NSLock()
    fileprivate var done = false
    var isCompleted: Bool {
        lock.lock(); defer { lock.unlock() }
        return done
    }
}

/// Resumes the handler exactly once, with whichever comes first: result, timeout, cancellation.
final class Completion<T: Sendable>: AnyCompletion, @unchecked Sendable {
    private var continuation: CheckedContinuation<Result<T, InferencePool.Rejection>, Never>?
    private var pending: Result<T, InferencePool.Rejection>?
    private var callbacks: [() -> Void] = []

    func install(_ continuation: CheckedContinuation<Result<T, InferencePool.Rejection>, Never>) {
        lock.lock()
        if let pending {
            lock.unlock()
            continuation.resume(returning: pending)
            return
        }
        self.continuation = continuation
        lock.unlock()
    }

    func onComplete(_ callback: @escaping () -> Void) {
        lock.lock()
        if done { lock.unlock(); callback(); return }
        callbacks.append(callback)
        lock.unlock()
    }

    func complete(_ result: Result<T, InferencePool.Rejection>) {
        lock.lock()
        guard !done else { lock.unlock(); return }
        done = true
        let continuation = self.continuation
        self.continuation = nil
        if continuation == nil { pending = result }
        let callbacks = self.callbacks
        self.callbacks = []
        lock.unlock()
        continuation?.resume(returning: result)
        callbacks.forEach { $0() }
    }
}
