"""A first raggio program: tasks, an actor, and a 100 MB array through the object store.

Run it with ``python examples/quickstart.py``. It is plain Ray code: swap the
import for ``import ray`` and it runs on Ray unchanged.
"""

import time

import numpy as np

import raggio as ray


@ray.remote
def square(x):
    return x * x


@ray.remote
def total(values):
    return sum(values)


@ray.remote
def array_sum(a):
    return float(a.sum())


@ray.remote
class Counter:
    def __init__(self):
        self.count = 0

    def incr(self, by=1):
        self.count += by
        return self.count


def timed(label, fn):
    start = time.perf_counter()
    result = fn()
    print(f"{label:<42} {(time.perf_counter() - start) * 1000:8.1f} ms")
    return result


def main():
    timed("init()", ray.init)
    print("cluster resources:", {k: v for k, v in ray.cluster_resources().items()
                                 if k in ("CPU", "GPU")})

    squares = timed("10 tasks, submitted and fetched",
                    lambda: ray.get([square.remote(i) for i in range(10)]))
    print("squares:", squares)
    # A ref passed as an argument is resolved before the task runs.
    print("sum of squares:", ray.get(total.remote(ray.put(squares))))

    counter = Counter.remote()
    counts = timed("an actor: creation and 5 calls",
                   lambda: ray.get([counter.incr.remote() for _ in range(5)]))
    print("counter after each call:", counts)

    array = np.random.default_rng(0).random(100 * 1024**2 // 8)  # 100 MB of float64
    ref = timed("put() of a 100 MB numpy array", lambda: ray.put(array))
    back = timed("get() of it (zero-copy, read-only)", lambda: ray.get(ref))
    print("equal:", np.array_equal(array, back), "| writeable:", back.flags.writeable)
    # A task reads the same store object by ref, without copying it.
    print("sum in a task:", timed("a task summing the array it got by ref",
                                  lambda: ray.get(array_sum.remote(ref))))

    timed("shutdown()", ray.shutdown)


if __name__ == "__main__":
    main()
