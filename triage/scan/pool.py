"""A process pool that survives its workers: a worker that crashes, runs out of memory or
overruns its deadline is killed and replaced, and its task is handed back as failed.

``concurrent.futures`` breaks the whole pool when one worker dies; evidence parsers crash
on hostile input (a segfault in libtsk kills the process), so we keep our own small pool.
"""

from __future__ import annotations

import os
import queue
import resource
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from triage.errors import ResultsNotWritten, TriageError
from triage.forking import CTX
from triage.orphans import on_exit_of


def limit_memory(limit_bytes: int) -> None:
    """Cap this process's address space so that a runaway parser fails instead of the host."""
    if limit_bytes > 0:
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        cap = limit_bytes if hard == resource.RLIM_INFINITY else min(limit_bytes, hard)
        resource.setrlimit(resource.RLIMIT_AS, (cap, hard))


def _exit_with_owner(owner: int) -> None:
    """A child whose owner (the process that asked for it: its parent is the fork server) was
    killed exits too, instead of lingering with the image open, and keeping the fork server
    alive, for good."""
    on_exit_of(owner, lambda: os._exit(1))


# In a worker: how many bytes its current task has read, shared with the parent (``tell_read``).
_reading: Any = None


def tell_read(count: int) -> None:
    """In a worker, ``count`` more bytes of its current task read: the parent shows them as
    progress before the task's answer comes (a single file of a hundred gigabytes, a virtual
    machine's disk, takes minutes; the progress stood still until it was done)."""
    if _reading is not None:
        _reading.value += count


def _worker_main(
    index: int,
    initializer: Callable[..., Any],
    initargs: tuple[Any, ...],
    handler: Callable[[Any], Any],
    memory_limit: int,
    tasks: Any,
    results: Any,
    owner: int,
    reading: Any,
    reading_task: Any,
) -> None:
    global _reading
    limit_memory(memory_limit)
    _exit_with_owner(owner)
    _reading = reading
    try:
        initializer(*initargs)
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, which decides
        results.put((index, None, "init", f"{type(exc).__name__}: {exc}"))
        return
    while True:
        item = tasks.get()
        if item is None:
            return
        task_id, payload = item
        reading.value = 0  # then the task it counts for: the parent never adds another's bytes
        reading_task.value = task_id
        try:
            results.put((index, task_id, "ok", handler(payload)))
        except MemoryError:
            results.put((index, task_id, "error", "out of memory (child memory limit)"))
        except BaseException as exc:  # noqa: BLE001 - the task fails, the worker lives on
            results.put(
                (
                    index,
                    task_id,
                    "error",
                    f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=3)}",
                )
            )


@dataclass
class _Slot:
    process: Any
    tasks: Any
    reading: Any  # bytes its worker has read of the task ...
    reading_task: Any  # ... of this id
    task: tuple[int, Any] | None = None
    deadline: float = 0.0


class WorkerInitError(RuntimeError):
    pass


class IsolatedPool:
    def __init__(
        self,
        processes: int,
        initializer: Callable[..., Any],
        initargs: tuple[Any, ...],
        handler: Callable[[Any], Any],
        memory_limit: int,
    ) -> None:
        self._args = (initializer, initargs, handler, memory_limit)
        self._results: Any = CTX.Queue()
        self._slots = [self._start(i) for i in range(max(1, processes))]

    def _start(self, index: int) -> _Slot:
        tasks = CTX.Queue()
        reading, reading_task = CTX.Value("q", 0, lock=False), CTX.Value("q", -1, lock=False)
        process = CTX.Process(
            target=_worker_main,
            args=(index, *self._args, tasks, self._results, os.getpid(), reading, reading_task),
            daemon=True,
        )
        process.start()
        return _Slot(process, tasks, reading, reading_task)

    def reading(self) -> int:
        """Bytes the workers have read of the tasks they are on, as they told (``tell_read``)."""
        return sum(
            int(slot.reading.value)
            for slot in self._slots
            if slot.task is not None and slot.reading_task.value == slot.task[0]
        )

    def _replace(self, index: int) -> None:
        slot = self._slots[index]
        if slot.process.is_alive():
            slot.process.kill()
        slot.process.join(5)
        self._slots[index] = self._start(index)

    def run(
        self,
        tasks: Iterator[tuple[Any, float]],
        on_done: Callable[[Any, Any], None],
        on_failed: Callable[[Any, str], None],
        on_wait: Callable[[], None] | None = None,
    ) -> None:
        """Run ``(payload, timeout)`` tasks; ``on_failed`` may not submit (use a new run).
        ``on_wait`` is called every 0.2 s that no answer comes (a batch of slow files can take
        minutes): an exception from it (a run cancelled, its worker stopping) ends the run.

        A worker that answers gets its next task before the answer is handled, so that it works
        on while the parent takes the answer in (it idled 10-70 ms a batch when handed its next
        task afterwards). A worker has one task at a time: its answer must reach the parent
        before it starts another that might crash it.
        """
        pending: dict[int, Any] = {}
        source = iter(tasks)
        next_id = 0

        def hand_out() -> None:
            nonlocal next_id
            for slot in self._slots:
                if slot.task is None and (task := next(source, None)) is not None:
                    payload, timeout = task
                    slot.task = (next_id, payload)
                    slot.deadline = time.monotonic() + timeout
                    pending[next_id] = payload
                    slot.tasks.put((next_id, payload))
                    next_id += 1

        hand_out()
        while pending:
            try:
                index, task_id, status, value = self._results.get(timeout=0.2)
            except queue.Empty:
                self._check_health(pending, on_failed)
                hand_out()
                if on_wait:
                    on_wait()
                continue
            if status == "init":
                raise WorkerInitError(value)
            slot = self._slots[index]
            if slot.task is None or slot.task[0] != task_id:
                continue  # a late answer from a task already given up on
            payload = pending.pop(task_id)
            slot.task = None
            hand_out()
            if status == "ok":
                on_done(payload, value)
            else:
                on_failed(payload, str(value))

    def _check_health(self, pending: dict[int, Any], on_failed: Callable[[Any, str], None]) -> None:
        now = time.monotonic()
        for index, slot in enumerate(self._slots):
            if slot.task is None:
                if not slot.process.is_alive():
                    self._replace(index)
                continue
            reason = None
            if not slot.process.is_alive():
                reason = f"worker process died (exit code {slot.process.exitcode})"
            elif now > slot.deadline:
                reason = "timed out (wall-clock limit)"
            if reason:
                task_id, payload = slot.task
                pending.pop(task_id, None)
                slot.task = None
                self._replace(index)
                on_failed(payload, reason)

    def close(self) -> None:
        """Stop the workers: an idle one is asked to end (and killed if it has not 2 s on); one
        still on a task (the run was given up on: an error, Ctrl-C, SIGTERM) is killed at once,
        as nobody waits for its answer (waiting for the batches under way held a stopped scan
        up for 2 s a worker)."""
        for slot in self._slots:
            if slot.process.is_alive():
                if slot.task is None:
                    slot.tasks.put(None)
                else:
                    slot.process.kill()
        for slot in self._slots:
            slot.process.join(2)
            if slot.process.is_alive():
                slot.process.kill()
                slot.process.join(2)
            slot.task = None


class ChildFailed(RuntimeError):
    """A child process crashed, overran its limits or raised; the message says which."""


def _child_entry(
    fn: Callable[..., Any], args: tuple[Any, ...], results: Any, counter: Any, memory_limit: int, owner: int
) -> None:
    limit_memory(memory_limit)
    _exit_with_owner(owner)
    try:
        results.put(("ok", fn(*args, counter)))
    except ResultsNotWritten as exc:
        results.put(("not-written", (exc.errno, exc.strerror, exc.filename)))
    except TriageError as exc:
        results.put(("error", str(exc)))
    except MemoryError:
        results.put(("error", "out of memory (child memory limit)"))
    except BaseException as exc:  # noqa: BLE001 - reported to the parent
        results.put(("error", f"{type(exc).__name__}: {exc}"))


class Child:
    """``fn(*args, counter)`` running in a child process with a wall-clock and a memory limit.

    ``counter`` is a shared integer the child advances so the parent can show progress.
    """

    def __init__(
        self, fn: Callable[..., Any], args: tuple[Any, ...], timeout: float, memory_limit: int
    ) -> None:
        self._results: Any = CTX.Queue()
        self.counter = CTX.Value("q", 0, lock=False)
        self._process = CTX.Process(
            target=_child_entry,
            args=(fn, args, self._results, self.counter, memory_limit, os.getpid()),
            daemon=True,
        )
        self._process.start()
        self._deadline = time.monotonic() + timeout
        self._timeout = timeout
        self._outcome: tuple[str, Any] | None = None

    def poll(self, wait: float = 0.0) -> bool:
        """True once the child has finished (answered, crashed or overrun its time)."""
        if self._outcome is not None:
            return True
        try:
            self._outcome = self._results.get(timeout=wait) if wait else self._results.get_nowait()
        except queue.Empty:
            if not self._process.is_alive():
                try:  # the child may have answered just before exiting
                    self._outcome = self._results.get(timeout=1.0)
                except queue.Empty:
                    self._outcome = ("error", f"process died (exit code {self._process.exitcode})")
            elif time.monotonic() > self._deadline:
                self._outcome = ("error", f"timed out after {self._timeout:.0f} s (wall-clock limit)")
            else:
                return False
        self.close()
        return True

    def result(self, on_progress: Callable[[int], None] | None = None) -> Any:
        """Wait for the answer; ``ChildFailed`` if the child crashed, overran or raised (an
        ``OSError`` if it could not write a result)."""
        while not self.poll(0.2):
            if on_progress:
                on_progress(int(self.counter.value))
        if on_progress:
            on_progress(int(self.counter.value))
        assert self._outcome is not None
        status, value = self._outcome
        if status == "not-written":
            raise OSError(*value)
        if status == "error":
            raise ChildFailed(str(value))
        return value

    def close(self) -> None:
        if self._process.is_alive():
            self._process.kill()
        self._process.join(5)


def run_child(
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    timeout: float,
    memory_limit: int,
    on_progress: Callable[[int], None] | None = None,
) -> Any:
    """Run ``fn(*args, counter)`` in a child with limits and wait for its answer."""
    child = Child(fn, args, timeout, memory_limit)
    try:
        return child.result(on_progress)
    finally:
        child.close()
