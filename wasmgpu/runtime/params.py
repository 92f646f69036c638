"""The parameter block: how the VM sees a store (vm.h's Param enum), and the tier its code runs in."""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..compiler.isa import slot_count, width
from ..compiler.to_c import FuncInfo, compile_store, function_spans, recursive, resume_table
from ..compiler.vm_abi import (
    F_FIELDS,
    M_FIELDS,
    P_CODE,
    P_COUNT,
    P_DATA,
    P_DATA_DROPPED,
    P_DATA_INFO,
    P_ELEM,
    P_ELEM_DROPPED,
    P_ELEM_INFO,
    P_EXN,
    P_EXN_WIDTH,
    P_EXT,
    P_FRAMES,
    P_FUEL_LEFT,
    P_FUEL_SLICE,
    P_FUNCS,
    P_GLOBALS,
    P_HANDLERS,
    P_INST_STRIDE,
    P_INSTANCES,
    P_LOCKS,
    P_MAX_DEPTH,
    P_MEM_PAGES,
    P_MEMS,
    P_N,
    P_NFUNCS,
    P_RAN,
    P_SLOT_STRIDE,
    P_SLOTS,
    P_STACK_SLOTS,
    P_STATE,
    P_TABLE_SIZES,
    P_TABLES,
    P_THREADS,
)
from ..errors import WasmGpuError
from ..vm import background
from ..vm.build import BUILD_EVENTS, BuildEvent, StoreCode
from ..wasm import opcodes as wo
from .code_cache import keep_ran_record, ran_record, translator_digest
from .tuning import TierTrial, remember_tier, remembered_tier

if TYPE_CHECKING:
    from .store import Store

# How a store's code runs: vm.h's interpreter, or compiled to C first; "auto" compiles where the code is
# at most AUTO_COMPILE_WORDS[backend] words. On the H200 (bench/NOTES.md) compiled C benchmarks of 80-1217
# code words ran 1.1-9x the interpreter's fuel rate and built in 0.3-2 s; larger stores compile in pieces
# (below), which the Rust programs (10-12k words) ran at 0.4-1.8x the interpreter after 70 s of NVRTC. On
# the CPU every benchmark ran 2-25x faster compiled, and the host compiler (-O1) built 12k words in 11 s,
# once (builds are cached).
TIERS = ("auto", "interp", "compiled")
AUTO_COMPILE_WORDS = {"cuda": 4096, "cpu": 16384, "cpu-interleaved": 16384}


# auto builds stores of at least BACKGROUND_MIN_WORDS[backend] words in the background (the CPU's: those
# past AUTO_COMPILE_WORDS). On CUDA, compiled pieces ran Rust std programs (10-12k words) 1.4-2x slower than the
# interpreter (their lanes part on data-dependent paths), resvg's (535k words) hybrid build ran one instance's
# 9.65 s of launches (bench/NOTES.md), so CUDA's auto builds only the stores that profile first.
BACKGROUND_MIN_WORDS = {"cuda": 65536}
# auto builds stores up to this size in the background (vm/background.py). Measured on two cores: resvg
# (535k words) built in 165 s and ran 2x the interpreter; yosys (1.4M words) took 35 min and 4.6 GB to
# build, and its compiled run did not end in 20 minutes (not understood yet).
BACKGROUND_MAX_WORDS = 1_000_000
# How often a run looks for the background build of its code (a cache lookup).
TIER_UP_POLL_S = 1.0
# A store of this many code words or more, built in the background in pieces, first runs interpreted while
# the interpreter notes the functions it enters (P_RAN); its first build then holds those alone, the others
# left to the interpreter as the largest are (WG_HYBRID), so that it is ready sooner; the compile cache keeps
# that choice, and the whole build follows for the runs after (an input may reach functions the first run
# never entered). Rendering one SVG, resvg (535k words) entered 27% of its functions, 31% of its code.
# WASMGPU_BUILD_ALL=1 builds only the whole.
PROFILE_MIN_WORDS = 65536
# Seconds a run interprets while it notes the functions entered before its build starts; a run that ends
# sooner starts the build at its end, for the next run.
PROFILE_S = 2.0


# Stores over this many words compile in pieces, one C function per wasm function (to_c.compile_store). On the
# CPU, pieces calling each other as C ran as fast as one function or faster and build in parallel (rs_strings,
# 12k words: 8 s against 17 s, and 1.2x faster), but a small store's pieces take more compiler processes and
# the runtime's object (the test suite took twice as long with every store in pieces; bench/NOTES.md). On
# CUDA, the stores that auto leaves to the interpreter.
PIECES_WORDS = {"cuda": 4096, "cpu": 2048, "cpu-interleaved": 2048}


# On these backends a smaller store with recursive calls compiles in pieces too: its recursive calls are then
# C calls, where one function makes them through its dispatch loop with the frames in memory (fib 1.33x).
PIECES_WHEN_RECURSIVE = ("cpu", "cpu-interleaved")


def in_pieces(backend: str, code: np.ndarray, funcs: list[FuncInfo]) -> bool:
    """Whether a store's code compiles in pieces: over PIECES_WORDS[backend] words, or with recursive calls on
    a backend of PIECES_WHEN_RECURSIVE. Where WASMGPU_PIECES_WORDS sets a bound, over that bound alone (0:
    always in pieces, as tests/test_compiled.py's cpu-pieces engines run them)."""
    text = os.environ.get("WASMGPU_PIECES_WORDS", "")
    if text.isdigit():
        return len(code) > int(text)
    return len(code) > PIECES_WORDS.get(backend, 4096) or (backend in PIECES_WHEN_RECURSIVE
                                                           and recursive(code, funcs))


# In a store compiled in pieces, functions of more code words than this are left to the interpreter (vm.h
# WG_HYBRID): a function's build time grows faster than its size (bench/NOTES.md: resvg's function of 4.8k
# words took NVRTC about 290 s alone, one of 1k words 1 s), so the largest functions set the first build's
# time whatever the cores.
PIECE_MAX_WORDS = {"cuda": 2000, "cpu": 4000, "cpu-interleaved": 4000}


def left_to_interpreter(backend: str, code: np.ndarray, funcs: list[FuncInfo], pieces: bool) -> frozenset[int]:
    """The functions a store compiled in pieces leaves to the interpreter: those over PIECE_MAX_WORDS[backend]
    code words, or over WASMGPU_PIECE_MAX_WORDS where that is set (0: every function)."""
    if not pieces:
        return frozenset()
    text = os.environ.get("WASMGPU_PIECE_MAX_WORDS", "")
    bound = int(text) if text.isdigit() else PIECE_MAX_WORDS.get(backend, 2000)
    return frozenset(i for i, (entry, end) in function_spans(len(code), funcs).items() if end - entry > bound)


def _wide(types: tuple[int, ...]) -> int:
    """Bit k set: slot k may not hold a value that fits in 32 bits (the compiled tier keeps the others in
    32-bit variables)."""
    bits, k = 0, 0
    for t in types:
        for _ in range(width(t)):
            bits |= (t not in (wo.I32_T, wo.F32_T)) << k
            k += 1
    return bits



@dataclass
class EntryProfile:
    """A store noting the functions its interpreter enters before its build (PROFILE_MIN_WORDS)."""

    what: str  # the code's digest: what names its builds, and the cache keeps the choice under
    too_large: frozenset[int]  # left to the interpreter whatever runs (left_to_interpreter)
    key: bytes  # ParamBlock._compile's key of the store's state
    ran: Any  # u8 per function on the backend (P_RAN)
    started: float | None = None  # time.monotonic() after its first launch
    built: frozenset[int] | None = None  # the functions left to the interpreter by the build this run started
    launched: bool = False
    retry_at: float = 0.0  # where no build could start: when to ask again


class ParamBlock:
    """A store's parameter block, rebuilt when the store's objects changed (`dirty`), and its compiled code.

    The block holds pointers to the store's arrays and to tables built here (`keep_alive`), which must
    live as long as the VM may read them.
    """

    def __init__(self, store: Store, tier: str) -> None:
        self.store = store
        self.tier = tier
        self.tier_used = "interp"  # what the last launch ran: "auto" resolves when the code is known
        self.dirty = True
        self.array: Any = None
        self.keep_alive: dict[str, Any] = {}
        self.code_handle: Any = None
        self.code: StoreCode | None = None  # the store's code as the compiled tier last built it
        self._code_key: bytes | None = None
        # A background build of the store's code that this run may move to (tier_up): its code and key.
        self.pending: tuple[StoreCode, bytes] | None = None
        self._started = self._next_poll = 0.0
        self._enterable: Any = None
        self.profile: EntryProfile | None = None  # the functions entered, noted before the build (PROFILE_MIN_WORDS)
        self._last_profile: EntryProfile | None = None
        self.invoked: set[int] = set()  # the functions the host called (entered without a call the VM notes)
        # Where the backend measures whether compiled code pays (tuning.TierTrial): the run's trial, whether
        # it went back to the interpreter (for good: later blocks of this store do not build again), and the
        # digest of the code it measured.
        self.trial: TierTrial | None = None
        self.keep_interp = False
        self._what = ""
        self._kept: tuple[str, tuple[str, float] | None] | None = None  # (trial key, its remembered_tier)

    def sync(self) -> Any:
        """The block as the next launch needs it, built afresh if the store changed."""
        if not self.dirty and self.array is not None:
            return self.array
        # A profile goes on through a rebuild of the block (a memory grown) where the code is the same.
        self.pending, self._last_profile, self.profile = None, self.profile, None
        ftab = self._function_table()
        self.keep_alive = self._tables(ftab)
        self.array = self.store.xp.asarray(self._block(self.keep_alive))
        self.dirty = False
        s = self.store
        state = self._state_key(ftab, s.handler_table().tobytes())
        compiled = self.tier == "compiled" or (
            self.tier == "auto" and len(s.code) <= AUTO_COMPILE_WORDS.get(s.backend.name, 0))
        if compiled:
            self._compile(ftab)
        elif (self.tier == "auto" and s.backend.background_builds and not self.keep_interp
              and BACKGROUND_MIN_WORDS.get(s.backend.name, 0) <= len(s.code) <= BACKGROUND_MAX_WORDS):
            compiled = self._compile(ftab, cached_only=True)
            t = self.trial
            if compiled and s.backend.tier_trials and (
                    t.state == "interp" if t is not None else self._kept_tier() is None):
                # A build found made, its tier not yet measured: the run interprets first (TierTrial).
                self._pend(self.code, self._code_key, build=False)  # type: ignore[arg-type]
                compiled = False
        elif (self._code_key is not None and self.code_handle is not None and not self.keep_interp
              and self._code_key == state):
            compiled = True  # a run that moved to its build (tier_up), its block made again: the same code goes on
        else:
            self.code_handle, self._code_key = None, None
        p = self._last_profile
        if self.profile is None and p is not None and p.key == state:
            # The same code, its block made again (a memory grown after the run moved to compiled code).
            self.profile = p
            self.array[P_RAN] = s.backend.ptr(p.ran)
        if not compiled:
            self.code_handle = self.interpreter()
        self.tier_used = "compiled" if compiled else "interp"
        return self.array

    def interpreter(self) -> Any:
        """What runs the store's code uncompiled: None for the backend's own interpreter, or the one built for
        the layout the store moved to."""
        s = self.store
        return None if s.memory_layout == s.backend.start_layout else s.backend.interpreter(s.memory_layout)

    def _function_table(self) -> np.ndarray:
        ftab = np.zeros((max(len(self.store.funcs), 1), F_FIELDS), dtype=np.uint32)
        for i, f in enumerate(self.store.funcs):
            # A host function's parameter slots: what a lane posts in the mailbox (vm.h mailbox_call).
            ftab[i] = (f.entry, f.nparams if f.host is None else f.nargs, f.nlocals, f.frame, f.sig, f.host_index)
        return ftab

    def _tables(self, ftab: np.ndarray) -> dict[str, Any]:
        """The per-store tables the block points to, on the backend."""
        s, xp, ptr = self.store, self.store.xp, self.store.backend.ptr
        mems = np.zeros((max(len(s.mems), 1), M_FIELDS), dtype=np.uint64)
        for i, m in enumerate(s.mems):
            mems[i] = (ptr(m.data.data), m.data.capacity, m.max_pages, m.data.shift)
        tables = np.zeros((max(len(s.tables), 1), 3), dtype=np.uint64)
        for i, t in enumerate(s.tables):
            tables[i] = (ptr(t.data), t.data.shape[1], t.max_size)
        data_info = np.array(s.data_info or [(0, 0)], dtype=np.uint64)
        elem_info = np.array(s.elem_info or [(0, 0)], dtype=np.uint64)
        return {
            "code": xp.asarray(s.code), "funcs": xp.asarray(ftab), "mems": xp.asarray(mems),
            "tables": xp.asarray(tables), "data": xp.asarray(np.frombuffer(bytes(s.data_bytes), np.uint8)),
            "data_info": xp.asarray(data_info), "elem": xp.asarray(np.array(s.elem_refs, dtype=np.uint64)),
            "elem_info": xp.asarray(elem_info), "handlers": xp.asarray(s.handler_table()),
            "locks": xp.zeros(max(s.n >> s.thread_shift, 1), dtype=np.uint32),  # vm.h group_lock, per process
        }

    def _block(self, keep: dict[str, Any]) -> np.ndarray:
        s, ptr, n = self.store, self.store.backend.ptr, self.store.n
        p = np.zeros(P_COUNT, dtype=np.uint64)
        p[P_CODE] = ptr(keep["code"])
        p[P_FUNCS] = ptr(keep["funcs"])
        p[P_NFUNCS] = len(s.funcs)
        p[P_SLOTS] = ptr(s.slots)
        p[P_FRAMES] = ptr(s.frames)
        p[P_STATE] = ptr(s.state)
        p[P_N] = n
        p[P_STACK_SLOTS] = s.stack_slots
        p[P_MAX_DEPTH] = s.max_depth
        # Row 0 of each per-object array is padding: the VM indexes from row 1.
        p[P_GLOBALS] = ptr(s.globals) + 8 * n
        p[P_MEMS] = ptr(keep["mems"])
        p[P_MEM_PAGES] = ptr(s.mem_pages) + 4 * n
        p[P_TABLES] = ptr(keep["tables"])
        p[P_TABLE_SIZES] = ptr(s.table_sizes) + 4 * n
        p[P_DATA] = ptr(keep["data"])
        p[P_DATA_INFO] = ptr(keep["data_info"])
        p[P_DATA_DROPPED] = ptr(s.data_dropped) + n
        p[P_ELEM] = ptr(keep["elem"])
        p[P_ELEM_INFO] = ptr(keep["elem_info"])
        p[P_ELEM_DROPPED] = ptr(s.elem_dropped) + n
        p[P_FUEL_SLICE] = s.fuel_slice
        p[P_SLOT_STRIDE] = n if s.backend.instance_minor else 1
        p[P_INST_STRIDE] = 1 if s.backend.instance_minor else s.stack_slots
        p[P_FUEL_LEFT] = ptr(s.fuel_left)
        p[P_EXT] = ptr(s.extension.block) if s.extension is not None else 0
        p[P_HANDLERS] = ptr(keep["handlers"])
        p[P_LOCKS] = ptr(keep["locks"])
        p[P_THREADS] = s.thread_shift
        p[P_INSTANCES] = s.instances
        if s.tags or s.try_regions:
            exn, p[P_EXN_WIDTH] = s.exception_rows()
            p[P_EXN] = ptr(exn)
        return p

    def _compile(self, ftab: np.ndarray, cached_only: bool = False) -> bool:
        """The store's code built (or found built) for the backend; with `cached_only`, only found in the
        compile cache, and where it is not there, built in the background (vm/background.py) for the
        next run. Whether code_handle now holds it."""
        # What compiled_source reads: the code (it only grows), the function table, the number of memories,
        # and the try regions (they add the edges to their landing pads, to_c._landings).
        s = self.store
        regions = s.handler_table().tobytes()
        key = self._state_key(ftab, regions)
        if key == self._code_key and self.code_handle is not None:
            return True
        pieces = in_pieces(s.backend.name, s.code, self._infos())
        interpreted = left_to_interpreter(s.backend.name, s.code, self._infos(), pieces)
        # The code's digest: what names its builds (with the functions they leave to the interpreter), and
        # what the cache keeps the functions a profiled run entered under.
        what = hashlib.sha256(b"".join([s.code.tobytes(), ftab.tobytes(), regions,
                                        repr((sorted(self._sigs().items()), len(s.mems))).encode(),
                                        translator_digest().encode()])).hexdigest()
        self._what = what
        if cached_only and s.backend.tier_trials and (self._kept_tier() or ("",))[0] == "interp":
            self.code_handle, self._code_key = None, None  # an earlier run measured its compiled code slower
            return False
        if cached_only and pieces and len(s.code) >= PROFILE_MIN_WORDS and os.environ.get("WASMGPU_BUILD_ALL") != "1":
            whole = self._store_code(what, pieces, interpreted)
            handle = self._made(whole)
            if handle is not None:  # the whole build, made after the first run's: what later runs take
                self.code, self.code_handle, self._code_key = whole, handle, key
                return True
            chosen = ran_record(what)
            if chosen is None:  # not yet profiled: the interpreter notes what it enters first
                self.code_handle, self._code_key = None, None
                p = self._last_profile
                if p is None or p.what != what:
                    p = EntryProfile(what, interpreted, key, s.backend.zeros((len(s.funcs),), np.uint8))
                p.key = key
                self.profile = p
                self.array[P_RAN] = s.backend.ptr(p.ran)
                if p.built is not None:  # its build, started before the rebuild, is still what the run moves to
                    self.code = self._store_code(what, True, p.built)
                    self._pend(self.code, key, build=False)
                return False
            spans = function_spans(len(s.code), self._infos())
            code = self.code = self._store_code(what, pieces, interpreted | frozenset(i for i in chosen if i in spans))
            self.code_handle = self._made(code)
            # The whole build next, where the first run's end did not start it (or it did not finish).
            if self.code_handle is not None:
                self._start_builds([], whole, "every function, for the runs after this one")
                self._code_key = key
                return True
            self._start_builds([code], whole, "the functions an earlier run entered, then every function; this run "
                                              "interprets until the first is built")
            self._pend(code, key, build=False)
            return False
        code = self.code = self._store_code(what, pieces, interpreted)
        if cached_only:
            self.code_handle = self._made(code)
            if self.code_handle is None:
                self._pend(code, key)
                return False
        else:
            self.code_handle = s.backend.compile(code, layout=s.memory_layout)
        self._code_key = key
        return True

    def _state_key(self, ftab: np.ndarray, regions: bytes) -> bytes:
        """What tells whether the store's code still has the build it had: the code's length (it only grows),
        the function table, the number of memories, the try regions and the memory layout."""
        s = self.store
        return (len(s.code).to_bytes(8, "little") + len(s.mems).to_bytes(8, "little") + ftab.tobytes() + regions
                + s.memory_layout.encode())

    def _store_code(self, what: str, pieces: bool, interpreted: frozenset[int]) -> StoreCode:
        """The store's code (`what`: its digest) as built in pieces or not, leaving `interpreted` to the
        interpreter."""
        name = hashlib.sha256(repr((what, pieces, sorted(interpreted))).encode()).hexdigest()
        return StoreCode(name, lambda: self.compiled_source(pieces, interpreted), pieces, interpreted)

    def _pend(self, code: StoreCode, key: bytes, build: bool = True, meanwhile: str | None = None) -> bool:
        """The store's code built in the background (unless `build` is false: it is in the cache), for tier_up
        to move to once it is in the cache; `meanwhile` as background.start's. Whether a build started."""
        self._code_key = None
        self.pending = (code, key)
        self._started = self._next_poll = time.monotonic()
        self._enterable = None
        if self.store.backend.tier_trials and self.trial is None and self._kept_tier() is None:
            self.trial = TierTrial()
        return build and background.start(self._build_job(code, self.store.memory_layout), meanwhile)

    def _start_builds(self, first: list[StoreCode], whole: StoreCode, meanwhile: str) -> None:
        """`first` built in the background, then the whole store, one after another in one process."""
        jobs = [self._build_job(c, self.store.memory_layout) for c in [*first, whole]]
        jobs[0].then = jobs[1:]
        background.start(jobs[0], meanwhile)

    def profile_step(self) -> None:
        """After each launch of a profiling store: once its launches have run PROFILE_S, the functions the
        interpreter entered so far are built, the rest left to the interpreter, and the run moves to that
        build when it is ready (tier_up)."""
        p = self.profile
        if p is None or self.dirty:  # a block made again carries the profile on (sync)
            return
        now = time.monotonic()
        p.launched = True
        if p.started is None:
            p.started = now
        if p.built is not None or now - p.started < PROFILE_S or now < p.retry_at:
            return
        left, code, made, compiled = self._profiled(p)
        started = self._pend(code, p.key, build=not made, meanwhile=f"{compiled}; it interprets until they are built")
        if made or started:
            p.built, self.code = left, code
        else:  # no room for a build now (MAX_BUILDS): asked again later
            self.pending, p.retry_at = None, now + PROFILE_S

    def profile_end(self) -> None:
        """The store's runs are over (Store.close): the functions they entered are kept as the choice for later
        runs of the code and built where the run's own build did not hold them all, then the whole store, in
        one background process. Best effort: nothing is kept where the store never launched, its code
        changed, or the device cannot be read."""
        p, self.profile = self.profile, None
        if p is None or not p.launched or self.keep_interp:
            return
        s = self.store
        try:
            if p.key != self._state_key(self._function_table(), s.handler_table().tobytes()):
                return
            left, code, made, compiled = self._profiled(p)
            keep_ran_record(p.what, left)
            first = [] if made or left == p.built else [code]
            later = f"{compiled}, then every function" if first else "every function, for the runs after this one"
            self._start_builds(first, self._store_code(p.what, True, p.too_large), later)
        except Exception:  # noqa: BLE001 - the run's results stand; the next run profiles again
            return

    def _profiled(self, p: EntryProfile) -> tuple[frozenset[int], StoreCode, bool, str]:
        """What profile `p` so far leaves to the interpreter, the code built so, whether it is made, and
        what -v says that build holds."""
        s = self.store
        ran = np.asarray(s.backend.to_host(p.ran)).astype(bool)
        ran[sorted(self.invoked)] = True
        spans = function_spans(len(s.code), self._infos())
        left = p.too_large | frozenset(i for i in spans if not ran[i])
        code = self._store_code(p.what, True, left)
        made = self._made(code) is not None
        return left, code, made, f"{len(spans) - len(left)} of {len(spans)} functions, those this run entered"

    def build_layout(self, layout: str) -> bool:
        """Start building, in a process of its own (vm/background.py), what this store runs in `layout`: its
        compiled code where it runs compiled, else the interpreter. Whether a build started."""
        code = self.code if self.tier_used == "compiled" else None
        return background.start(self._build_job(code, layout, tag=layout))

    def _build_job(self, code: StoreCode | None, layout: str, tag: str = "") -> background.BuildJob:
        """A background build of `code` (None: the interpreter) for this store's backend in `layout`."""
        s = self.store
        defines = s.backend.defines_for(layout)
        arch = s.backend.arch  # CUDA's builds target the store's GPU; the CPU's the host
        if code is None:
            return background.BuildJob("interpreter", None, [], {}, 0, False, s.backend.instance_minor, defines, [],
                                        arch, tag)
        return background.BuildJob(code.key, s.code.copy(), self._infos(), self._sigs(), len(s.mems),
                                   code.pieces, s.backend.instance_minor, defines,
                                   list(s.try_regions), arch, tag, sorted(code.interpreted))

    def tier_up(self, pcs: Any) -> bool:
        """Between launches of a run that interprets while its code builds in the background: once the build
        is in the cache and every unfinished instance stands where the compiled code can be entered (`pcs`, a
        function giving their pcs; fuel slices end at loop heads and calls, which are such places), the
        compiled code runs the rest. Both tiers keep the same state, frames and slots, so nothing moves."""
        if self.pending is None or self.dirty or time.monotonic() < self._next_poll:
            return False
        self._next_poll = time.monotonic() + TIER_UP_POLL_S
        code, key = self.pending
        if self.trial is not None and not self.trial.ready:
            return False  # the interpreter's rate is measured first
        handle = self._made(code)
        if handle is None:
            return False
        if self._enterable is None:
            self._enterable = resume_table(self.store.code, self._infos(), code.interpreted)
        if not self._enterable[pcs()].all():
            return False
        self.code_handle, self._code_key, self.pending, self.tier_used = handle, key, None, "compiled"
        BUILD_EVENTS.append(BuildEvent(f"compiled code {code.key[:20]}", True, time.monotonic() - self._started,
                                       took_over=True))
        if self.trial is not None:
            self.trial.moved()
        return True

    def trial_step(self, final: bool = False) -> None:
        """After each launch of a run whose tier is on trial (tuning.TierTrial), and at its end (`final`):
        once both tiers are measured, the choice, kept for the code and batch; where the interpreter was
        faster the run goes on in it (both tiers keep the same state, and the interpreter goes on from any
        pc where compiled code stopped)."""
        t = self.trial
        if t is None or (self.dirty and not final):
            return
        keep = t.verdict(final)
        if keep is None:
            return
        remember_tier(self._trial_key(), keep, t.gain)
        self._kept = (self._trial_key(), (keep, t.gain))
        if keep == "interp":
            self.keep_interp = True
            self.code_handle, self._code_key, self.pending, self.tier_used = self.interpreter(), None, None, "interp"

    def _kept_tier(self) -> tuple[str, float] | None:
        """tuning.remembered_tier of this store's code, read once per code (a rebuild asks several times)."""
        key = self._trial_key()
        if self._kept is None or self._kept[0] != key:
            self._kept = (key, remembered_tier(key))
        return self._kept[1]

    def _trial_key(self) -> str:
        """What a TierTrial's choice is kept under: the code, the batch's size (its lanes' divergence), the
        memory layout."""
        s = self.store
        return f"{self._what}/{s.n.bit_length()}/{s.memory_layout}"

    def _made(self, code: StoreCode) -> Any:
        """The build of `code` where the compile cache has it and it loads; else None, and the run interprets
        (a GPU that cannot give the build's stack, a module the driver refuses)."""
        try:
            return self.store.backend.compile(code, cached_only=True, layout=self.store.memory_layout)
        except (WasmGpuError, RuntimeError, MemoryError):
            return None

    def _sigs(self) -> dict[int, tuple[int, int]]:
        return {sid: (slot_count(t.params), slot_count(t.results)) for t, sid in self.store.sigs.items()}

    def compiled_source(self, pieces: bool | None = None, interpreted: frozenset[int] | None = None) -> str:
        """The store's code as C (compiler/to_c.py), as the compiled tier builds it (in pieces where in_pieces
        says, and without the functions left_to_interpreter names, unless told)."""
        s = self.store
        if pieces is None:
            pieces = in_pieces(s.backend.name, s.code, self._infos())
        if interpreted is None:
            interpreted = left_to_interpreter(s.backend.name, s.code, self._infos(), pieces)
        return compile_store(s.code, self._infos(), self._sigs(), len(s.mems), pieces=pieces, regions=s.try_regions,
                             interpreted=interpreted)

    def _infos(self) -> list[FuncInfo]:
        return [FuncInfo(f.entry, f.nparams, f.nlocals, f.frame, f.host_index, slot_count(f.type.params),
                         slot_count(f.type.results), _wide(f.type.params), _wide(f.type.results))
                for f in self.store.funcs]
