"""The checkpoint pattern of docs/fault-tolerance.md: state survives actor restarts."""

import os

import raggio as ray


@ray.remote(max_restarts=-1, max_task_retries=-1)
class Counter:
    def __init__(self, path):
        self.path = path
        self.count = int(open(path).read()) if os.path.exists(path) else 0
        self.restarted = ray.get_runtime_context().was_current_actor_reconstructed

    def increment(self):
        self.count += 1
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            f.write(str(self.count))
        os.replace(tmp, self.path)
        return self.count

    def crash(self):
        os._exit(1)

    def state(self):
        return self.count, self.restarted, os.getpid()


def test_state_saved_by_the_actor_survives_its_crashes(ray_start_regular, tmp_path):
    counter = Counter.remote(str(tmp_path / "count"))
    assert ray.get([counter.increment.remote() for _ in range(5)]) == [1, 2, 3, 4, 5]
    _, restarted, first_pid = ray.get(counter.state.remote())
    assert not restarted
    for crash in range(3):
        counter.crash.options(max_task_retries=0).remote()  # not retried: it would crash again
        # Calls made after the crash wait for the restart, and see the saved state.
        assert ray.get(counter.increment.remote(), timeout=60) == 6 + crash
    count, restarted, pid = ray.get(counter.state.remote())
    assert (count, restarted) == (8, True) and pid != first_pid
