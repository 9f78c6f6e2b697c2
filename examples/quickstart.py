"""raggio in one minute: tasks, an actor and a large numpy array on a local cluster."""

import time

import numpy as np

import raggio as ray

start = time.perf_counter()
ray.init()


@ray.remote
def square(x):
    return x * x


print("first result:", ray.get(square.remote(4)),
      f"({time.perf_counter() - start:.2f} s after init() began)")
print("squares:", ray.get([square.remote(i) for i in range(10)]))


@ray.remote
class Counter:
    def __init__(self):
        self.count = 0

    def add(self, n):
        self.count += n
        return self.count


counter = Counter.remote()
print("counter:", ray.get([counter.add.remote(i) for i in range(5)]))

array = np.arange(100 * 1024 * 1024 // 8, dtype=np.int64)  # 100 MiB
t = time.perf_counter()
ref = ray.put(array)
back = ray.get(ref)
print(f"100 MiB array through the object store in {time.perf_counter() - t:.3f} s; "
      f"equal={np.array_equal(array, back)}, read-only={not back.flags.writeable}")


@ray.remote
def total(a):
    return int(a.sum())


print("sum computed in a task:", ray.get(total.remote(ref)))
ray.shutdown()
