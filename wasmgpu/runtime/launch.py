"""Running a call in every instance of a store: launches until no instance runs, the host calls the
instances wait on between launches, and what each instance's call returned."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ..compiler.isa import slot_count, width
from ..compiler.vm_abi import (
    BOX_DECLINED,
    GROW_MEMORY,
    GROW_TABLE,
    MAIL_ARGS,
    MAIL_KEEP_TRAP,
    MH_ARGS,
    MH_FP,
    MH_FUNC,
    NO_HOST,
    P_FUEL_SLICE,
    P_MAILBOX,
    PAGE,
    S_END_NS,
    S_HOST_FP,
    S_HOST_FUNC,
    S_PC,
    S_STATUS,
    S_TRAP,
    STATUS,
    TRAP_CODE,
    TRAP_MESSAGE,
)
from ..errors import ProcExit, ResourceLimitError, Trap, ValueTypeError, WasmGpuError
from ..wasm import opcodes as wo
from . import mailbox
from .backtrace import backtraces
from .code_cache import translator_digest
from .mailbox import MAX_INSTANCES, Mailbox, Release, Serving, mailbox_on, wait_ns, write_ops
from .objects import INTRINSICS, U64_MAX, CallResult, FuncExtern, FuncInst
from .threads import Scheduler
from .tuning import (
    LAYOUT_PROBE_S,
    LAYOUT_SLICE,
    LayoutTrial,
    WindowTuner,
    remember_layout,
    remembered_layout,
    trial_gain,
)

if TYPE_CHECKING:
    from .store import Store


def _split(values: tuple[int, ...], types: tuple[int, ...]) -> tuple[int, ...]:
    """Values as slots: a v128 (an int of 128 bits) as its low and high 64 bits."""
    out: list[int] = []
    for v, t in zip(values, types, strict=True):
        out.extend((v & U64_MAX, v >> 64 & U64_MAX) if t == wo.V128_T else (v,))
    return tuple(out)


def _join(slots: tuple[int, ...], types: tuple[int, ...]) -> tuple[int, ...]:
    out: list[int] = []
    k = 0
    for t in types:
        out.append(slots[k] | slots[k + 1] << 64 if t == wo.V128_T else slots[k])
        k += width(t)
    return tuple(out)


class Launcher:
    """The launch loop of a store, and what its host functions left for the results (traps, exit codes)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.tuner: WindowTuner | None = None  # the last call's, for reports
        self.layout_trial: LayoutTrial | None = None  # the last call's, for reports
        self.host_traps: dict[int, str] = {}  # instance -> message of a trap raised by a host function
        self.exit_codes: dict[int, int] = {}  # instance -> code given to ProcExit
        self.trap_lanes: dict[int, int] = {}  # a process's main lane -> the thread's lane whose trap ended it
        # Run after every launch (processes.py's reap); each says whether it changed a lane's status.
        self.after_launch: list[Callable[[], bool]] = []
        # The statuses read after the launch, while on_slice and the hooks run (one transfer for all), until
        # one of them changes a status (statuses_changed).
        self.status_now: np.ndarray | None = None
        self.status_stale = False
        self.mailbox: Mailbox | None = None
        self.mail_calls = 0  # host calls served through the mailbox, for reports
        self.mail_writes: dict[tuple[int, int], list[tuple[int, bytes]]] = {}  # a mailbox round's, to release

    def call(self, func: FuncExtern, args: list[tuple[int, ...]], fuel: int | None = None,
             on_slice: Callable[[], None] | None = None) -> list[CallResult]:
        """Call `func` in every instance, with one argument tuple per instance."""
        s = self.store
        if len(args) != s.n:
            raise WasmGpuError(f"expected {s.n} argument tuples, got {len(args)}")
        f = s.funcs[func.addr]
        if f.host is not None:
            calls = [(i, tuple(int(v) for v in a)) for i, a in enumerate(args)]
            with self._round_hooks([(i, f.name, a) for i, a in calls]):
                return [self._call_host(f, i, a) for i, a in calls]
        wide = wo.V128_T in f.type.params or wo.V128_T in f.type.results
        if wide:  # a v128 is two slots: its low and high 64 bits
            args = [_split(a, f.type.params) for a in args]
        matrix = np.array(args, dtype=np.uint64).reshape(s.n, f.nparams).T if f.nparams else None
        outcome = self.call_raw(func, matrix, fuel, on_slice)
        if outcome is None:
            return self._device_only(f)
        out = outcome.results()
        if wide:
            for r in out:
                if r.values is not None:
                    r.values = _join(r.values, f.type.results)
        return out

    def call_raw(self, func: FuncExtern, args: np.ndarray | None, fuel: int | None = None,
                 on_slice: Callable[[], None] | None = None) -> Outcome | None:
        """Call `func` in every instance with arguments as slots, uint64 [params, N] (None: no parameters);
        what every instance returned, in arrays. None where no launch serves the call (a host function, an
        intrinsic called directly, a frame larger than the stack): call() answers those."""
        s = self.store
        f = s.funcs[func.addr]
        if f.host is not None or f.host_index != NO_HOST or f.frame > s.stack_slots:
            return None
        s.params.invoked.add(func.addr)
        sv = s.slot_view()
        if f.nparams:
            assert args is not None and args.shape == (f.nparams, s.n), "one row of slots per parameter"
            row = 0
            for k, t in enumerate(f.type.params):
                bad = s.bad_ref(args[row], t)
                if bad is not None:
                    raise ValueTypeError(f"argument {k} of `{f.name}` for instance {bad[0]}: {bad[1]}")
                row += slot_count((t,))
            sv[: f.nparams, :] = s.xp.asarray(args)
        sv[f.nparams: f.nlocals, :] = 0
        s.state[:] = 0
        s.next_tid.clear()
        s.fuel_given.clear()
        s.state[S_PC] = f.entry
        s.state[S_STATUS] = STATUS["RUNNING"]
        if s.thread_shift or s.instances < s.n:
            # The processes' main threads; the other lanes idle until spawned (threads.py), and so do the
            # spare processes' (processes.py).
            s.state[S_STATUS] = STATUS["DONE"]
            s.state[S_STATUS, : s.instances << s.thread_shift: 1 << s.thread_shift] = STATUS["RUNNING"]
        s.fuel_left[:] = U64_MAX if fuel is None else fuel
        self._run(on_slice)
        return self._outcome(slot_count(f.type.results))

    def _device_only(self, f: FuncInst) -> list[CallResult]:
        """The calls no launch serves: an intrinsic called directly, or a frame the stack cannot hold."""
        s = self.store
        if f.host_index != NO_HOST:
            return [CallResult(values=(i >> s.thread_shift if f.host_index == INTRINSICS["instance_id"]
                                       else s.instances,)) for i in range(s.n)]
        return [CallResult(trap=TRAP_MESSAGE[TRAP_CODE["STACK_EXHAUSTED"]])] * s.n

    @staticmethod
    def _call_host(f: FuncInst, i: int, args: tuple[int, ...]) -> CallResult:
        try:
            return CallResult(values=tuple(f.host(i, args)))  # type: ignore[misc]
        except ProcExit as e:
            return CallResult(exit_code=e.code)
        except Trap as t:
            return CallResult(trap=t.kind, backtrace=t.backtrace)

    def _run(self, on_slice: Callable[[], None] | None) -> None:
        s = self.store
        tuner = self.tuner = s.backend.tuner(s.fuel_slice, s.n)
        self.layout_trial = self._layout_trial()
        if self.layout_trial is not None and self.layout_trial.state == "done":
            self.layout_trial = None
        try:
            self._launch_until_done(on_slice, tuner)
        finally:
            if (tuner is not None or self.layout_trial is not None) and s.params.array is not None:
                s.params.array[P_FUEL_SLICE] = s.fuel_slice  # the tuner's and trial's slices were for their launches

    def _launch_until_done(self, on_slice: Callable[[], None] | None, tuner: WindowTuner | None) -> None:
        running, hostcall = STATUS["RUNNING"], STATUS["HOSTCALL"]
        s = self.store
        ext = s.extension
        threads = Scheduler(s, self) if s.thread_shift else None
        layouts = self.layout_trial
        while True:
            # The layout trial waits while the tier may change (a build the run may move to, a tier trial):
            # each trial's rates must be of one tier and one layout.
            trial = s.params.trial
            tiers = trial if trial is not None and trial.measuring else None
            tier_fixed = s.params.pending is None and tiers is None
            if layouts is not None and tier_fixed:
                self._layout_step(layouts)
            params = s.params.sync()
            box = self._mailbox()
            params[P_MAILBOX] = box.address if box is not None else 0
            serve = {}  # only where there is a mailbox: backends of tests and models take no `serve`
            if box is not None:
                box.open(len(s.mems))
                serve = {"serve": Serving(self._mail_serve, box.close)}
            s.budget.memory_allowances(s.params.keep_alive["mems"])
            if ext is not None:
                ext.before_launch()
            measure = layouts is not None and layouts.measuring and tier_fixed
            fuel_before = s.fuel_left.copy() if measure or tiers is not None else None
            cap = LAYOUT_SLICE if measure else None
            started = time.perf_counter()
            try:
                if tuner is None:
                    if layouts is not None:  # a trial's launches may be capped (the block's slice is put back after)
                        params[P_FUEL_SLICE] = min(s.fuel_slice, cap or s.fuel_slice)
                    s.backend.run(params, s.n, code=s.params.code_handle, **serve)
                else:
                    self._run_tuned(params, tuner, cap, serve)
            finally:
                if box is not None:
                    self._mail_settle(box)
                launched = time.perf_counter()
                s.seconds["launches"] += launched - started
                s.launches += 1
                if fuel_before is not None:
                    spent = float((fuel_before - s.fuel_left).sum())
                    if measure:
                        layouts.record(spent, launched - started)  # type: ignore[union-attr]
                    if tiers is not None:
                        tiers.record(spent, launched - started, s.params.tier_used)
                if ext is not None:
                    ext.after_launch()
                s.seconds["after launches"] += time.perf_counter() - launched
            status = self.status_now = np.array(s.backend.to_host(s.state[S_STATUS]))
            self.status_stale = False
            try:
                if on_slice is not None:
                    on_slice()
                s.params.profile_step()
                if s.params.pending is not None:
                    busy = (status == running) | (status == hostcall)
                    s.params.tier_up(lambda busy=busy: s.backend.to_host(s.state[S_PC])[busy].astype(np.int64))
                s.params.trial_step()
                changed = [hook() for hook in self.after_launch]
            finally:
                self.status_now = None
            settled = threads.settle() if threads is not None else None
            if any(changed) or self.status_stale or threads is not None:  # lanes ended or woken
                status = s.backend.to_host(s.state[S_STATUS])
            runnable = bool(np.any(status == running)) if settled is None else settled
            waiting = np.nonzero(status == hostcall)[0]
            if len(waiting):
                started = time.perf_counter()
                self._serve_host_calls(waiting)
                s.seconds["host calls"] += time.perf_counter() - started
            elif not runnable:
                return

    def statuses_changed(self) -> None:
        """Lanes' statuses were set after the launch (the watch ended waits): read them again."""
        self.status_now = None
        self.status_stale = True

    def _layout_trial(self) -> LayoutTrial | None:
        """The memory layout trial of this call's run, where the backend may move the store's memories
        (tuning.LayoutTrial): not for processes of threads, whose memory is shared. A trial goes on over the
        calls of one store (a call may end while it measures) until its code changes."""
        s = self.store
        if not s.backend.layout_trials or s.thread_shift or not s.mems or any(m.data.shift for m in s.mems):
            return None
        # What the choice depends on: the code, the backend, the tier, the scale (instances, to a power of
        # two) and the translator that made the code.
        what = repr((s.backend.name, s.backend.start_layout, s.params.tier, s.n.bit_length(), translator_digest()))
        key = hashlib.sha256(s.code.tobytes() + what.encode()).hexdigest()[:32]
        old = self.layout_trial
        if old is not None and old.key == key:
            return old
        seen = remembered_layout(key)
        if seen is not None and seen[0] == s.memory_layout:
            return None
        trial = LayoutTrial.recalled(s.memory_layout, seen[1]) if seen else LayoutTrial(s.memory_layout)
        trial.key = key
        return trial

    def _layout_step(self, trial: LayoutTrial) -> None:
        """Before a launch: start the other layout's build when the trial asks, and move the store when it says."""
        s = self.store
        if trial.state == "done" or s.params.dirty:  # the code and tier are known after the first sync
            return
        code = s.params.code if s.params.tier_used == "compiled" else None
        backend = s.backend
        for _ in range(2):  # a watch that ends here may find the other layout's VM built already
            state = trial.state
            wanted = state in ("wait", "recall") or trial.wants_build
            if not trial.found and wanted and time.monotonic() >= trial.next_probe:
                # A look in the compile cache (a file's hash): every LAYOUT_PROBE_S at most.
                trial.next_probe = time.monotonic() + LAYOUT_PROBE_S
                trial.found = trial.build = (backend.interpreter(trial.other, cached_only=True) if code is None else
                                             backend.compile(code, cached_only=True, layout=trial.other)) is not None
                if not trial.found and trial.wants_build:  # not started where too many build: asked again later
                    trial.build = s.params.build_layout(trial.other)
            to = trial.next_layout(trial.found)
            if to is not None or trial.state == state:
                break
        if to is not None:
            started = time.perf_counter()
            try:
                s.relayout(to)
            except ResourceLimitError as e:  # no room now: not a verdict on the code, so nothing is remembered
                trial.state, trial.key = "done", ""
                trial.note = f"memory layout: staying {s.memory_layout} ({e})"
            s.seconds["relayout"] += time.perf_counter() - started
        if trial.state == "done" and trial.chosen is not None and trial.key:
            remember_layout(trial.key, trial.chosen, trial.gain)

    def _run_tuned(self, params: Any, tuner: WindowTuner, cap: int | None = None,
                   serve: dict[str, Serving] | None = None) -> None:
        """One launch under the window and the fuel slice the tuner asks for (at most `cap`); a trial launch
        runs some blocks under another window, and the tuner learns how their fuel rate compared."""
        s = self.store
        near, trial, fuel = tuner.next()
        params[P_FUEL_SLICE] = min(fuel, cap or fuel)
        serve = serve or {}
        if trial is None:
            s.backend.run(params, s.n, near, code=s.params.code_handle, **serve)
            return
        before = s.fuel_left.copy()
        starts = s.backend.run(params, s.n, near, (trial, tuner.every), s.params.code_handle, **serve)
        to_host = s.backend.to_host
        spent = to_host(before - s.fuel_left)
        per_block = s.backend.instances_per_block(s.n, s.params.code_handle)
        tuner.record(trial_gain(spent, to_host(s.state[S_END_NS]), starts, per_block, tuner.every))

    def _serve_host_calls(self, waiting: np.ndarray) -> None:
        s = self.store
        state = s.backend.to_host(s.state[:, waiting])
        fidx = state[S_HOST_FUNC].astype(np.int64)
        # Growth requests: one reallocation per memory or table, for the largest request.
        for kind, grow in ((GROW_MEMORY, s.grow_memory), (GROW_TABLE, s.grow_table)):
            sel = fidx == kind
            for obj in np.unique(state[S_HOST_FP][sel]).tolist():
                want = int(state[S_TRAP][sel & (state[S_HOST_FP] == obj)].max())
                have = s.mems[obj].data.capacity // PAGE if kind == GROW_MEMORY else s.tables[obj].data.shape[1]
                if have < want:
                    grow(obj, want)
        resumed = [int(i) for i in waiting[(fidx == GROW_MEMORY) | (fidx == GROW_TABLE)]]
        calls = np.nonzero((fidx != GROW_MEMORY) & (fidx != GROW_TABLE))[0]
        if len(calls):
            resumed += self._serve_imports(waiting[calls], state[:, calls])
        if resumed:
            s.state[S_STATUS, s.xp.asarray(np.array(resumed, dtype=np.int64))] = STATUS["RUNNING"]

    def _serve_imports(self, insts: np.ndarray, state: np.ndarray) -> list[int]:
        """Run the host functions the instances wait on; return the instances to resume."""
        s = self.store
        sv = s.slot_view()
        frames = state[S_HOST_FP].astype(np.int64)
        span = max(s.funcs[int(f)].nargs for f in state[S_HOST_FUNC])
        # One transfer of each waiting frame's argument slots, then results written back per instance.
        at = np.minimum(frames[None, :] + np.arange(span, dtype=np.int64)[:, None], sv.shape[0] - 1)
        xp = s.xp
        window = s.backend.to_host(sv[xp.asarray(at), xp.asarray(insts)[None, :]]) if span else None
        calls = []
        for j, i in enumerate(insts.tolist()):
            f = s.funcs[int(state[S_HOST_FUNC, j])]
            base = int(frames[j])
            args = tuple(int(v) for v in window[:f.nargs, j]) if f.nargs else ()
            calls.append((i, f, base, _join(args, f.type.params) if f.nargs != len(f.type.params) else args))
        with self._round_hooks([(i, f.name, args) for i, f, _, args in calls]):
            resumed, exited, trapped, (rows, cols, values) = self._serve_round(calls)
        self._put_results(rows, cols, values, {STATUS["EXITED"]: exited, STATUS["TRAPPED"]: trapped})
        return resumed

    def _put_results(self, rows: list[int], cols: list[int], values: list[int],
                     statuses: dict[int, list[int]]) -> None:
        """Results into the callee frames (slot rows, instance columns, values), and these instances' new
        statuses (a trapped one's trap is the host's), each in one transfer."""
        s, xp = self.store, self.store.xp
        if values:
            block = xp.asarray(np.array([rows, cols, values], dtype=np.uint64))
            s.slot_view()[block[0].astype(np.int64), block[1].astype(np.int64)] = block[2]
        for status, insts in statuses.items():
            if insts:
                at = xp.asarray(np.array(insts))
                s.state[S_STATUS, at] = status
                if status == STATUS["TRAPPED"]:
                    s.state[S_TRAP, at] = TRAP_CODE["HOST"]

    @contextmanager
    def _round_hooks(self, calls: list[tuple[int, str, tuple[int, ...]]]) -> Iterator[None]:
        """The store extension's hooks around a round of host calls, (instance, name, arguments) each."""
        ext = self.store.extension
        if ext is not None:
            ext.before_calls(calls)
        try:
            yield
        finally:
            if ext is not None:
                ext.after_calls()

    def _serve_round(self, calls: list[tuple[int, FuncInst, int, tuple[int, ...]]], mail: Mailbox | None = None,
                     ) -> tuple[list[int], list[int], list[int], tuple[list[int], list[int], list[int]]]:
        """Serve (instance, function, frame base, arguments) calls: the instances to resume, those that
        exited and those that trapped, and the result slots to write as (rows, columns, values). With `mail`,
        while the launch runs: guest memory goes through the lanes, and the round's writes are left in
        `self.mail_writes` for their release."""
        resumed: list[int] = []
        exited: list[int] = []
        trapped: list[int] = []
        slots: tuple[list[int], list[int], list[int]] = ([], [], [])
        lanes = frozenset(i for i, *_ in calls) if mail is not None else frozenset()
        with self.store.host_round(mail, lanes) as r:  # memory sizes read once, memory writes in one transfer
            group = ~((1 << self.store.thread_shift) - 1)
            if self.store.fetch_ahead:
                self._prefetch([f.reads(i if f.per_lane else i & group, args) for i, f, _, args in calls
                                if f.reads is not None])
            for i, f, base, args in calls:
                try:  # a thread's calls are its process's, which its main lane's host state serves
                    results = f.host(i if f.per_lane else i & group, args)  # type: ignore[misc]
                except Pending:  # asked again after the next launch (processes.py: a wait)
                    continue
                except ProcExit as e:
                    exited.append(i)
                    self.exit_codes[i] = e.code
                    continue
                except Trap as t:
                    trapped.append(i)
                    self.host_traps[i] = t.kind
                    continue
                bad = next((b for v, t in zip(results, f.type.results, strict=False)
                            if (b := self.store.bad_ref([v], t))), None)
                if bad is not None:
                    trapped.append(i)
                    self.host_traps[i] = f"host function `{f.name}` returned a bad reference: {bad[1]}"
                    continue
                if wo.V128_T in f.type.results:
                    results = _split(tuple(results), f.type.results)  # type: ignore[arg-type]
                for k, v in enumerate(results):
                    slots[0].append(base + k)
                    slots[1].append(i)
                    slots[2].append(int(v) & U64_MAX)
                resumed.append(i)
            if mail is not None:
                self.mail_writes, r.writes = r.writes, {}
        return resumed, exited, trapped, slots

    # -- the mailbox: host calls served while a launch runs (runtime/mailbox.py) -----------------------
    def _mailbox(self) -> Mailbox | None:
        """The store's mailbox under WASMGPU_MAILBOX=on, made at its first launch where it may have one: not
        for threads (their lanes share memory) or spare processes, nor past MAX_INSTANCES."""
        s = self.store
        if self.mailbox is None and not self.__dict__.get("_no_mailbox"):
            if mailbox_on() and not s.thread_shift and s.instances == s.n and s.n <= MAX_INSTANCES:
                self.mailbox = Mailbox(s.backend, s.n, wait_ns(), mailbox.POOL_BYTES)
            else:
                self._no_mailbox = True
        return self.mailbox

    def _mail_serve(self, done: Callable[[], bool]) -> bool:
        """While a launch runs: serves the calls posted in the mailbox; whether there were any."""
        box = self.mailbox
        assert box is not None
        box.done = done
        lanes = box.posted()
        if not len(lanes):
            return False
        started = time.perf_counter()
        s = self.store
        head = box.head[:, lanes]
        ext = s.extension
        # An extension says which of its calls may be served now (none, where it does not say).
        safe = None if ext is None else getattr(ext, "mail_safe", lambda *_: False)
        calls: list[tuple[int, FuncInst, int, tuple[int, ...]]] = []
        declined: list[int] = []
        served: dict[int, FuncInst | None] = {}  # per function: itself, or None where the mailbox cannot serve it
        for i, fi, fp, *slots in zip(lanes.tolist(), head[MH_FUNC].tolist(), head[MH_FP].tolist(),
                                     *head[MH_ARGS:].tolist(), strict=True):
            if fi not in served:
                f = s.funcs[fi] if fi < len(s.funcs) else None
                ok = f is not None and f.host is not None and slot_count(f.type.results) <= MAIL_ARGS
                served[fi] = f if ok and f.nargs <= MAIL_ARGS else None  # type: ignore[union-attr]
            f = served[fi]
            if f is None:
                declined.append(i)
                continue
            args = tuple(slots[:f.nargs])
            if f.nargs != len(f.type.params):
                args = _join(args, f.type.params)
            if safe is not None and not safe(i, f.name, args):
                declined.append(i)
                continue
            calls.append((i, f, fp, args))
        if declined:
            box.flags[np.array(declined)] = BOX_DECLINED
        if calls:
            with self._round_hooks([(i, f.name, args) for i, f, _, args in calls]):
                resumed, exited, trapped, (_rows, cols, values) = self._serve_round(calls, box)
            self._mail_release(box, calls, resumed, exited, trapped, cols, values)
            self.mail_calls += len(calls)
        s.seconds["host calls"] += time.perf_counter() - started
        return True

    def _mail_release(self, box: Mailbox, calls: list[tuple[int, FuncInst, int, tuple[int, ...]]],
                      resumed: list[int], exited: list[int], trapped: list[int], cols: list[int],
                      values: list[int]) -> None:
        """Releases a round's lanes with what their calls gave."""
        writes = write_ops(self.mail_writes)
        self.mail_writes = {}
        results: dict[int, list[int]] = {}
        for i, v in zip(cols, values, strict=True):  # each call's results in order
            results.setdefault(i, []).append(v)
        releases = {i: Release(writes.get(i, []), results.get(i, []), STATUS["RUNNING"], MAIL_KEEP_TRAP)
                    for i in resumed}
        releases.update((i, Release(writes.get(i, []), [], STATUS["EXITED"], MAIL_KEEP_TRAP)) for i in exited)
        releases.update((i, Release(writes.get(i, []), [], STATUS["TRAPPED"], TRAP_CODE["HOST"]))
                        for i in trapped)
        waiting = [i for i, *_ in calls if i not in releases]  # Pending: asked again after the launch
        for i in waiting:
            if i in writes:
                releases[i] = Release(writes[i], [], STATUS["HOSTCALL"], MAIL_KEEP_TRAP)
        box.release(releases)
        rest = [i for i in waiting if i not in releases]
        if rest:
            box.flags[np.array(rest)] = BOX_DECLINED

    def _mail_settle(self, box: Mailbox) -> None:
        """After a launch: what the host served for lanes that ended their launch before they took it,
        applied here (the call's writes, results and status), as after a launch without the mailbox."""
        left = box.settle()
        if not left:
            return
        s = self.store
        rows: list[int] = []
        cols: list[int] = []
        values: list[int] = []
        statuses: dict[int, list[int]] = {}
        base = s.backend.to_host(s.state[S_HOST_FP, s.xp.asarray(np.array(sorted(left)))])
        with s.host_round() as round_:  # the writes as after a launch: one transfer per memory at its end
            for (i, r), fp in zip(sorted(left.items()), base.tolist(), strict=True):
                for _, m, a, data in r.writes:
                    round_.writes.setdefault((m, i), []).append((a, data))  # type: ignore[arg-type]
                rows += range(int(fp), int(fp) + len(r.results))
                cols += [i] * len(r.results)
                values += r.results
                statuses.setdefault(r.status, []).append(i)
        self._put_results(rows, cols, values, statuses)

    def _prefetch(self, plans: list[Iterator[list[tuple[int, int, int, int]]]]) -> None:
        """What the calls will read of guest memory, fetched level by level for all of them at once."""
        while plans:
            wants: list[tuple[int, int, int, int]] = []
            live = []
            for plan in plans:
                level = next(plan, None)
                if level is not None:
                    wants += level
                    live.append(plan)
            self.store.prefetch(wants)
            plans = live

    def _outcome(self, nres: int) -> Outcome:
        s = self.store
        host = s.backend.to_host
        state = host(s.state)
        values = host(s.slot_view()[:nres, :]) if nres else np.zeros((0, s.n), dtype=np.uint64)
        out = Outcome(np.array(values, dtype=np.uint64), state[S_STATUS] == STATUS["DONE"])
        trapped = []
        for i in np.nonzero(~out.done)[0].tolist():
            if state[S_STATUS, i] == STATUS["EXITED"]:  # by the host (ProcExit), or the device (code in S_TRAP)
                code = self.exit_codes.pop(i, None)
                out.exit_codes[i] = int(state[S_TRAP, i]) if code is None else code
            else:
                trapped.append(i)
        where = {i: self.trap_lanes.pop(i, i) for i in trapped}  # a thread's trap: its own frames
        frames = backtraces(s, sorted(set(where.values())), state)
        for i in trapped:
            kind = self.host_traps.pop(i, None) or TRAP_MESSAGE[int(state[S_TRAP, i])]
            out.traps[i] = (kind, frames[where[i]])
        return out



class Pending(Exception):  # noqa: N818 - not an error: a host call's answer is not there yet
    """Raised by a host function whose answer depends on other lanes (a child process's end): the lane
    stays in its host call, which is made again after the next launch."""


@dataclass
class Outcome:
    """What a call left in every instance: the result slots of those that returned, the others' ends."""

    values: np.ndarray  # uint64 [results, N]; meaningful where `done`
    done: np.ndarray  # bool [N]: the call returned
    traps: dict[int, tuple[str, list[str]]] = field(default_factory=dict)  # instance -> (message, backtrace)
    exit_codes: dict[int, int] = field(default_factory=dict)  # instance -> exit code (ProcExit)

    @classmethod
    def from_results(cls, results: list[CallResult], nres: int) -> Outcome:
        """The outcome of calls answered per instance (call() on a host function or an intrinsic)."""
        values = np.zeros((nres, len(results)), dtype=np.uint64)
        out = cls(values, np.zeros(len(results), dtype=bool))
        for i, r in enumerate(results):
            if r.trap is not None:
                out.traps[i] = (r.trap, r.backtrace)
            elif r.exit_code is not None:
                out.exit_codes[i] = r.exit_code
            else:
                out.done[i] = True
                values[:, i] = [int(v) & U64_MAX for v in r.values or ()]
        return out

    def results(self) -> list[CallResult]:
        # The common case in bulk: one conversion of every finished instance's values to Python ints (a
        # loop of per-instance numpy reads cost 1.7 us per instance, most of a trivial call at N = 135168).
        out = [CallResult(tuple(v)) for v in self.values.T.tolist()]
        for i, (kind, backtrace) in self.traps.items():
            out[i] = CallResult(trap=kind, backtrace=backtrace)
        for i, code in self.exit_codes.items():
            out[i] = CallResult(exit_code=code)
        return out
