"""Run an engine in a child process and hand its batches to the caller through shared memory.

Why a process: the engine is numpy code that holds the GIL between many mid-sized operations, and
the ILP client holds it too while it serialises book arrays, so a generation *thread* mostly takes
turns with the sender instead of running beside it. A child process generates on another core.

How batches travel: each batch group is pickled with protocol 5, which leaves every numpy buffer
out of band. The child copies those buffers into a reusable shared-memory slot and sends only the
small pickle and the buffer layout; the parent unpickles with views into the slot, so the book
values are copied once (into the slot) and never again. Every array of a group is a view of one
per-group handle on its slot (numpy collapses view chains onto it), so a weak reference to that
handle says whether anything in the parent still uses the group: a slot goes back to the child
only when it is dead, and a sink that kept a batch can never see it overwritten.

When shared memory is too small (a container's default 64 MB ``/dev/shm``) a group travels inside
the pickle instead: slower, never wrong, and the parent says so once.
"""

from __future__ import annotations

import gc
import io
import logging
import multiprocessing as mp
import os
import pickle
import queue
import time
import weakref
from collections.abc import Sequence
from multiprocessing import shared_memory
from typing import Any

import numpy as np

from mkt_pipeline.core.tables import TableSchema

log = logging.getLogger(__name__)

END_OF_CHUNK = "end-of-chunk"  # marker after each chunk, from either producer
_ALIGN = 64
_SHM_DIR = "/dev/shm"
_SHM_HEADROOM = 64 << 20  # leave this much of /dev/shm to everything else on the machine
_POLL_S = 0.1


class GenerationFailed(RuntimeError):
    """The child's exception could not be sent as itself; its type and text are kept."""


def _aligned(n: int) -> int:
    return (n + _ALIGN - 1) // _ALIGN * _ALIGN


def _aligned_mb(n: int) -> int:
    return max(1, -(-n // (1 << 20))) << 20


def _shm_room() -> int | None:
    """Bytes that can still be placed in POSIX shared memory, or None when it cannot be measured."""
    try:
        st = os.statvfs(_SHM_DIR)
    except OSError:
        return None
    return st.f_bavail * st.f_frsize - _SHM_HEADROOM


class _SchemaPickler(pickle.Pickler):
    """Schemas travel by base name, so the parent's batches carry its own schema objects."""

    def persistent_id(self, obj: Any):
        return ("schema", obj.base_name) if isinstance(obj, TableSchema) else None


class _SchemaUnpickler(pickle.Unpickler):
    def __init__(self, data, schemas: dict[str, TableSchema], buffers):
        super().__init__(io.BytesIO(data), buffers=buffers)
        self._schemas = schemas

    def persistent_load(self, pid):
        return self._schemas[pid[1]]


def _dumps(obj: Any, buffer_callback=None) -> bytes:
    out = io.BytesIO()
    _SchemaPickler(out, protocol=5, buffer_callback=buffer_callback).dump(obj)
    return out.getvalue()


# ---------------------------------------------------------------------------------------------
# child


class _ChildSlots:
    """The child's shared-memory slots: reused once the parent gives them back, grown when too small."""

    def __init__(self, free, out, stop, in_flight: int):
        self.free, self.out, self.stop = free, out, stop
        self.in_flight = in_flight  # slots queued, being read by the parent, and being filled here
        self.slots: dict[str, shared_memory.SharedMemory] = {}
        self.idle: list[str] = []
        self.announced: set[str] = set()  # names the parent knows (it unlinks those)
        self.largest = 0

    def _collect(self, block: bool) -> None:
        try:
            while True:
                verdict, name = self.free.get(timeout=_POLL_S) if block else self.free.get_nowait()
                block = False
                if verdict == "free":
                    self.idle.append(name)
                else:  # "kept": the parent still uses it and will unlink it itself
                    self.slots.pop(name).close()
        except queue.Empty:
            pass

    def take(self, need: int):
        """A slot of at least ``need`` bytes; None when shared memory lacks room; False when stopped."""
        self._collect(block=False)
        while True:
            for name in self.idle:
                if self.slots[name].size >= need:
                    self.idle.remove(name)
                    return self.slots[name]
            if len(self.slots) - len(self.idle) < self.in_flight:
                retired, self.idle = self.idle, []
                for name in retired:
                    self.slots.pop(name).close()
                if retired and not _put(self.out, ("retired", retired), self.stop):
                    return False
                room = _shm_room()
                if room is not None and need > room:
                    return None
                # headroom, so groups that vary in size settle on a few slots instead of fresh ones
                # (a fresh mapping costs a page fault per 4 KB on both sides)
                self.largest = max(self.largest, need + need // 4)
                try:
                    slot = shared_memory.SharedMemory(create=True, size=_aligned_mb(self.largest))
                except OSError:
                    return None
                self.slots[slot.name] = slot
                return slot
            if self.stop.is_set():
                return False
            self._collect(block=True)

    def close(self) -> None:
        for name, slot in self.slots.items():
            slot.close()
            if name not in self.announced:
                slot.unlink()


def _child(out, free, stop) -> None:
    """Take the job from ``free``, then generate every chunk, putting ``("group", slot, pickle,
    layout)``, ``("inband", pickle)`` and ``("end",)`` after each chunk on ``out``, or ``("failed", exc)``."""
    from mkt_pipeline.core.timeline import Window

    _, engine_bytes, chunks, depth = free.get()
    slots = _ChildSlots(free, out, stop, in_flight=depth + 2)
    try:
        engine = pickle.loads(engine_bytes)
        for start_us, end_us in chunks:
            for group in engine.generate(Window(start_us, end_us)):
                buffers: list[pickle.PickleBuffer] = []
                meta = _dumps(group, buffers.append)
                raws = [b.raw() for b in buffers]
                slot = slots.take(sum(_aligned(r.nbytes) for r in raws))
                if slot is False:
                    return
                if slot is None:  # no room in shared memory: the whole group goes in band
                    item = ("inband", _dumps(group))
                else:
                    layout, offset = [], 0
                    for raw in raws:
                        slot.buf[offset : offset + raw.nbytes] = raw
                        layout.append((offset, raw.nbytes))
                        offset += _aligned(raw.nbytes)
                    item = ("group", slot.name, meta, layout)
                del raws, buffers, group
                if not _put(out, item, stop):
                    return
                if slot:
                    slots.announced.add(slot.name)
            if not _put(out, ("end",), stop):
                return
    except BaseException as exc:  # re-raised by the parent
        try:
            payload = pickle.dumps(exc)
            pickle.loads(payload)
        except Exception:
            payload = pickle.dumps(GenerationFailed(f"{type(exc).__name__}: {exc}"))
        _put(out, ("failed", payload), stop)
    finally:
        slots.close()


def _put(out, item, stop) -> bool:
    while not stop.is_set():
        try:
            out.put(item, timeout=_POLL_S)
            return True
        except queue.Full:
            continue
    return False


# ---------------------------------------------------------------------------------------------
# parent


class ProcessProducer:
    """Same contract as ``ingest.ThreadProducer``: ``start``, ``next``, ``stop`` (an event), ``close``.

    ``next()`` returns the next batch group, whose arrays are views into shared memory that stay
    valid while anything references them, or ``END_OF_CHUNK`` after each chunk.
    """

    def __init__(self, engine, chunks: Sequence, depth: int = 1):
        ctx = mp.get_context("spawn")  # no inherited threads, locks or connections
        self._schemas = {s.base_name: s for s in engine.schemas}
        self._out = ctx.Queue(maxsize=max(1, depth))
        self._free = ctx.Queue()
        self.stop = ctx.Event()
        # the job goes through the queue, not the process arguments: a child that dies while starting
        # would leave a multi-megabyte argument write blocked forever
        self._free.put(("job", pickle.dumps(engine), [(c.start_us, c.end_us) for c in chunks], max(1, depth)))
        self._process = ctx.Process(
            target=_child, args=(self._out, self._free, self.stop), name="mkt-generate", daemon=True
        )
        self._slots: dict[str, shared_memory.SharedMemory] = {}
        self._current: tuple[str, weakref.ref] | None = None  # the group handed out last
        self._kept: list[tuple[str, weakref.ref]] = []  # slots a sink still holds arrays of
        self._warned_inband = False

    def start(self) -> None:
        self._process.start()

    def next(self):
        self._give_back()
        while True:
            item = self._get()
            kind = item[0]
            if kind == "end":
                return END_OF_CHUNK
            if kind == "failed":
                raise pickle.loads(item[1])
            if kind == "retired":
                for name in item[1]:
                    self._unlink(name)
            elif kind == "inband":
                self._warn_inband()
                return _SchemaUnpickler(item[1], self._schemas, None).load()
            else:
                return self._load(*item[1:])

    def _get(self):
        while True:
            try:
                return self._out.get(timeout=1.0)
            except queue.Empty:
                if not self._process.is_alive():
                    raise GenerationFailed(
                        f"the generation process exited with status {self._process.exitcode}"
                    ) from None

    def _load(self, name: str, meta: bytes, layout: list[tuple[int, int]]):
        slot = self._slots.get(name)
        if slot is None:
            slot = self._slots[name] = shared_memory.SharedMemory(name=name)
        handle = np.frombuffer(slot.buf, dtype=np.uint8)  # every array of this group ends up based on it
        group = _SchemaUnpickler(meta, self._schemas, [handle[offset : offset + n] for offset, n in layout]).load()
        self._current = (name, weakref.ref(handle))
        return group

    def _give_back(self) -> None:
        """Hand the previous group's slot back, unless an array in this process still points into it.

        A slot still in use is marked "kept": the child forgets it and makes another, and this side
        unlinks it once its arrays are gone, so a sink that holds batches costs memory, never a stall.
        """
        if self._current is not None:
            name, handle = self._current
            self._current = None
            if handle() is not None:
                gc.collect()  # arrays caught in reference cycles
            if handle() is None:
                self._free.put(("free", name))
            else:
                self._free.put(("kept", name))
                self._kept.append((name, handle))
        still = []
        for name, handle in self._kept:
            if handle() is None:
                self._unlink(name)
            else:
                still.append((name, handle))
        self._kept = still

    def _warn_inband(self) -> None:
        if not self._warned_inband:
            self._warned_inband = True
            log.warning(
                "shared memory (%s) has no room for a batch group: batches now travel through a pipe, which is "
                "slower; give the container more shared memory (docker --shm-size) to avoid it",
                _SHM_DIR,
            )

    def _unlink(self, name: str) -> None:
        slot = self._slots.pop(name, None)
        if slot is None:
            try:
                slot = shared_memory.SharedMemory(name=name)
            except FileNotFoundError:
                return
        try:
            slot.close()
        except BufferError:
            _leave_mapping(slot)
        slot.unlink()

    def close(self, timeout: float = 10.0) -> None:
        """Stop the child and remove every slot (call once, also after a failure)."""
        self.stop.set()
        deadline = time.monotonic() + timeout
        # drain, so a child blocked on a full queue sees the stop flag, and learn every slot it made
        while self._process.is_alive() and time.monotonic() < deadline:
            try:
                item = self._out.get(timeout=_POLL_S)
            except queue.Empty:
                continue
            if item[0] == "group":
                self._slots.setdefault(item[1], None)
            elif item[0] == "retired":
                for name in item[1]:
                    self._unlink(name)
        if self._process.is_alive():
            self._process.terminate()
        self._process.join()
        self._current = None
        self._kept.clear()  # still-used slots lose their names now; their mappings go with the arrays
        for name in list(self._slots):
            self._unlink(name)
        for q in (self._out, self._free):
            q.cancel_join_thread()  # anything still unsent is for a child that is gone
            q.close()


def _leave_mapping(slot: shared_memory.SharedMemory) -> None:
    """An array still points into ``slot``: its mapping is freed with the last such array, so the
    wrapper lets go of it now instead of failing again when it is collected."""
    slot._mmap = None  # noqa: SLF001 -- the stdlib wrapper has no public way to let go of a shared mapping
    if slot._fd >= 0:
        os.close(slot._fd)
        slot._fd = -1
