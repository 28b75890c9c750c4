// The lock every module uses: `import Locks` instead of `import Synchronization`.
//
// Normally this is the standard library's `Synchronization.Mutex` (re-exported with `Atomic`): nothing else.
//
// ThreadSanitizer cannot see `Synchronization.Mutex` on Linux: the standard library is not instrumented and its Mutex
// is a futex word driven by atomics inside it, so TSan reports every access that Mutex orders as a race (a two-thread
// counter under `withLock` is reported; docs/RELIABILITY.md, Sanitizers). TSan does see pthread mutexes, whose calls it
// intercepts. So `scripts/sanitize.sh thread` builds with `-D LIVESWARM_TSAN`, and under it `Mutex` is this module's
// own, on a pthread mutex, with the same `init` and `withLock`: the code TSan checks is the code that ships, with a
// lock TSan understands. Under that flag a file must import Locks and not Synchronization as well, or the two Mutexes
// are ambiguous; the re-export gives it `Atomic` all the same.
@_exported import Synchronization

#if LIVESWARM_TSAN
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A pthread mutex around a value, for ThreadSanitizer builds only (see the top of this file). The lock and the value
/// live in memory of their own, not in a class: TSan reports accesses to a class's stored properties against the
/// object as a whole, so reading the lock's address from the object before locking looked like a race with the value's
/// writes under the lock.
public struct Mutex<Value: ~Copyable>: ~Copyable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let value: UnsafeMutablePointer<Value>

    public init(_ initialValue: consuming sending Value) {
        mutex = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
        value = .allocate(capacity: 1)
        value.initialize(to: initialValue)
    }

    deinit {
        value.deinitialize(count: 1)
        value.deallocate()
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    public borrowing func withLock<Result: ~Copyable, E: Error>(
        _ body: (inout sending Value) throws(E) -> sending Result
    ) throws(E) -> sending Result {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(&value.pointee)
    }
}

extension Mutex: @unchecked Sendable where Value: ~Copyable {}
#endif
