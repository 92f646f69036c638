// The wasmgpu interpreter: one source, compiled by NVRTC for the GPU and by the
// host C++ compiler for the CPU. One call of vm_step runs one instance for at
// most one fuel slice; all of its state lives in the arrays named by the
// parameter block P, so execution resumes where it stopped.
#pragma once

// A compiled store's build names its step function VM_STEP before including this header (compiler/to_c.py).
#ifdef VM_STEP
#define WG_COMPILED 1
#endif
#if defined(__CUDACC__) || defined(__CUDACC_RTC__)
#define WG_CUDA 1
#ifdef WG_RDC  // one of several units linked together (vm/build.py): each keeps its own copies
#define DEV static __device__ __forceinline__
#else
#define DEV __device__ __forceinline__
#endif
typedef unsigned char u8;
typedef signed char i8;
typedef unsigned short u16;
typedef short i16;
typedef unsigned int u32;
typedef int i32;
typedef unsigned long long u64;
typedef long long i64;
#else
#include <math.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#define DEV static inline
typedef uint8_t u8;
typedef int8_t i8;
typedef uint16_t u16;
typedef int16_t i16;
typedef uint32_t u32;
typedef int32_t i32;
typedef uint64_t u64;
typedef int64_t i64;
#endif
typedef float f32;
typedef double f64;

#include "isa.h"

// The parameter block (enum Param), the function, state, memory and table records, trap and status codes,
// NO_HOST, the intrinsics, REF_NULL and PAGE: generated into isa.h from compiler/vm_abi.py.

#ifdef WG_CUDA
DEV u32 f32_bits(f32 x) { return __float_as_uint(x); }
DEV f32 bits_f32(u32 x) { return __uint_as_float(x); }
DEV u64 f64_bits(f64 x) { return (u64)__double_as_longlong(x); }
DEV f64 bits_f64(u64 x) { return __longlong_as_double((i64)x); }
DEV u32 clz32(u32 x) { return __clz(x); }
DEV u32 ctz32(u32 x) { return x ? __ffs(x) - 1 : 32; }
DEV u32 popcnt32(u32 x) { return __popc(x); }
DEV u64 clz64(u64 x) { return __clzll(x); }
DEV u64 ctz64(u64 x) { return x ? __ffsll(x) - 1 : 64; }
DEV u64 popcnt64(u64 x) { return __popcll(x); }
#else
DEV u32 f32_bits(f32 x) { u32 b; memcpy(&b, &x, 4); return b; }
DEV f32 bits_f32(u32 x) { f32 f; memcpy(&f, &x, 4); return f; }
DEV u64 f64_bits(f64 x) { u64 b; memcpy(&b, &x, 8); return b; }
DEV f64 bits_f64(u64 x) { f64 f; memcpy(&f, &x, 8); return f; }
DEV u32 clz32(u32 x) { return x ? __builtin_clz(x) : 32; }
DEV u32 ctz32(u32 x) { return x ? __builtin_ctz(x) : 32; }
DEV u32 popcnt32(u32 x) { return __builtin_popcount(x); }
DEV u64 clz64(u64 x) { return x ? __builtin_clzll(x) : 64; }
DEV u64 ctz64(u64 x) { return x ? __builtin_ctzll(x) : 64; }
DEV u64 popcnt64(u64 x) { return __builtin_popcountll(x); }
#endif

// NaN results take the canonical pattern: valid for both nan:canonical and nan:arithmetic,
// and the same on every backend (CUDA's own default NaN is not canonical).
DEV f32 canon_f32(f32 x) { return x != x ? bits_f32(0x7fc00000u) : x; }
DEV f64 canon_f64(f64 x) { return x != x ? bits_f64(0x7ff8000000000000ull) : x; }
// The same on raw bits, where the compiled tier lets a NaN's bits be seen (compiler/nan_plan.py).
DEV u64 canon_b64(u64 x) { return (x & 0x7fffffffffffffffull) > 0x7ff0000000000000ull ? 0x7ff8000000000000ull : x; }
DEV u32 canon_b32(u32 x) { return (x & 0x7fffffffu) > 0x7f800000u ? 0x7fc00000u : x; }
DEV f32 f32_abs(f32 x) { return bits_f32(f32_bits(x) & 0x7fffffffu); }
DEV f32 f32_neg(f32 x) { return bits_f32(f32_bits(x) ^ 0x80000000u); }
DEV f64 f64_abs(f64 x) { return bits_f64(f64_bits(x) & 0x7fffffffffffffffull); }
DEV f64 f64_neg(f64 x) { return bits_f64(f64_bits(x) ^ 0x8000000000000000ull); }
DEV f32 f32_copysign(f32 x, f32 y) { return bits_f32((f32_bits(x) & 0x7fffffffu) | (f32_bits(y) & 0x80000000u)); }
DEV f64 f64_copysign(f64 x, f64 y) {
  return bits_f64((f64_bits(x) & 0x7fffffffffffffffull) | (f64_bits(y) & 0x8000000000000000ull));
}
DEV f32 f32_min(f32 x, f32 y) {
  if (x != x || y != y) return bits_f32(0x7fc00000u);
  if (x == y) return bits_f32(f32_bits(x) | f32_bits(y));  // -0 wins
  return x < y ? x : y;
}
DEV f32 f32_max(f32 x, f32 y) {
  if (x != x || y != y) return bits_f32(0x7fc00000u);
  if (x == y) return bits_f32(f32_bits(x) & f32_bits(y));  // +0 wins
  return x > y ? x : y;
}
DEV f64 f64_min(f64 x, f64 y) {
  if (x != x || y != y) return bits_f64(0x7ff8000000000000ull);
  if (x == y) return bits_f64(f64_bits(x) | f64_bits(y));
  return x < y ? x : y;
}
DEV f64 f64_max(f64 x, f64 y) {
  if (x != x || y != y) return bits_f64(0x7ff8000000000000ull);
  if (x == y) return bits_f64(f64_bits(x) & f64_bits(y));
  return x > y ? x : y;
}

#define CLZ32 clz32
#define CTZ32 ctz32
#define POPCNT32 popcnt32
#define CLZ64 clz64
#define CTZ64 ctz64
#define POPCNT64 popcnt64
#define CANON_F32 canon_f32
#define CANON_F64 canon_f64
#define F32_ABS f32_abs
#define F32_NEG f32_neg
#define F64_ABS f64_abs
#define F64_NEG f64_neg
#define F32_MIN f32_min
#define F32_MAX f32_max
#define F64_MIN f64_min
#define F64_MAX f64_max
#define F32_COPYSIGN f32_copysign
#define F64_COPYSIGN f64_copysign
#define F32_BITS f32_bits
#define F64_BITS f64_bits
#define BITS_F32 bits_f32
#define BITS_F64 bits_f64

// SIMD: a v128 is two slots, V128{lo, hi}; simd_apply_inline computes every non-memory SIMD op (generated from
// compiler/simd.py). SIMD_NOINLINE keeps the GPU interpreter's SIMD and atomic ops (outside_step) out of its loop.
#if defined(WG_CUDA) && defined(WG_RDC)
#define SIMD_NOINLINE static __device__ __noinline__
#elif defined(WG_CUDA)
#define SIMD_NOINLINE __device__ __noinline__
#else
#define SIMD_NOINLINE static __attribute__((noinline))
#endif
#include "simd.h"

// Slot access: slot k of the current frame.
// fb points at slot 0 of the current frame (recomputed when fp changes); ssb is the slot stride in bytes,
// below 2^32, so an access is one 32x32->64 multiply-add (IMAD.WIDE.U32 on the GPU).
#define SLOT(k) (*(u64*)((u8*)fb + (u64)(u32)(k) * ssb))
#define RD_U64(k) (SLOT(k))
#define RD_U32(k) ((u32)SLOT(k))
#define RD_F32(k) (bits_f32((u32)SLOT(k)))
#define RD_F64(k) (bits_f64(SLOT(k)))
#define WR_U64(k, v) (SLOT(k) = (u64)(v))
#define WR_U32(k, v) (SLOT(k) = (u64)(u32)(v))
#define WR_F32(k, v) (SLOT(k) = (u64)f32_bits(v))
#define WR_F64(k, v) (SLOT(k) = f64_bits(v))
#define A a
#define B b
#define C c
#define NEXT continue
#define NEXT_WORD() (code[pc++])
// A taken branch; backward ones spend fuel, and an empty tank ends the slice there.
#define BRANCH(t) do { u32 t_ = (t); \
    if (t_ <= here && --fuel == 0) { pc = t_; goto out_of_fuel; } \
    pc = t_; } while (0)
#define TRAP(name) do { trap = TRAP_##name; goto trapped; } while (0)
#define STATE(f) st[(u64)(f) * N + inst]

// The cached memory (the one last touched): cref is where its bytes are, csize its current size.
#define USE_MEM(m) do { if ((m) != cm) { cm = (m); cref = mem_ref(mems, cm, inst, N); \
    csize = (u64)mem_pages[(u64)cm * N + inst] * PAGE; } } while (0)
// A bounds check that fails is made again with the memory's size read anew: another thread (lane) of the
// process may have grown a memory they share since this step read it. The compiled tier checks again in
// place; the interpreter traps, and vm_launch runs the access again in a new step (which reads the sizes
// anew), which keeps the check out of the interpreter's registers.
#ifdef WG_COMPILED
#define PAST(fails) ((fails) && ((csize = (u64)*(volatile u32*)&mem_pages[(u64)cm * N + inst] * PAGE), (fails)))
#else
#define PAST(fails) (fails)
#endif
// Loads and stores: the address in X, ext = static offset | memory << 32.
#define LOAD_MEM(T, v) do { \
    u64 ea = (u64)(u32)X + (u32)EXT; USE_MEM((u32)(EXT >> 32)); \
    if (PAST(ea + sizeof(T) > csize)) TRAP(MEM_OOB); \
    v = mem_load<T>(cref, ea); } while (0)
#define STORE_MEM(T, v) do { \
    u64 ea = (u64)(u32)X + (u32)EXT; USE_MEM((u32)(EXT >> 32)); \
    if (PAST(ea + sizeof(T) > csize)) TRAP(MEM_OOB); \
    mem_store<T>(cref, ea, v); } while (0)
// The same for a memory with 64-bit addresses (memory64): the sum may wrap, an address may pass any size.
#define MEM64_EA(T, ea) \
    u64 ea = X + (u32)EXT; USE_MEM((u32)(EXT >> 32)); \
    if (PAST(ea < X || ea >= csize || csize - ea < sizeof(T))) TRAP(MEM_OOB);
#define LOAD_MEM64(T, v) do { MEM64_EA(T, ea) v = mem_load<T>(cref, ea); } while (0)
#define STORE_MEM64(T, v) do { MEM64_EA(T, ea) mem_store<T>(cref, ea, v); } while (0)
// Whether [d, d + n) passes `size` (64-bit operands: the sum may wrap).
#define OUT_OF(d, n, size) ((n) > (size) || (d) > (size) - (n))
#define TBL_BASE(t) ((u64*)tables[(t) * T_FIELDS + T_BASE] + (u64)inst * tables[(t) * T_FIELDS + T_CAP])
#define TBL_SIZE(t) (table_sizes[(u64)(t) * N + inst])
// call_indirect's checks (and return_call_indirect's): callee <- the function at index idx of table t, if it
// has signature sig; else a trap.
#define RESOLVE_INDIRECT(idx, t, sig) do { \
    if ((idx) >= TBL_SIZE(t)) TRAP(UNDEFINED_ELEMENT); \
    const u64 ref_ = TBL_BASE(t)[idx]; \
    if (ref_ == REF_NULL) TRAP(UNINITIALIZED_ELEMENT); \
    if (funcs[ref_ * F_FIELDS + F_SIG] != (sig)) TRAP(SIG_MISMATCH); \
    callee = (u32)ref_; } while (0)
// Whether this instance dropped data or element segment `seg` (param: P_DATA_DROPPED or P_ELEM_DROPPED).
#define DROPPED(param, seg) (((u8*)P[param])[(u64)(seg) * N + inst])

// Linear memory: contiguous per instance (WG_CONTIGUOUS on the GPU, the default there too: lanes that touch
// their own data at their own addresses then share sectors, and the lanes at a memory.copy or memory.fill
// move each range together), or, on the GPU, 4-byte words interleaved across instances (word w of instance
// i at base[w * N + i]; memory_layout="interleaved"), so that lanes touching the same address coalesce.
// WG_INTERLEAVED builds the GPU's layouts for the CPU, so CI runs the GPU's memory code too.
#if (defined(WG_CUDA) || defined(WG_INTERLEAVED)) && !defined(WG_CONTIGUOUS)
#ifdef WG_CUDA
DEV u32 funnel_right(u32 lo, u32 hi, u32 sh) { return __funnelshift_r(lo, hi, sh); }
#else
DEV u32 funnel_right(u32 lo, u32 hi, u32 sh) { return (u32)((((u64)hi << 32) | lo) >> sh); }
#endif
struct MemRef { u32* w; u64 st; };
// A memory the lanes of a process share (threads, M_SHIFT > 0) has one copy per process.
DEV MemRef mem_ref(const u64* mems, u64 m, u32 inst, u64 N) {
  MemRef r;
  const u32 sh = (u32)mems[m * M_FIELDS + M_SHIFT];
  r.w = (u32*)mems[m * M_FIELDS + M_BASE] + (inst >> sh);
  r.st = N >> sh;
  return r;
}
DEV u32* mem_word(MemRef r, u64 a) { return r.w + (a >> 2) * r.st; }
DEV u8* mem_byte(MemRef r, u64 a) { return (u8*)mem_word(r, a) + (a & 3); }
// Unaligned accesses (rare: compilers emit them for packed data and byte-wise copies) take the two or
// three words they span: a few instructions, where byte by byte unrolled made a quarter of a compiled
// store's machine code (json's). A word is read only if the access reaches it (memory is whole words).
template <typename T> DEV T mem_load(MemRef r, u64 a) {
  const u32 sh = (a & 3) * 8;
  const u32* p = mem_word(r, a);
  if constexpr (sizeof(T) <= 4) {
    if ((a & (sizeof(T) - 1)) == 0) return *(const T*)mem_byte(r, a);
    return (T)funnel_right(p[0], sh + 8 * sizeof(T) > 32 ? p[r.st] : 0, sh);
  } else {
    const u32 w1 = p[r.st];
    if (sh == 0) return (T)p[0] | ((T)w1 << 32);
    return (T)funnel_right(p[0], w1, sh) | ((T)funnel_right(w1, p[2 * r.st], sh) << 32);
  }
}
// `bytes` (1 to 4) of v at any address: the bits of the one or two words they cover.
DEV void store_bits(MemRef r, u64 a, u32 v, u32 bytes) {
  const u32 sh = (a & 3) * 8;
  u32* p = mem_word(r, a);
  const u64 m = (bytes == 4 ? 0xffffffffull : (1ull << (8 * bytes)) - 1) << sh;
  const u64 x = (u64)v << sh;
  p[0] = (p[0] & ~(u32)m) | (u32)x;
  if (m >> 32) p[r.st] = (p[r.st] & ~(u32)(m >> 32)) | (u32)(x >> 32);
}
template <typename T> DEV void mem_store(MemRef r, u64 a, T v) {
  if constexpr (sizeof(T) <= 4) {
    if ((a & (sizeof(T) - 1)) == 0) { *(T*)mem_byte(r, a) = v; return; }
    store_bits(r, a, (u32)v, sizeof(T));
  } else if ((a & 3) == 0) {
    u32* p = mem_word(r, a);
    p[0] = (u32)v;
    p[r.st] = (u32)(v >> 32);
  } else {
    store_bits(r, a, (u32)v, 4);
    store_bits(r, a + 4, (u32)(v >> 32), 4);
  }
}
// memmove within one instance's memory: words where the ends allow, bytes at the edges. A source at
// another alignment is shifted out of word pairs; the pair's far word is carried to the next step.
// Bytes the funnel takes were read before any store could reach them (stores trail the reads).
DEV void mem_copy(MemRef r, u64 d, u64 s, u64 n) {
  if (d == s || n == 0) return;
  if (d < s || d >= s + n) {
    u64 k = 0;
    for (; k < n && ((d + k) & 3); k++) *mem_byte(r, d + k) = *mem_byte(r, s + k);
    const u32 sh = ((s + k) & 3) * 8;
    if (k + 4 <= n) {
      const u32* p = mem_word(r, s + k);
      u32 lo = p[0];
      for (; k + 4 <= n; k += 4, p += r.st) {
        // The word after holds byte s+k+3 when the source is unaligned: inside the range.
        const u32 hi = sh ? p[r.st] : 0;
        *mem_word(r, d + k) = sh ? funnel_right(lo, hi, sh) : lo;
        lo = sh ? hi : (k + 8 <= n ? p[r.st] : 0);
      }
    }
    for (; k < n; k++) *mem_byte(r, d + k) = *mem_byte(r, s + k);
  } else {  // overlapping, destination above: from the top down
    u64 k = n;
    for (; k > 0 && ((d + k) & 3); k--) *mem_byte(r, d + k - 1) = *mem_byte(r, s + k - 1);
    const u32 sh = ((s + k) & 3) * 8;
    if (k >= 4) {
      const u32* p = mem_word(r, s + k - 4);
      u32 hi = sh ? p[r.st] : 0;  // holds byte s+k-1 when the source is unaligned
      for (; k >= 4; k -= 4, p -= r.st) {
        const u32 lo = p[0];
        *mem_word(r, d + k - 4) = sh ? funnel_right(lo, hi, sh) : lo;
        hi = lo;
      }
    }
    for (; k > 0; k--) *mem_byte(r, d + k - 1) = *mem_byte(r, s + k - 1);
  }
}
DEV void mem_fill(MemRef r, u64 d, u8 v, u64 n) {
  u64 k = 0;
  for (; k < n && ((d + k) & 3); k++) *mem_byte(r, d + k) = v;
  const u32 w = 0x01010101u * v;
  for (; k + 4 <= n; k += 4) *mem_word(r, d + k) = w;
  for (; k < n; k++) *mem_byte(r, d + k) = v;
}
// The 32-bit word holding byte a (atomics: an aligned access of at most 4 bytes lies in one word).
DEV u32* mem_word32(MemRef r, u64 a) { return mem_word(r, a); }
#define WG_WORDS_APART 1  // a 64-bit access spans two words that are not adjacent
// Bytes from a flat device buffer (a data segment) into memory.
DEV void mem_init(MemRef r, u64 d, const u8* src, u64 n) {
  u64 k = 0;
  for (; k < n && ((d + k) & 3); k++) *mem_byte(r, d + k) = src[k];
  for (; k + 4 <= n; k += 4)
    *mem_word(r, d + k) = (u32)src[k] | ((u32)src[k + 1] << 8) | ((u32)src[k + 2] << 16) | ((u32)src[k + 3] << 24);
  for (; k < n; k++) *mem_byte(r, d + k) = src[k];
}
#else
struct MemRef { u8* b; };
DEV MemRef mem_ref(const u64* mems, u64 m, u32 inst, u64 N) {
  (void)N;
  MemRef r;
  r.b = (u8*)mems[m * M_FIELDS + M_BASE] + (u64)(inst >> (u32)mems[m * M_FIELDS + M_SHIFT]) * mems[m * M_FIELDS + M_CAP];
  return r;
}
DEV u32* mem_word32(MemRef r, u64 a) { return (u32*)(r.b + (a & ~3ull)); }
DEV u64* mem_word64(MemRef r, u64 a) { return (u64*)(r.b + a); }
#ifdef WG_CUDA
// An instance's memory starts 64 KiB-aligned, so an address's alignment is its pointer's. Unaligned
// accesses go byte by byte (the GPU's memcpy took them as aligned: misaligned-address faults).
template <typename T> DEV T mem_load(MemRef r, u64 a) {
  if ((a & (sizeof(T) - 1)) == 0) return *(const T*)(r.b + a);
  T v = 0;
  for (u32 k = 0; k < sizeof(T); k++) v |= (T)r.b[a + k] << (8 * k);
  return v;
}
template <typename T> DEV void mem_store(MemRef r, u64 a, T v) {
  if ((a & (sizeof(T) - 1)) == 0) { *(T*)(r.b + a) = v; return; }
  for (u32 k = 0; k < sizeof(T); k++) r.b[a + k] = (u8)(v >> (8 * k));
}
// The lanes that reached this point together (`mask`), and this lane's number among them.
struct Crew { u32 mask, rank, count; };
DEV Crew crew() {
  const u32 mask = __activemask();
  return {mask, (u32)__popc(mask & ((1u << (threadIdx.x & 31)) - 1)), (u32)__popc(mask)};
}
// Units [0, n) of dst, unit k being load(k), by the lanes of crew c together: each step moves MOVE_RUNS
// runs of c.count consecutive units, so that its accesses share sectors and several loads are in flight.
// Each step reads before it writes, and the steps go up (`up`) or down: a memmove, when going up for
// dst < src and down otherwise. Four runs per step made bulkmem's copies 1.3x faster, but in the
// interpreter (VM_STEP not yet defined here, or the runtime of a store compiled in part, which runs it)
// they cost registers everywhere (rs_hashmap -22%).
#if defined(VM_STEP) && !defined(WG_HYBRID)
#define MOVE_RUNS 4
#else
#define MOVE_RUNS 1
#endif
template <typename T, typename Load> DEV void move_run(T* dst, u64 n, bool up, Crew c, Load load) {
  for (u64 done = 0; done < n; done += MOVE_RUNS * (u64)c.count) {
    T v[MOVE_RUNS];
#pragma unroll
    for (u32 q = 0; q < MOVE_RUNS; q++) {
      const u64 i = done + q * c.count + c.rank;
      if (i < n) v[q] = load(up ? i : n - 1 - i);
    }
    __syncwarp(c.mask);
#pragma unroll
    for (u32 q = 0; q < MOVE_RUNS; q++) {
      const u64 i = done + q * c.count + c.rank;
      if (i < n) dst[up ? i : n - 1 - i] = v[q];
    }
    __syncwarp(c.mask);
  }
}
template <typename T> DEV void move_units(T* dst, const T* src, u64 n, bool up, Crew c) {
  move_run<T>(dst, n, up, c, [src](u64 k) { return src[k]; });
}
template <typename T> DEV void fill_run(T* dst, T v, u64 n, Crew c) {
  for (u64 k = c.rank; k < n; k += c.count) dst[k] = v;
}
// The lanes that reach a memory.copy together serve each one's copy in turn: one lane's bytes are
// consecutive in this layout, so lanes moving them together use whole sectors (bench/mem_layout.py, coop:
// 19x the per-lane copy). Whole destination words, bytes at the edges; a source at another alignment is
// shifted out of the two aligned words around each source word, both of which hold bytes of the range
// (so lie in memory), and only those bytes, read before this step's writes, reach the result.
DEV void mem_copy(MemRef r, u64 d, u64 s, u64 n) {
  const Crew c = crew();
  for (u32 todo = c.mask; todo; todo &= todo - 1) {
    const u32 j = __ffs(todo) - 1;
    u8* b = (u8*)__shfl_sync(c.mask, (unsigned long long)r.b, j);
    const u64 dj = __shfl_sync(c.mask, (unsigned long long)d, j), sj = __shfl_sync(c.mask, (unsigned long long)s, j);
    const u64 nj = __shfl_sync(c.mask, (unsigned long long)n, j);
    if (dj == sj || nj == 0) continue;
    const bool up = dj < sj;
    u8* dst = b + dj;
    const u8* src = b + sj;
    const u64 lead = (4 - ((u64)dst & 3)) & 3;
    if (nj < lead + 4) {
      move_units<u8>(dst, src, nj, up, c);
      continue;
    }
    const u64 words = (nj - lead) / 4, tail = nj - lead - 4 * words;
    const u8* ws = src + lead;  // the source of the first whole destination word
    const u32 sh = ((u64)ws & 3) * 8;
    const u32* p = (const u32*)(ws - sh / 8);
    // The pieces in the copy's direction: head bytes, words, tail bytes (or the reverse).
    if (up) move_units<u8>(dst, src, lead, up, c);
    else move_units<u8>(dst + lead + 4 * words, ws + 4 * words, tail, up, c);
    if (sh) move_run<u32>((u32*)(dst + lead), words, up, c, [p, sh](u64 k) { return __funnelshift_r(p[k], p[k + 1], sh); });
    else move_units<u32>((u32*)(dst + lead), p, words, up, c);
    if (up) move_units<u8>(dst + lead + 4 * words, ws + 4 * words, tail, up, c);
    else move_units<u8>(dst, src, lead, up, c);
  }
  __syncwarp(c.mask);
}
DEV void mem_fill(MemRef r, u64 d, u8 v, u64 n) {
  const Crew c = crew();
  for (u32 todo = c.mask; todo; todo &= todo - 1) {
    const u32 j = __ffs(todo) - 1;
    u8* dst = (u8*)__shfl_sync(c.mask, (unsigned long long)r.b, j) + __shfl_sync(c.mask, (unsigned long long)d, j);
    const u64 nj = __shfl_sync(c.mask, (unsigned long long)n, j);
    const u8 vj = (u8)__shfl_sync(c.mask, (u32)v, j);
    const u64 lead = (4 - ((u64)dst & 3)) & 3;
    if (nj < lead + 4) { fill_run<u8>(dst, vj, nj, c); continue; }
    const u64 words = (nj - lead) / 4;
    fill_run<u8>(dst, vj, lead, c);
    fill_run<u32>((u32*)(dst + lead), 0x01010101u * vj, words, c);
    fill_run<u8>(dst + lead + 4 * words, vj, nj - lead - 4 * words, c);
  }
  __syncwarp(c.mask);
}
DEV void mem_init(MemRef r, u64 d, const u8* src, u64 n) { for (u64 k = 0; k < n; k++) r.b[d + k] = src[k]; }
#else
template <typename T> DEV T mem_load(MemRef r, u64 a) { T v; memcpy(&v, r.b + a, sizeof(T)); return v; }
template <typename T> DEV void mem_store(MemRef r, u64 a, T v) { memcpy(r.b + a, &v, sizeof(T)); }
DEV void mem_copy(MemRef r, u64 d, u64 s, u64 n) { memmove(r.b + d, r.b + s, n); }
DEV void mem_fill(MemRef r, u64 d, u8 v, u64 n) { memset(r.b + d, v, n); }
DEV void mem_init(MemRef r, u64 d, const u8* src, u64 n) { memcpy(r.b + d, src, n); }
#endif
#endif
// memory.copy from one memory to another (multi-memory: rare), a byte at a time in any layout.
DEV void mem_copy_across(MemRef dst, MemRef src, u64 d, u64 s, u64 n) {
  for (u64 k = 0; k < n; k++) mem_store<u8>(dst, d + k, mem_load<u8>(src, s + k));
}
DEV void move_refs(u64* d, const u64* s, u64 n) {
  if (d < s) { for (u64 k = 0; k < n; k++) d[k] = s[k]; }
  else { for (u64 k = n; k > 0; k--) d[k - 1] = s[k - 1]; }
}

// Atomics (threads): compare-and-swap on a 32-bit or 64-bit word: whether *p held `expect` (now v).
DEV bool cas32(u32* p, u32 expect, u32 v) {
#ifdef WG_CUDA
  return atomicCAS((unsigned*)p, expect, v) == expect;
#else
  return __atomic_compare_exchange_n(p, &expect, v, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
#endif
}
#ifndef WG_WORDS_APART
DEV bool cas64(u64* p, u64 expect, u64 v) {
#ifdef WG_CUDA
  return atomicCAS((unsigned long long*)p, expect, v) == expect;
#else
  return __atomic_compare_exchange_n(p, &expect, v, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
#endif
}
#endif
// The new value of a read-modify-write (isa.py ATOMIC_KINDS from add on: 0 add ... 5 xchg).
DEV u64 rmw_value(u32 k, u64 old, u64 v) {
  switch (k) {
    case 0: return old + v;
    case 1: return old - v;
    case 2: return old & v;
    case 3: return old | v;
    case 4: return old ^ v;
    default: return v;
  }
}
// Read-modify-write k (6: cmpxchg, expected v, replacement w) of the nb aligned bytes at ea; the old value.
DEV u64 atomic_rmw(MemRef r, u64 ea, u32 nb, u32 k, u64 v, u64 w) {
  const u64 mask = nb == 8 ? ~0ull : (1ull << (8 * nb)) - 1;
  if (nb <= 4) {
    u32* p = mem_word32(r, ea);
    const u32 sh = (u32)(ea & 3) * 8;
    for (;;) {
      const u32 word = *(volatile u32*)p;
      const u64 old = (word >> sh) & mask;
      u64 nv;
      if (k == 6) {
        if (old != (v & mask)) return old;
        nv = w & mask;
      } else {
        nv = rmw_value(k, old, v) & mask;
      }
      if (cas32(p, word, (word & ~(u32)(mask << sh)) | (u32)(nv << sh))) return old;
    }
  }
#ifdef WG_WORDS_APART
  // Two words apart: atomic_exec holds the process's lock where other threads share the memory.
  const u64 old = mem_load<u64>(r, ea);
  if (k != 6 || old == v) mem_store<u64>(r, ea, k == 6 ? w : rmw_value(k, old, v));
  return old;
#else
  u64* p = mem_word64(r, ea);
  for (;;) {
    const u64 old = *(volatile u64*)p;
    if (k == 6 && old != v) return old;
    if (cas64(p, old, k == 6 ? w : rmw_value(k, old, v))) return old;
  }
#endif
}

// Threads (lanes of one process, sharing its memories): a lock per process (P_LOCKS) makes a wait's compare
// and parking one step for the notifies of the other lanes.
DEV void group_lock(u32* l) {
#ifdef WG_CUDA
  while (atomicCAS(l, 0u, 1u) != 0u) __nanosleep(64);
  __threadfence();
#else
  u32 free_ = 0;
  while (!__atomic_compare_exchange_n(l, &free_, 1u, false, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) free_ = 0;
#endif
}
DEV void group_unlock(u32* l) {
#ifdef WG_CUDA
  __threadfence();
  atomicExch(l, 0u);
#else
  __atomic_store_n(l, 0u, __ATOMIC_RELEASE);
#endif
}
// memory.atomic.notify on a memory the 2^sh lanes of inst's process share: wakes at most `count` of them that
// wait on (mem, ea), in lane order; how many it woke.
DEV u32 notify_lanes(const u64* P, u32 inst, u32 sh, u32 mem, u64 ea, u32 count) {
  const u64 N = P[P_N];
  u32* st = (u32*)P[P_STATE];
  const u32 first = (inst >> sh) << sh, lo = (u32)ea, hi = (u32)(ea >> 32) | (mem << 16);
  u32* lock = (u32*)P[P_LOCKS] + (inst >> sh);
  u32 woken = 0;
  group_lock(lock);
  for (u32 k = 0; k < (1u << sh) && woken < count; k++) {
    const u64 j = first + k;
    volatile u32* w = st + (u64)S_WAIT * N + j;
    if (*w == WAIT_PARKED && st[(u64)S_WAIT_LO * N + j] == lo && st[(u64)S_WAIT_HI * N + j] == hi) {
      *w = WAIT_NOTIFIED;
      woken++;
    }
  }
  group_unlock(lock);
  return woken;
}
// memory.grow of a memory the 2^sh lanes of inst's process share (reserved at its maximum, so it never waits
// for the host): the size moves in every lane's row. The old size, or ~0 where it cannot grow.
// memory.grow's result: the old size, or -1 (an i32, or an i64 where c says the memory is 64-bit).
DEV u64 grown(u64 was, u32 c) { return was != ~0ull ? was : (c & 0x8000u) ? ~0ull : 0xffffffffull; }
SIMD_NOINLINE u64 grow_group(u32* mem_pages, u64 gm, u64 N, u32 inst, u32 sh, u64 delta, u64 max) {
  u32* rows = mem_pages + gm * N + ((inst >> sh) << sh);
  for (;;) {
    const u32 old = *(volatile u32*)rows;
    if (delta > max || (u64)old + delta > max) return ~0ull;
    const u32 want = (u32)(old + delta);
    if (!cas32(rows, old, want)) continue;
    for (u32 k = 1; k < (1u << sh); k++)
      for (u32 cur = *(volatile u32*)(rows + k); cur < want && !cas32(rows + k, cur, want);)
        cur = *(volatile u32*)(rows + k);
    return old;
  }
}

#ifdef WG_OPCOUNT
// Dynamic opcode counts, for choosing the hot set, and counts per code word (bench/opcount.py; CPU build,
// one thread).
#define WG_PCCOUNT_WORDS (1u << 20)
// Defined once: the SIMD ops' unit (WG_OUTSIDE_UNIT) only refers to them.
#ifdef WG_OUTSIDE_UNIT
extern "C" { extern u64 wg_opcount[OP_COUNT]; extern u64 wg_pccount[WG_PCCOUNT_WORDS]; }
#else
extern "C" { u64 wg_opcount[OP_COUNT]; u64 wg_pccount[WG_PCCOUNT_WORDS]; }
#endif
#define COUNT_OP(op) (wg_opcount[op]++, wg_pccount[here < WG_PCCOUNT_WORDS ? here : 0]++)
#else
#define COUNT_OP(op)
#endif

// A clock in nanoseconds, for the window tuner's trial launches (runtime/tuning.py); 0 on the CPU.
DEV unsigned long long global_ns() {
#ifdef WG_CUDA
  unsigned long long t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  return t;
#else
  return 0;
#endif
}

// Sleeps ns nanoseconds (memory.atomic.wait's timeout, when no thread can notify).
DEV void wait_ns(u64 ns) {
#ifdef WG_CUDA
  const unsigned long long end = global_ns() + ns;
  while (global_ns() < end) __nanosleep(1000);
#else
  struct timespec t;
  t.tv_sec = (time_t)(ns / 1000000000ull);
  t.tv_nsec = (long)(ns % 1000000000ull);
  nanosleep(&t, 0);
#endif
}

// A copy of x the optimizer cannot see through.
DEV u32 opaque(u32 x) {
#ifdef WG_CUDA
  asm volatile("mov.u32 %0, %0;" : "+r"(x));
#else
  asm volatile("" : "+r"(x));
#endif
  return x;
}

#include "wasi_fast.h"

// Reconvergence (CUDA): a lane at most `near` code words ahead of its warp's lowest pc waits (0: none
// waits). The runtime chooses near per launch (runtime/tuning.py): the best window differs per program.
#ifdef WG_SIMT
// The warp model (cpu.cpp wg_simt_run, bench/simt.py) sets this to 1 before each vm_step call: one op per
// call. A WG_SIMT build serves only that model.
static u32 wg_simt_ops;
#endif

// The cold structural ops, as macros: the interpreter's second switch and the compiled tier
// (compiler/to_c.py) both expand them. They read a, b, c, imm32 and follow-on words at pc, and end
// with NEXT.
// SIMD memory access (isa.py SIMD_LOAD, SIMD_STORE; `sub` the wasm op's number after 0xFD): the bytes it moves.
DEV u32 simd_mem_bytes(u32 sub) {
  switch (sub) {
    case 0: case 11: return 16;
    case 1: case 2: case 3: case 4: case 5: case 6: case 10: case 87: case 91: case 93: return 8;
    case 9: case 86: case 90: case 92: return 4;
    case 8: case 85: case 89: return 2;
    default: return 1;
  }
}
// A load's result from the bytes read (m, zero-extended) and, for a lane load, the vector v it writes into:
// the same op as an extend, a splat or a replace_lane on them.
DEV V128 simd_load_result(u32 sub, u32 lane, V128 m, V128 v) {
  u32 op;
  switch (sub) {
    case 1: op = 135; break;  // v128.load8x8_s: i16x8.extend_low_i8x16_s
    case 2: op = 137; break;
    case 3: op = 167; break;
    case 4: op = 169; break;
    case 5: op = 199; break;
    case 6: op = 201; break;
    case 7: case 8: case 9: case 10: op = sub + 8; break;  // load*_splat: i8x16.splat ... i64x2.splat
    case 84: return simd_apply_inline(23, lane, v, m, m);  // load*_lane: *.replace_lane
    case 85: return simd_apply_inline(26, lane, v, m, m);
    case 86: return simd_apply_inline(28, lane, v, m, m);
    case 87: return simd_apply_inline(30, lane, v, m, m);
    default: return m;  // v128.load, load32_zero, load64_zero
  }
  return simd_apply_inline(op, 0, m, m, m);
}
// The nb bytes at ea (zero-extended), and the vector {lo, hi} (nb == 16) or its lane `lane` to ea: the caller
// checks the bounds.
DEV V128 simd_read(MemRef r, u64 ea, u32 nb) {
  V128 m = {0, 0};
  switch (nb) {
    case 16: m.lo = mem_load<u64>(r, ea); m.hi = mem_load<u64>(r, ea + 8); break;
    case 8: m.lo = mem_load<u64>(r, ea); break;
    case 4: m.lo = mem_load<u32>(r, ea); break;
    case 2: m.lo = mem_load<u16>(r, ea); break;
    default: m.lo = mem_load<u8>(r, ea);
  }
  return m;
}
DEV void simd_write(MemRef r, u64 ea, u32 nb, u32 lane, u64 lo, u64 hi) {
  if (nb == 16) { mem_store<u64>(r, ea, lo); mem_store<u64>(r, ea + 8, hi); return; }
  const u32 bit = lane * nb * 8;
  const u64 v = bit < 64 ? lo >> bit : hi >> (bit - 64);
  switch (nb) {
    case 8: mem_store<u64>(r, ea, v); break;
    case 4: mem_store<u32>(r, ea, (u32)v); break;
    case 2: mem_store<u16>(r, ea, (u16)v); break;
    default: mem_store<u8>(r, ea, (u8)v);
  }
}
// SIMD_LOAD's and SIMD_STORE's next word w: the effective address, the memory, the op, the lane.
#define SIMD_MEM(w) ((u32)((w) >> 32) & 0x7fff)
#define SIMD_A64(w) (((w) >> 47) & 1)  // the memory's addresses are 64-bit (memory64)
#define SIMD_SUB(w) ((u32)((w) >> 48) & 0xff)
#define SIMD_LANE(w) ((u32)((w) >> 56))

// The interpreter's SIMD ops (isa.py SIMD, SIMD_LOAD, SIMD_STORE): the instruction `word`, its next word s,
// the frame at fb. Returns 0, or the trap.
DEV u32 simd_exec(const u64* P, u32 inst, u64 word, u64 s, u64* fb, u32 ssb) {
  const u32 op = (u32)word & OP_MASK;
  const u32 a = (u32)((word >> 16) & 0xffff), b = (u32)((word >> 32) & 0xffff), c = (u32)(word >> 48);
  if (op == OP_SIMD) {  // operands read before the result is written: they may share its slots
    const u32 z = (u32)(s >> 32) & 0xffff;
    const V128 x = {SLOT(b), SLOT(b + 1)}, y = {SLOT(c), SLOT(c + 1)}, zz = {SLOT(z), SLOT(z + 1)};
    const V128 r = simd_apply_inline((u32)s & 0xffff, (u32)(s >> 16) & 0xff, x, y, zz);
    SLOT(a) = r.lo;
    if ((s >> 24) & 1) SLOT(a + 1) = r.hi;
    return 0;
  }
  const u64 N = P[P_N];
  const u64 x = SIMD_A64(s) ? SLOT(b) : (u64)(u32)SLOT(b);
  const u64 ea = x + (u32)s;
  const u32 nb = simd_mem_bytes(SIMD_SUB(s));
  const MemRef cref = mem_ref((const u64*)P[P_MEMS], SIMD_MEM(s), inst, N);
  if (ea < x || OUT_OF(ea, (u64)nb, (u64)((const u32*)P[P_MEM_PAGES])[(u64)SIMD_MEM(s) * N + inst] * PAGE))
    return TRAP_MEM_OOB;
  if (op == OP_SIMD_STORE) {
    simd_write(cref, ea, nb, SIMD_LANE(s), SLOT(c), SLOT(c + 1));
    return 0;
  }
  const V128 v = {SLOT(c), SLOT(c + 1)};
  const V128 r = simd_load_result(SIMD_SUB(s), SIMD_LANE(s), simd_read(cref, ea, nb), v);
  SLOT(a) = r.lo;
  SLOT(a + 1) = r.hi;
  return 0;
}
// An atomic memory instruction (isa.py ATOMIC): operands at slots b, b + 1, b + 2, the result to slot a, s its
// next word. Where the memory is a process's that its threads (lanes) share, waits park and notifies wake
// them; else no other thread can notify. Returns 0, or the trap.
DEV u32 atomic_exec(const u64* P, u32 inst, u32 a, u32 b, u64 s, u64* fb, u32 ssb) {
  const u64 N = P[P_N];
  const u32 mem = (u32)(s >> 32) & 0xffff, kind = (u32)(s >> 48) & 15, nb = 1u << ((s >> 52) & 3);
  const u64 x = (s >> 58) & 1 ? SLOT(b) : (u64)(u32)SLOT(b);  // memory64: a 64-bit address
  const u64 ea = x + (u32)s;
  const u64 size = (u64)((const u32*)P[P_MEM_PAGES])[(u64)mem * N + inst] * PAGE;
  // wasmtime's order: notify and wait trap as out of bounds first where the address passes 32 bits; then, for
  // every atomic, alignment before bounds.
  if (ea < x || (kind <= 1 && !((s >> 58) & 1) && (ea >> 32))) return TRAP_MEM_OOB;
  if (ea & (nb - 1)) return TRAP_UNALIGNED_ATOMIC;
  if (OUT_OF(ea, (u64)nb, size)) return TRAP_MEM_OOB;
  const MemRef r = mem_ref((const u64*)P[P_MEMS], mem, inst, N);
  const u64 mask = nb == 8 ? ~0ull : (1ull << (8 * nb)) - 1;
  const u32 sh = (u32)((const u64*)P[P_MEMS])[mem * M_FIELDS + M_SHIFT];
#ifdef WG_WORDS_APART
  // A 64-bit value here is two words apart, which no one instruction reads or writes at once: where threads
  // share the memory, its atomics hold the process's lock instead.
  u32* apart = sh && nb == 8 && kind >= 2 ? (u32*)P[P_LOCKS] + (inst >> sh) : 0;
  if (apart) group_lock(apart);
#endif
  u64 res = 0;
  switch (kind) {
    case 0:  // notify: the lanes of this process that wait here; with no other lane, none
      if (sh) res = notify_lanes(P, inst, sh, mem, ea, (u32)SLOT(b + 1));
      break;
    case 1: {  // wait32, wait64: "ok" (0) when notified, "not-equal" (1), or "timed-out" (2)
      if (!((s >> 54) & 1)) return TRAP_EXPECTED_SHARED;
      if (sh) {
        // Other lanes can notify: park (vm_launch makes it status WAITING). A notify, or the host at the
        // timeout, sets S_WAIT, and the lane runs this op again, which then returns.
        u32* st = (u32*)P[P_STATE];
        const u32 was = STATE(S_WAIT);
        if (was == WAIT_NOTIFIED || was == WAIT_TIMED_OUT) {
          STATE(S_WAIT) = WAIT_NONE;
          res = was == WAIT_NOTIFIED ? 0 : 2;
          break;
        }
        u32* lock = (u32*)P[P_LOCKS] + (inst >> sh);
        group_lock(lock);
        const u64 seen = nb == 8 ? mem_load<u64>(r, ea) : mem_load<u32>(r, ea);
        if (seen != (SLOT(b + 1) & mask)) {
          group_unlock(lock);
          res = 1;
          break;
        }
        STATE(S_WAIT_LO) = (u32)ea;
        STATE(S_WAIT_HI) = (u32)(ea >> 32) | (mem << 16);
        STATE(S_WAIT) = WAIT_PARKED;
        STATE(S_PARKS)++;
        group_unlock(lock);
        return TRAP_PARKED;
      }
      const u64 now = nb == 8 ? mem_load<u64>(r, ea) : mem_load<u32>(r, ea);
      if (now != (SLOT(b + 1) & mask)) { res = 1; break; }
      const i64 timeout = (i64)SLOT(b + 2);
      if (timeout < 0) return TRAP_WAIT_FOREVER;
      wait_ns((u64)timeout);
      res = 2;
      break;
    }
    case 2:
      res = nb == 8 ? mem_load<u64>(r, ea) : nb == 4 ? mem_load<u32>(r, ea) : nb == 2 ? mem_load<u16>(r, ea)
                                                                                      : mem_load<u8>(r, ea);
      break;
    case 3: {
      const u64 v = SLOT(b + 1);
      if (nb == 8) mem_store<u64>(r, ea, v);
      else if (nb == 4) mem_store<u32>(r, ea, (u32)v);
      else if (nb == 2) mem_store<u16>(r, ea, (u16)v);
      else mem_store<u8>(r, ea, (u8)v);
      break;
    }
    default: res = atomic_rmw(r, ea, nb, kind - 4, SLOT(b + 1), SLOT(b + 2));
  }
#ifdef WG_WORDS_APART
  if (apart) group_unlock(apart);
#endif
  if ((s >> 55) & 1) SLOT(a) = res;
  return 0;
}
// The interpreter's ops that run apart from its other ones (SIMD, atomics); returns 0, or the trap. The CPU
// interpreter's build has it in a translation unit of its own (vm/build.py host_units: WG_OUTSIDE_APART in
// the interpreter's, WG_OUTSIDE_UNIT in its own), built beside the interpreter: the SIMD ops' code is most of
// the build's time.
#if !defined(WG_CUDA) && !defined(WG_COMPILED) && defined(WG_OUTSIDE_APART)
u32 outside_exec(const u64* P, u32 inst, u64 word, u64 s, u64* fb, u32 ssb);
#else
#if defined(WG_CUDA) || defined(WG_COMPILED)
DEV
#elif !defined(WG_OUTSIDE_UNIT)
static
#endif
u32 outside_exec(const u64* P, u32 inst, u64 word, u64 s, u64* fb, u32 ssb) {
  if (((u32)word & OP_MASK) == OP_ATOMIC)
    return atomic_exec(P, inst, (u32)((word >> 16) & 0xffff), (u32)((word >> 32) & 0xffff), s, fb, ssb);
  return simd_exec(P, inst, word, s, fb, ssb);
}
#endif
// On the GPU, the op at the instance's pc that vm_step left for (status OUTSIDE), run by vm_launch out of its
// loop (a call inside the loop costs its registers); the pc then moves past it, or the instance traps.
SIMD_NOINLINE void outside_step(const u64* P, u32 inst) {
  const u64 N = P[P_N];
  u32* st = (u32*)P[P_STATE];
  const u64* code = (const u64*)P[P_CODE];
  const u32 pc = STATE(S_PC);
  u64* fb = (u64*)P[P_SLOTS] + (u64)inst * P[P_INST_STRIDE] + (u64)STATE(S_FP) * P[P_SLOT_STRIDE];
  STATE(S_STATUS) = STATUS_RUNNING;
  STATE(S_PC) = pc + 2;
  const u32 t = outside_exec(P, inst, code[pc], code[pc + 1], fb, (u32)(P[P_SLOT_STRIDE] * 8));
  if (t) {
    STATE(S_PC) = pc;
    STATE(S_STATUS) = STATUS_TRAPPED;
    STATE(S_TRAP) = t;
  }
}

#define OPC_GLOBAL_GET WR_U64(A, globals[(u64)imm32 * N + inst]); NEXT;
#define OPC_GLOBAL_SET globals[(u64)imm32 * N + inst] = RD_U64(A); NEXT;
#define OPC_MEMORY_SIZE WR_U32(A, mem_pages[(u64)C * N + inst]); NEXT;
// memory.grow of a memory that threads share (grow_group): in the compiled tier here, in the interpreter by
// vm_launch (runs_on), whose code would cost the interpreter's loop registers.
#ifdef WG_COMPILED
#define GROW_GROUP \
  if (const u32 gsh = (u32)mems[gm * M_FIELDS + M_SHIFT]) { \
    WR_U64(A, grown(grow_group(mem_pages, gm, N, inst, gsh, delta, mems[gm * M_FIELDS + M_MAX]), C)); \
    cm = 0xffffffffu; \
    NEXT; \
  }
#else
#define GROW_GROUP if (mems[gm * M_FIELDS + M_SHIFT]) { trap = TRAP_GROW_SHARED; goto trapped; }
#endif
// memory.grow: c is the memory, | 0x8000 for one with 64-bit addresses (memory64: an i64 delta, -1 an i64).
#define OPC_MEMORY_GROW { \
  const u32 gm = C & 0x7fffu; \
  u32 old = mem_pages[(u64)gm * N + inst]; \
  const u64 delta = (C & 0x8000u) ? RD_U64(B) : RD_U32(B); \
  GROW_GROUP \
  if (delta > mems[gm * M_FIELDS + M_MAX] || (u64)old + delta > mems[gm * M_FIELDS + M_MAX]) { \
    WR_U64(A, (C & 0x8000u) ? ~0ull : 0xffffffffull); NEXT; \
  } \
  u64 want = (u64)old + delta; \
  if (want * PAGE > mems[gm * M_FIELDS + M_CAP]) { \
    /* Ask the host for room (it reallocates, or lowers the limit), then run this again. */ \
    STATE(S_HOST_FUNC) = GROW_MEMORY; STATE(S_HOST_FP) = gm; trap = (u32)want; \
    pc = here; status = STATUS_HOSTCALL; goto leave; \
  } \
  mem_pages[(u64)gm * N + inst] = (u32)want; \
  cm = 0xffffffffu;  /* its cached size is stale */ \
  WR_U32(A, old); \
  NEXT; \
}
#define OPC_MEMORY_COPY { \
  u64 x = NEXT_WORD(); \
  u64 m = x & 0xffffffffu, ms = x >> 32; /* destination and source memory */ \
  /* i32 operands are zero-extended in their slots: 64 bits read both kinds */ \
  u64 d = RD_U64(A), s = RD_U64(B), n = RD_U64(C); \
  if (ms == m) { \
    USE_MEM(m); \
    if (PAST(OUT_OF(s, n, csize) || OUT_OF(d, n, csize))) TRAP(MEM_OOB); \
    mem_copy(cref, d, s, n); \
  } else { \
    USE_MEM(ms); \
    if (PAST(OUT_OF(s, n, csize))) TRAP(MEM_OOB); \
    const MemRef from = cref; \
    USE_MEM(m); \
    if (PAST(OUT_OF(d, n, csize))) TRAP(MEM_OOB); \
    mem_copy_across(cref, from, d, s, n); \
  } \
  NEXT; \
}
#define OPC_MEMORY_FILL { \
  u64 m = NEXT_WORD(); \
  u64 d = RD_U64(A), n = RD_U64(C); \
  u8 v = (u8)RD_U32(B); \
  USE_MEM(m); \
  if (PAST(OUT_OF(d, n, csize))) TRAP(MEM_OOB); \
  mem_fill(cref, d, v, n); \
  NEXT; \
}
#define OPC_MEMORY_INIT { \
  u64 x = NEXT_WORD(); \
  u64 m = x & 0xffffffffu, seg = x >> 32; \
  const u64* info = (const u64*)P[P_DATA_INFO] + seg * 2; \
  u64 len = DROPPED(P_DATA_DROPPED, seg) ? 0 : info[1]; \
  u64 d = RD_U64(A), s = RD_U32(B), n = RD_U32(C); \
  USE_MEM(m); \
  if (s + n > len || PAST(OUT_OF(d, n, csize))) TRAP(MEM_OOB); \
  mem_init(cref, d, (const u8*)P[P_DATA] + info[0] + s, n); \
  NEXT; \
}
#define OPC_DATA_DROP DROPPED(P_DATA_DROPPED, imm32) = 1; NEXT;
/* Table indices and lengths are read as 64 bits: i32 ones are zero-extended in their slots (table64). */
#define OPC_TABLE_GET { \
  u64 idx = RD_U64(B); \
  if (idx >= TBL_SIZE(C)) TRAP(TABLE_OOB); \
  WR_U64(A, TBL_BASE(C)[idx]); \
  NEXT; \
}
#define OPC_TABLE_SET { \
  u64 idx = RD_U64(A); \
  if (idx >= TBL_SIZE(C)) TRAP(TABLE_OOB); \
  TBL_BASE(C)[idx] = RD_U64(B); \
  NEXT; \
}
#define OPC_TABLE_SIZE WR_U32(A, TBL_SIZE(C)); NEXT;
/* next: the table | 1 << 32 for a 64-bit one (its -1 an i64) */
#define OPC_TABLE_GROW { \
  u64 tw = NEXT_WORD(); \
  u64 t = tw & 0xffffffffu; \
  u32 old = TBL_SIZE(t); \
  u64 delta = RD_U64(C); \
  if (delta > tables[t * T_FIELDS + T_MAX] || old + delta > tables[t * T_FIELDS + T_MAX]) { \
    WR_U64(A, (tw >> 32) ? ~0ull : 0xffffffffull); NEXT; \
  } \
  u64 want = (u64)old + delta; \
  if (want > tables[t * T_FIELDS + T_CAP]) { \
    STATE(S_HOST_FUNC) = GROW_TABLE; STATE(S_HOST_FP) = (u32)t; trap = (u32)want; \
    pc = here; status = STATUS_HOSTCALL; goto leave; \
  } \
  u64 v = RD_U64(B); \
  u64* base = TBL_BASE(t); \
  for (u64 k = old; k < want; k++) base[k] = v; \
  TBL_SIZE(t) = (u32)want; \
  WR_U32(A, old); \
  NEXT; \
}
#define OPC_TABLE_FILL { \
  u64 t = NEXT_WORD(); \
  u64 d = RD_U64(A), n = RD_U64(C); \
  u64 v = RD_U64(B); \
  if (OUT_OF(d, n, (u64)TBL_SIZE(t))) TRAP(TABLE_OOB); \
  u64* base = TBL_BASE(t); \
  for (u64 k = 0; k < n; k++) base[d + k] = v; \
  NEXT; \
}
#define OPC_TABLE_COPY { \
  u64 x = NEXT_WORD(); \
  u64 dt = x & 0xffffffffu, stb = x >> 32; \
  u64 d = RD_U64(A), s = RD_U64(B), n = RD_U64(C); \
  if (OUT_OF(s, n, (u64)TBL_SIZE(stb)) || OUT_OF(d, n, (u64)TBL_SIZE(dt))) TRAP(TABLE_OOB); \
  move_refs(TBL_BASE(dt) + d, TBL_BASE(stb) + s, n); \
  NEXT; \
}
#define OPC_TABLE_INIT { \
  u64 x = NEXT_WORD(); \
  u64 t = x & 0xffffffffu, seg = x >> 32; \
  const u64* info = (const u64*)P[P_ELEM_INFO] + seg * 2; \
  u64 len = DROPPED(P_ELEM_DROPPED, seg) ? 0 : info[1]; \
  u64 d = RD_U64(A), s = RD_U32(B), n = RD_U32(C); \
  if (s + n > len || OUT_OF(d, n, (u64)TBL_SIZE(t))) TRAP(TABLE_OOB); \
  const u64* src = (const u64*)P[P_ELEM] + info[0] + s; \
  u64* base = TBL_BASE(t); \
  for (u64 k = 0; k < n; k++) base[d + k] = src[k]; \
  NEXT; \
}
#define OPC_ELEM_DROP DROPPED(P_ELEM_DROPPED, imm32) = 1; NEXT;
#define OPC_REF_FUNC WR_U64(A, imm32); NEXT;
#define OPC_REF_IS_NULL WR_U32(A, RD_U64(B) == REF_NULL); NEXT;
#define OPC_REF_AS_NON_NULL if (RD_U64(A) == REF_NULL) TRAP(NULL_REF); NEXT;

// The stride between neighbouring slots of a frame: 1 where an instance's slots are together (the CPU's own
// build), N where they are instance-minor (the GPU's and its CPU model's; runtime/params.py P_SLOT_STRIDE).
// Compiled code on the CPU takes it as the constant 1, which makes a slot access an index; the interpreter's
// loop measured slower with the constant (bench/NOTES.md), so it reads the block (in WG_HYBRID's runtime too).
#if defined(WG_CUDA) || defined(WG_INTERLEAVED) || !defined(WG_COMPILED) || defined(WG_HYBRID)
#define SLOT_STRIDE ((u32)P[P_SLOT_STRIDE])
#else
#define SLOT_STRIDE 1u
#endif

// vm_step's opening (its state in locals), its call sequence (callee, callee_fp set; ends with continue)
// and its exits: macros, so that the compiled tier (compiler/to_c.py) runs the same code.
#define VM_CONSTS \
  const u64 N = P[P_N]; \
  u32* st = (u32*)P[P_STATE]; \
  const u64* code = (const u64*)P[P_CODE]; \
  const u32* funcs = (const u32*)P[P_FUNCS]; \
  const u32 ss = SLOT_STRIDE; \
  const u32 ssb = ss * 8; \
  u64* sl = (u64*)P[P_SLOTS] + (u64)inst * P[P_INST_STRIDE]; \
  /* Frames use the layout of the slots: contiguous per instance, or instance-minor. */ \
  const u64 fstride = ss == 1 ? 1 : N; \
  u64* fr = (u64*)P[P_FRAMES] + (ss == 1 ? (u64)inst * P[P_MAX_DEPTH] : (u64)inst); \
  u64* globals = (u64*)P[P_GLOBALS]; \
  const u64* mems = (const u64*)P[P_MEMS]; \
  u32* mem_pages = (u32*)P[P_MEM_PAGES]; \
  const u64* tables = (const u64*)P[P_TABLES]; \
  u32* table_sizes = (u32*)P[P_TABLE_SIZES]; \
  u64* fuel_left = (u64*)P[P_FUEL_LEFT]; \
  const u64 stack_slots = P[P_STACK_SLOTS]; \
  const u32 max_depth = (u32)P[P_MAX_DEPTH];
#define VM_PROLOGUE \
  VM_CONSTS \
  if (STATE(S_STATUS) != STATUS_RUNNING) return 0; \
  if (fuel_left[inst] == 0) { /* none left (--fuel 0): out of fuel before a step, where a tank of 0 would wrap */ \
    STATE(S_END_NS) = (u32)global_ns(); STATE(S_STATUS) = STATUS_TRAPPED; STATE(S_TRAP) = TRAP_OUT_OF_FUEL; \
    return 0; \
  } \
  u32 pc = STATE(S_PC); \
  u32 fp = STATE(S_FP); \
  u64* fb = sl + (u64)fp * ss; \
  u32 depth = STATE(S_DEPTH); \
  u32 trap = 0; \
  u32 status = STATUS_RUNNING; \
  /* A 32-bit tank: one add and compare per backward branch (a 64-bit one took four instructions). */ \
  u64 slice = cap < fuel_left[inst] ? cap : fuel_left[inst]; \
  if (slice > 0xffffffffu) slice = 0xffffffffu; \
  u32 fuel = (u32)slice; \
  u32 callee_fp = 0, callee = 0; \
  u32 here = pc;  /* the instruction being run, for the trap backtrace */ \
  u32 cm = 0xffffffffu;  /* the cached memory: none yet */ \
  MemRef cref = mem_ref(mems, 0, inst, N); \
  u64 csize = 0;
// The state a compiled store's piece (one function of it: compiler/to_c.py, pieces=True) shares with the
// dispatch loop of vm_step_compiled: in the loop's locals, passed in (fp, depth and fuel as arguments, the
// rest made from them) and given back through a VmRegs where a piece leaves.
// Cold: set only where a piece traps or calls, so on the GPU a piece reaches them in *rg (a reference) rather
// than holding them in registers from entry to exit (offline, rs_hashmap's pieces at 64 registers: spill
// stores 18.0 KB -> 13.5 KB).
#define VM_HOT_REGS(X) X(u64*, fb) X(u64, csize) X(MemRef, cref) X(u32, pc) X(u32, fp) X(u32, depth) \
  X(u32, fuel) X(u32, cm)
#define VM_COLD_REGS(X) X(u32, trap) X(u32, status) X(u32, callee_fp) X(u32, callee) X(u32, here)
#define VM_REGS(X) VM_HOT_REGS(X) VM_COLD_REGS(X)
#define VM_REG_FIELD(T, n) T n;
#define VM_REG_PUT(T, n) rg->n = n;
#define VM_REG_GET(T, n) n = rg->n;
#define VM_REG_REF(T, n) T& n = rg->n;
struct VmRegs { VM_REGS(VM_REG_FIELD) };
// A piece's own: its frame's place from fp, no memory cached yet (the piece pins its one memory itself).
#define VM_PIECE_HOT u64* fb = sl + (u64)fp * ss; u64 csize = 0; MemRef cref = mem_ref(mems, 0, inst, N); \
  u32 pc = 0, cm = 0xffffffffu; (void)csize; (void)cref; (void)cm;
#ifdef WG_CUDA
#define VM_PIECE_REGS VM_PIECE_HOT VM_COLD_REGS(VM_REG_REF)
// Where a piece leaves for the dispatch loop: its state into *rg, and back out of it in the loop.
#define VM_PIECE_OUT VM_REGS(VM_REG_PUT)
#define VM_PIECE_BACK VM_REGS(VM_REG_GET)
#else
// On the CPU they are locals, set where the piece leaves: a piece is always entered with the same values.
#define VM_PIECE_REGS VM_PIECE_HOT u32 trap = 0, status = STATUS_RUNNING, callee_fp = 0, callee = 0, here = 0;
// A piece leaving hands back where it stands, not its frame's place or its memory: the loop makes the first
// from fp and looks the memory up anew, so that no piece keeps those live from its entry for its exits
// (they cost every call a memory lookup and spills, where most calls leave by returning).
#define VM_EXIT_REGS(X) X(u32, pc) X(u32, fp) X(u32, depth) X(u32, fuel) VM_COLD_REGS(X)
#define VM_PIECE_OUT VM_EXIT_REGS(VM_REG_PUT)
#define VM_PIECE_BACK VM_EXIT_REGS(VM_REG_GET) fb = sl + (u64)fp * ss; cm = 0xffffffffu;
#endif
// How a piece ended: it returned (its first result in r, the fuel left in fuel: to its C caller, or to the
// dispatch loop, which pops the frame), back to the dispatch loop (pc set), or at one of vm_step's exits.
enum PieceExit { PIECE_RETURN, PIECE_DISPATCH, PIECE_LEAVE, PIECE_TRAPPED, PIECE_OUT_OF_FUEL, PIECE_CALL };
struct WgRet { u64 r; u32 fuel; u32 ex; };
// How many pieces deep a call may go as a C call from piece to piece (then through the dispatch loop, the C
// stack unwound), and whether an indirect call's callee is called as C too (through its thunk, wg_thunk).
#ifdef WG_CUDA
#define PIECE __device__ __noinline__
#ifndef WG_NATIVE_DEPTH
#define WG_NATIVE_DEPTH GPU_NATIVE_DEPTH
#endif
// A piece reads the parameter block from constant memory (cuda.cu wg_params, what P points to on the GPU)
// rather than through its pointer argument: the values then serve as operands where they took registers
// or spilled (offline, rs_hashmap's pieces at 64 registers: spill stores 23.7 KB -> 18.0 KB).
extern "C" __constant__ u64 wg_params[];
#define PIECE_PARAMS(p) ((void)(p), (const u64*)wg_params)
#else
#define PIECE __attribute__((noinline, visibility("hidden")))
#ifndef WG_NATIVE_DEPTH
#define WG_NATIVE_DEPTH 32
#endif
#define PIECE_PARAMS(p) (p)
#endif
#ifndef WG_NATIVE_INDIRECT
#define WG_NATIVE_INDIRECT 1
#endif
// The compiled step function, built apart and linked to the runtime built once (vm/build.py step_units): a
// function the runtime calls once per fuel slice, reading the parameter block from constant memory as pieces do.
#define STEP_FN extern "C" PIECE
#define STEP_PARAMS(p) PIECE_PARAMS(p)
// A store compiled in part (WG_HYBRID: functions too large to compile quickly are left to the interpreter,
// compiler/to_c.py): the interpreter, built into the runtime, leaves for the compiled step where a call or a
// return takes it to code that has compiled code (wg_compiled_at, from the step's unit); vm_launch then runs
// whichever tier has the code at the instance's pc.
#if defined(WG_HYBRID) && defined(WG_STEP_APART)
extern "C" PIECE u32 wg_compiled_at(u32 pc);
#define TIER_HOOK if (wg_compiled_at(pc)) { status = STATUS_TIER; goto leave; }
#else
#define TIER_HOOK
#endif
// Which functions a profiling store entered (P_RAN): written once each, so that lanes on other cores do not
// keep taking the line from each other.
#define RAN_HOOK \
      if (P[P_RAN] && !((u8*)P[P_RAN])[callee]) ((u8*)P[P_RAN])[callee] = 1;
#define VM_DO_CALL \
      const u32* f = funcs + (u64)callee * F_FIELDS; \
      if (f[F_HOST] >= DEVICE_IMPORT_BASE && f[F_HOST] < INTRINSIC_BASE) { \
        /* Served by vm_launch outside this loop: a call inside it would spill the loop's registers. */ \
        STATE(S_HOST_FUNC) = callee; \
        STATE(S_HOST_FP) = callee_fp; \
        status = STATUS_DEVICECALL; \
        goto leave; \
      } \
      if (f[F_HOST] >= INTRINSIC_BASE && f[F_HOST] != NO_HOST) { \
        /* Served on the device, no round trip: results go to the callee frame's first slot. */ \
        u64 r = f[F_HOST] == INTRINSIC_INSTANCE_ID ? inst >> P[P_THREADS] : P[P_INSTANCES]; \
        sl[(u64)callee_fp * ss] = r; \
        continue; \
      } \
      if (f[F_HOST] != NO_HOST) { \
        /* The host serves this call: arguments sit at the callee frame; results go back there. */ \
        STATE(S_HOST_FUNC) = callee; \
        STATE(S_HOST_FP) = callee_fp; \
        status = STATUS_HOSTCALL; \
        goto leave; \
      } \
      if (depth + 1 >= max_depth || (u64)callee_fp + f[F_FRAME] > stack_slots) TRAP(STACK_EXHAUSTED); \
      fr[(u64)depth * fstride] = (u64)pc | ((u64)fp << 32); \
      depth++; \
      fp = callee_fp; \
      fb = sl + (u64)fp * ss; \
      for (u32 k = f[F_NPARAMS]; k < f[F_NLOCALS]; k++) SLOT(k) = 0; \
      pc = f[F_ENTRY]; \
      RAN_HOOK \
      if (--fuel == 0) goto out_of_fuel; \
      TIER_HOOK \
      continue;
// A tail call (RETURN_CALL*, the callee in `callee`, its arguments at fp + a): a function of this store runs
// in this frame, returning where this one would; a host function is called as CALL does, and the code after
// the instruction returns its results.
#define VM_TAIL_CALL \
      const u32* f = funcs + (u64)callee * F_FIELDS; \
      if (f[F_HOST] != NO_HOST) { callee_fp = fp + a; goto do_call; } \
      if ((u64)fp + f[F_FRAME] > stack_slots) TRAP(STACK_EXHAUSTED); \
      for (u32 k = 0; k < f[F_NPARAMS]; k++) SLOT(k) = SLOT(a + k); \
      for (u32 k = f[F_NPARAMS]; k < f[F_NLOCALS]; k++) SLOT(k) = 0; \
      pc = f[F_ENTRY]; \
      RAN_HOOK \
      if (--fuel == 0) goto out_of_fuel; \
      TIER_HOOK \
      continue;
#define VM_EPILOGUE \
out_of_fuel: \
  STATE(S_END_NS) = (u32)global_ns(); \
  fuel_left[inst] -= slice; \
  if (fuel_left[inst] == 0) { trap = TRAP_OUT_OF_FUEL; status = STATUS_TRAPPED; } \
  STATE(S_PC) = pc; STATE(S_FP) = fp; STATE(S_DEPTH) = depth; STATE(S_STATUS) = status; STATE(S_TRAP) = trap; \
  return slice; \
trapped: \
  status = STATUS_TRAPPED; \
  pc = here; \
leave: \
  STATE(S_END_NS) = (u32)global_ns(); \
  fuel_left[inst] -= slice - fuel; \
  STATE(S_PC) = pc; STATE(S_FP) = fp; STATE(S_DEPTH) = depth; STATE(S_STATUS) = status; STATE(S_TRAP) = trap; \
  return slice - fuel;

// Runs instance inst for at most `cap` fuel (and what it has left); returns the fuel spent.
DEV u64 vm_step(const u64* P, u32 inst, u64 cap, u32 near) {
  VM_PROLOGUE

  for (;;) {
#ifdef WG_SIMT
    if (wg_simt_ops-- == 0) goto leave;  // bench/simt.py: one op per call
#endif
    here = pc;
    const u64 w = code[pc];  // issued before the vote below, so that its latency hides the vote's
#if defined(WG_CUDA) && __CUDA_ARCH__ >= 800  // __reduce_min_sync needs sm_80
    {
      // Lanes of a warp at different pcs run their handlers one after another, and lanes that run one op
      // each per step never meet again. So a lane a little ahead (at most `near` words) of the warp's
      // lowest pc waits for those lanes to catch up; lanes further ahead, on some other path, run on.
      // Waiting only schedules: the lane at the lowest pc always runs. How well lanes meet depends on the
      // compiler joining waiting and running lanes before the vote (it did in the H200 runs, NOTES.md).
      const u32 low = __reduce_min_sync(__activemask(), pc);
      if (pc - low - 1 < near) continue;
    }
#endif
    pc++;
    const u32 op = (u32)w & OP_MASK;
    const u32 fl = (u32)w;  // the flags (isa.py F_*), bits 8..15
    const u32 a = (u32)((w >> 16) & 0xffff);
    const u32 b = (u32)((w >> 32) & 0xffff);
    const u32 c = (u32)(w >> 48);
    const u32 imm32 = (u32)(w >> 32);
    COUNT_OP(op);
    // Operands first, in code every op shares (see isa.py F_RB ...).
    const u64 X = (fl & F_RB) ? RD_U64(B) : 0;
    const u64 Y = (fl & F_RC) ? RD_U64(C) : (u64)(i64)(i16)c;
    const u64 EXT = (fl & F_EXT) ? code[pc++] : 0;
    u64 R;
    // The hot ops first (isa.py HOT); the rest through a second switch, kept separate (an opaque copy
    // of op) so the compiler does not merge the two back into one tree.
    switch (op) {
      case OP_MOV: R = X; goto done;
      case OP_CONST: R = EXT; goto done;
      case OP_CONST32: R = imm32; goto done;
      case OP_SELECT: R = RD_U32((u32)EXT) ? X : Y; goto done;
      case OP_JMP: BRANCH(imm32); NEXT;
      case OP_BR_TABLE: {
        u32 idx = RD_U32(A);
        if (idx > imm32) idx = imm32;
        BRANCH((u32)code[pc + idx]);
        NEXT;
      }
      case OP_CALL:
        callee = imm32; callee_fp = fp + a;
        goto do_call;
      case OP_RET: {
        if (depth == 0) { status = STATUS_DONE; goto leave; }
        depth--;
        u64 f = fr[(u64)depth * fstride];
        pc = (u32)f; fp = (u32)(f >> 32); fb = sl + (u64)fp * ss;
        TIER_HOOK
        NEXT;
      }
      GENERATED_HOT_CASES
      default: break;
    }
    switch (opaque(op)) {
      case OP_NOP: NEXT;
      case OP_UNREACHABLE: TRAP(UNREACHABLE);
      case OP_CALL_INDIRECT: {
        u64 idx = RD_U64(B);  // an i32 zero-extended, or a 64-bit table's i64
        u64 sig = NEXT_WORD();
        RESOLVE_INDIRECT(idx, C, sig);
        callee_fp = fp + a;
        goto do_call;
      }
      case OP_CALL_REF: {
        const u64 ref = RD_U64(B);
        pc++;  // the signature, for the compiled tier
        if (ref == REF_NULL) TRAP(NULL_FUNC_REF);
        callee = (u32)ref;
        callee_fp = fp + a;
        goto do_call;
      }
      case OP_RETURN_CALL_REF: {
        const u64 ref = RD_U64(B);
        pc++;
        if (ref == REF_NULL) TRAP(NULL_FUNC_REF);
        callee = (u32)ref;
        goto tail_call;
      }
      case OP_THROW: case OP_THROW_REF:
        // vm_launch unwinds to the handler (exn_throw), out of this loop.
        status = STATUS_THROW;
        pc = here;
        goto leave;
      case OP_RETURN_CALL:
        callee = imm32;
        goto tail_call;
      case OP_RETURN_CALL_INDIRECT: {
        u64 idx = RD_U64(B);
        u64 sig = NEXT_WORD();
        RESOLVE_INDIRECT(idx, C, sig);
        goto tail_call;
      }
      case OP_GLOBAL_GET: OPC_GLOBAL_GET
      case OP_GLOBAL_SET: OPC_GLOBAL_SET
      case OP_MEMORY_SIZE: OPC_MEMORY_SIZE
      case OP_MEMORY_GROW: OPC_MEMORY_GROW
      case OP_MEMORY_COPY: OPC_MEMORY_COPY
      case OP_MEMORY_FILL: OPC_MEMORY_FILL
      case OP_MEMORY_INIT: OPC_MEMORY_INIT
      case OP_DATA_DROP: OPC_DATA_DROP
      case OP_TABLE_GET: OPC_TABLE_GET
      case OP_TABLE_SET: OPC_TABLE_SET
      case OP_TABLE_SIZE: OPC_TABLE_SIZE
      case OP_TABLE_GROW: OPC_TABLE_GROW
      case OP_TABLE_FILL: OPC_TABLE_FILL
      case OP_TABLE_COPY: OPC_TABLE_COPY
      case OP_TABLE_INIT: OPC_TABLE_INIT
      case OP_ELEM_DROP: OPC_ELEM_DROP
      case OP_REF_FUNC: OPC_REF_FUNC
      case OP_REF_IS_NULL: OPC_REF_IS_NULL
      case OP_REF_AS_NON_NULL: OPC_REF_AS_NON_NULL
      case OP_CATCH: NEXT;  // where exn_throw lands
      case OP_SIMD: case OP_SIMD_LOAD: case OP_SIMD_STORE: case OP_ATOMIC:
#if defined(WG_CUDA) || defined(WG_INTERLEAVED)
        // Run by vm_launch, between two runs of this loop: a call from here would cost the loop registers
        // (spills in its hot path). The CPU's build of the GPU's layouts does the same, so CI runs this path.
        status = STATUS_OUTSIDE;
        pc = here;
        goto leave;
#else
        // Here on the CPU: leaving writes the instance's state, which shares cache lines with its neighbours'
        // (other threads' instances).
        trap = outside_exec(P, inst, w, NEXT_WORD(), fb, ssb);
        if (trap) goto trapped;
        NEXT;
#endif
      GENERATED_COLD_CASES
      default: TRAP(UNREACHABLE);
    }
  done:
    // The result: a fused branch tests it, others write it to slot a.
    if (fl & F_BR) {
      if ((R != 0) != ((fl & F_NEG) != 0)) BRANCH((u32)EXT);
    } else if (fl & F_WA) {
      WR_U64(A, R);
    }
    continue;

  tail_call: {
      VM_TAIL_CALL
    }
  do_call: {
      VM_DO_CALL
    }
  }

  VM_EPILOGUE
}

// The THROW or THROW_REF at the instance's pc (status THROW): the exception kept (THROW) or found (THROW_REF)
// in the instance's ring of EXN_SLOTS, then the frames unwound to the innermost catch clause that takes it, its
// values written to the clause's slots and the instance resumed at its CATCH. Each exception's rows at P_EXN:
// seq (the throw's number, which is its exnref: a stale exnref no longer finds its seq), tag, slot count,
// values. The handler table (P_HANDLERS, u32): the number of regions; per region, by start, its code range
// (start, end], its first catch clause, their count and the region around it (NO_REGION: none); then per
// clause kind, tag, CATCH pc, slot. A frame's pc p is in a region when start < p <= end (the return pc of a
// call that ends the body is its end); regions nest, so those holding p are the last one to start before p
// and the regions around it. Returns the work done (frames and regions looked at), which the launch counts
// against its slice, so that throwing in a loop through deep frames cannot hold a launch unbounded.
SIMD_NOINLINE u64 exn_throw(const u64* P, u32 inst) {
  VM_CONSTS
  (void)funcs; (void)globals; (void)mems; (void)mem_pages; (void)tables; (void)table_sizes; (void)fuel_left;
  (void)stack_slots; (void)max_depth;
  u64* exn = (u64*)P[P_EXN];
  const u32* h = (const u32*)P[P_HANDLERS];
  const u64 width = P[P_EXN_WIDTH];
#define EXN_ROW(r) exn[(u64)(r) * N + inst]
  u32 pc = STATE(S_PC), fp = STATE(S_FP), depth = STATE(S_DEPTH);
  const u64 w = code[pc];
  u64* fb = sl + (u64)fp * ss;
  const u32 a = (u32)((w >> 16) & 0xffff);
  u64 seq, work = 1;
  u32 trap = 0;
  if (((u32)w & OP_MASK) == OP_THROW) {
    const u32 count = (u32)code[pc + 1];
    seq = ++EXN_ROW(0);
    const u64 base = 1 + (seq & (EXN_SLOTS - 1)) * width;
    EXN_ROW(base) = seq;
    EXN_ROW(base + 1) = w >> 32;
    EXN_ROW(base + 2) = count;
    for (u32 k = 0; k < count; k++) EXN_ROW(base + 3 + k) = SLOT(a + k);
  } else {
    seq = SLOT(a);
    // A store that never threw has no ring, and seqs start at 1: the host can hand in any exnref.
    if (seq == REF_NULL) trap = TRAP_NULL_EXN_REF;
    else if (!exn || !seq || EXN_ROW(1 + (seq & (EXN_SLOTS - 1)) * width) != seq) trap = TRAP_EXPIRED_EXN_REF;
  }
  if (!trap) {
    const u64 base = 1 + (seq & (EXN_SLOTS - 1)) * width;
    const u32 tag = (u32)EXN_ROW(base + 1), count = (u32)EXN_ROW(base + 2);
    const u32 nregions = h[0];
    const u32* regions = h + 1;
    const u32* catches = h + 1 + 5 * nregions;
    u32 p = pc + 1, f_fp = fp, f_depth = depth;
    for (;;) {
      u32 lo = 0, hi = nregions;  // lo: how many regions start before p
      while (lo < hi) {
        const u32 mid = lo + (hi - lo) / 2;
        if (regions[5 * mid] < p) lo = mid + 1; else hi = mid;
        work++;
      }
      for (u32 r = lo ? lo - 1 : NO_REGION; r != NO_REGION; r = regions[5 * r + 4]) {
        const u32* reg = regions + 5 * r;
        work++;
        if (p > reg[1]) continue;  // ended before p; a region around it may hold p
        for (u32 c = reg[2]; c < reg[2] + reg[3]; c++) {
          const u32* cl = catches + 4 * c;
          work++;
          const bool all = cl[0] >= 2, with_ref = cl[0] & 1;
          if (!all && cl[1] != tag) continue;
          fb = sl + (u64)f_fp * ss;
          u32 k = 0;
          if (!all)
            for (; k < count; k++) SLOT(cl[3] + k) = EXN_ROW(base + 3 + k);
          if (with_ref) SLOT(cl[3] + k) = seq;
          STATE(S_PC) = cl[2]; STATE(S_FP) = f_fp; STATE(S_DEPTH) = f_depth; STATE(S_STATUS) = STATUS_RUNNING;
          return work;
        }
      }
      if (f_depth == 0) break;
      f_depth--;
      const u64 f = fr[(u64)f_depth * fstride];
      p = (u32)f;
      f_fp = (u32)(f >> 32);
    }
    trap = TRAP_UNCAUGHT_EXCEPTION;
  }
#undef EXN_ROW
  STATE(S_STATUS) = STATUS_TRAPPED;  // at the throw, for the backtrace
  STATE(S_TRAP) = trap;
  return work;
}

// A unit of a compiled store's code (WG_PIECES_UNIT, vm/build.py step_units) has no vm_launch; the runtime it
// links to (WG_STEP_APART) calls its step function, vm_step_compiled (compiler/to_c.py).
#ifdef WG_PIECES_UNIT
#elif defined(WG_STEP_APART)  // the runtime alone: the step function (STEP_FN) comes from a unit linked to it
extern "C" PIECE u64 vm_step_compiled(const u64* P, u32 inst, u64 cap, u32 near);
#else
#define VM_STEP vm_step
#endif

// An instance that trapped, as vm_launch sees it: whether it runs on. A park (memory.atomic.wait) becomes
// status WAITING, unless a notify came already. In the interpreter, an access out of bounds of the size its
// step read may be in bounds now: a thread of the process may have grown their memory since. It runs once
// more (with no fuel spent since the last try at that pc, it is the same access, and stays trapped).
SIMD_NOINLINE bool runs_on(const u64* P, u32 inst, u64 spent, u32* retried) {
  const u64 N = P[P_N];
  u32* st = (u32*)P[P_STATE];
  if (STATE(S_TRAP) == TRAP_PARKED) {
    if (*(volatile u32*)&STATE(S_WAIT) == WAIT_PARKED) {
      STATE(S_STATUS) = STATUS_WAITING;
      return false;
    }
    STATE(S_STATUS) = STATUS_RUNNING;
    return true;
  }
#ifndef WG_COMPILED
  if (STATE(S_TRAP) == TRAP_GROW_SHARED) {  // the MEMORY_GROW at the pc, on a memory threads share
    const u32 pc = STATE(S_PC);
    const u64 w = ((const u64*)P[P_CODE])[pc];
    const u32 a = (u32)(w >> 16) & 0xffff, b = (u32)(w >> 32) & 0xffff, c = (u32)(w >> 48) & 0xffff, gm = c & 0x7fffu;
    u64* fb = (u64*)P[P_SLOTS] + (u64)inst * P[P_INST_STRIDE] + (u64)STATE(S_FP) * P[P_SLOT_STRIDE];
    const u64 ssb = P[P_SLOT_STRIDE] * 8;
    const u64* mems = (const u64*)P[P_MEMS];
    const u64 delta = (c & 0x8000u) ? SLOT(b) : (u64)(u32)SLOT(b);
    SLOT(a) = grown(grow_group((u32*)P[P_MEM_PAGES], gm, N, inst, (u32)mems[gm * M_FIELDS + M_SHIFT], delta,
                               mems[gm * M_FIELDS + M_MAX]), c);
    STATE(S_PC) = pc + 1;
    STATE(S_STATUS) = STATUS_RUNNING;
    return true;
  }
  if (P[P_THREADS] && STATE(S_TRAP) == TRAP_MEM_OOB && (STATE(S_PC) != *retried || spent)) {
    *retried = STATE(S_PC);
    STATE(S_STATUS) = STATUS_RUNNING;
    return true;
  }
#else
  (void)spent; (void)retried;
#endif
  return false;
}

#ifndef WG_PIECES_UNIT
// ---- The mailbox (P_MAILBOX; host side runtime/mailbox.py): a call the host serves, served while the launch
// runs. The lane posts the call in host memory and waits; the host asks it to copy guest memory to or from the
// pool (the GPU's kernels cannot run while this one holds the multiprocessors, so the lane moves the bytes),
// then releases it with the results and its new status. A lane the host does not answer within MB_WAIT_NS
// (or whose call it declines) ends its launch as before, and the host serves the call after the launch.
#ifdef WG_CUDA
DEV u32 mail_load(const u32* p) {
#if __CUDA_ARCH__ >= 700
  u32 v;  // an acquire at system scope: the host's writes before it are seen after (L1 included)
  asm volatile("ld.acquire.sys.u32 %0, [%1];" : "=r"(v) : "l"(p) : "memory");
  return v;
#else
  return *(const volatile u32*)p;  // never reached: mailbox_call declines before Volta
#endif
}
DEV void mail_store(u32* p, u32 v) { __threadfence_system(); *(volatile u32*)p = v; }
DEV void mail_pause() { __nanosleep(2000); }
#else
DEV u32 mail_load(const u32* p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
DEV void mail_store(u32* p, u32 v) { __atomic_store_n(p, v, __ATOMIC_SEQ_CST); }
DEV void mail_pause() { wait_ns(20000); }
#endif

// The host's ops on this lane's memory, through the pool (MO_* records at MH_LIST).
DEV void mail_ops(const u64* P, const u64* mb, u32 inst, u64 nops, u64 list) {
  const u64 N = P[P_N];
  const u64* mems = (const u64*)P[P_MEMS];
  const u64 flat[M_FIELDS] = {mb[MB_POOL], 0, 0, 0};
  const MemRef pool = mem_ref(flat, 0, 0, 1);
  const u64 room = mb[MB_POOL_BYTES];
  if (OUT_OF(list, nops * MO_FIELDS * 8, room)) return;
  const u64* ops = (const u64*)(mb[MB_POOL] + list);
  for (u64 k = 0; k < nops; k++) {
    const u64* o = ops + k * MO_FIELDS;
    const u64 m = o[MO_KIND] >> 8, a = o[MO_ADDR], n = o[MO_LEN], at = o[MO_AT];
    if (OUT_OF(at, n, room)) continue;
    const bool read = (o[MO_KIND] & 0xff) == MAIL_READ;
    // The host checked the range; checked again so that no host fault reaches another instance's memory. A
    // read out of range gives zeros, not what the pool held before.
    if (m >= mb[MB_MEMORIES] || OUT_OF(a, n, (u64)((const u32*)P[P_MEM_PAGES])[m * N + inst] * PAGE)) {
      if (read) mem_fill(pool, at, 0, n);
      continue;
    }
    const MemRef g = mem_ref(mems, m, inst, N);
    if (read) wf_copy(pool, at, g, a, n);
    else wf_copy(g, a, pool, at, n);
  }
}

// The host call the lane stopped for (status HOSTCALL), through the mailbox: whether it runs on.
DEV bool mailbox_call(const u64* P, u32 inst) {
  const u64* mb = (const u64*)P[P_MAILBOX];
  const u64 N = P[P_N];
  u32* st = (u32*)P[P_STATE];
  const u32 fi = STATE(S_HOST_FUNC);
#if defined(WG_CUDA) && __CUDA_ARCH__ < 700
  return false;  // no acquire at system scope before Volta: the lane's later reads could hit stale L1 lines
#endif
  // Growth moves arrays: after the launch. A closed mailbox takes no more calls.
  if (mb == 0 || fi == GROW_MEMORY || fi == GROW_TABLE || *(const volatile u64*)&mb[MB_CLOSED]) return false;
  const u32 nargs = ((const u32*)P[P_FUNCS])[(u64)fi * F_FIELDS + F_NPARAMS];
  if (nargs > MAIL_ARGS) return false;
  u32* flag = (u32*)mb[MB_FLAGS] + inst;
  u64* head = (u64*)mb[MB_HEAD];
#define HEAD(f) head[(u64)(f) * N + inst]
  const u32 fp = STATE(S_HOST_FP);
  u64* sl = (u64*)P[P_SLOTS] + (u64)inst * P[P_INST_STRIDE];
  const u64 ss = P[P_SLOT_STRIDE];
  HEAD(MH_FUNC) = fi;
  HEAD(MH_FP) = fp;
  for (u32 k = 0; k < nargs; k++) HEAD(MH_ARGS + k) = sl[(u64)(fp + k) * ss];
  mail_store(flag, BOX_POSTED);
  u64 until = wf_timer_ns() + mb[MB_WAIT_NS];
  for (;;) {
    const u32 v = mail_load(flag);
    if (v == BOX_OPS || v == BOX_RELEASE) {
      mail_ops(P, mb, inst, HEAD(MH_OPS), HEAD(MH_LIST));
      if (v == BOX_OPS) {
        mail_store(flag, BOX_ANSWERED);
        until = wf_timer_ns() + mb[MB_WAIT_NS];
        continue;
      }
      const u64 nres = HEAD(MH_NRES);
      for (u64 k = 0; k < nres && k < MAIL_ARGS; k++) sl[(u64)(fp + k) * ss] = HEAD(MH_ARGS + k);
      if ((u32)HEAD(MH_TRAP) != MAIL_KEEP_TRAP) STATE(S_TRAP) = (u32)HEAD(MH_TRAP);
      const u32 status = (u32)HEAD(MH_STATUS);
      STATE(S_STATUS) = status;
      HEAD(MH_SEQ) = HEAD(MH_SEQ) + 1;  // how the host tells a release applied from one the lane left
      mail_store(flag, BOX_APPLIED);
      return status == STATUS_RUNNING;
    }
    if (v == BOX_DECLINED) return false;
    if (wf_timer_ns() > until || *(const volatile u64*)&mb[MB_CLOSED]) {
      mail_store(flag, BOX_ABANDONED);
      return false;
    }
    mail_pause();
  }
#undef HEAD
}

// One launch's work for instance inst: fuel slices of VM_STEP, with the imports the device serves
// (wasi_fast.h) and, on the GPU, the ops vm_step leaves for (outside_step) run in between, so the
// interpreter's loop holds no call.
DEV void vm_launch(const u64* P, u32 inst, u32 near) {
  const u64 N = P[P_N];
  u32* st = (u32*)P[P_STATE];
  u64 cap = P[P_FUEL_SLICE];
  u32 retried = ~0u;  // the pc of an access run again after an out-of-bounds trap (threads)
  if (STATE(S_STATUS) == STATUS_WAITING) {  // runs again (its wait op) once notified or timed out
    if (*(volatile u32*)&STATE(S_WAIT) == WAIT_PARKED) return;
    STATE(S_STATUS) = STATUS_RUNNING;
  }
  while (cap > 0) {
    // inst through a copy the compiler cannot see through: what the step derives from it (the instance's
    // pointers) is then computed in each run, not hoisted out of this loop to live across outside_step's
    // call, which cost registers in the interpreter's loop (spills in every op's path).
#ifdef WG_HYBRID
    const u64 spent = wg_compiled_at(STATE(S_PC)) ? VM_STEP(P, opaque(inst), cap, near)
                                                  : vm_step(P, opaque(inst), cap, near);
    cap -= spent;
    if (STATE(S_STATUS) == STATUS_TIER) {
      STATE(S_STATUS) = STATUS_RUNNING;
      continue;
    }
#else
    const u64 spent = VM_STEP(P, opaque(inst), cap, near);
    cap -= spent;
#endif
#if (defined(WG_CUDA) || defined(WG_INTERLEAVED)) && (!defined(WG_COMPILED) || defined(WG_HYBRID))
    // Only the GPU's interpreter (and its CPU model, WG_INTERLEAVED) leaves its loop for an op (the CPU's and the
    // compiled tier run them in place): elsewhere outside_step is not built at all, which keeps SIMD's code out
    // of every compiled store's build but those compiled in part.
    if (STATE(S_STATUS) == STATUS_OUTSIDE) {
      outside_step(P, inst);
      continue;
    }
#endif
    if (STATE(S_STATUS) == STATUS_TRAPPED) {
      if (runs_on(P, inst, spent, &retried)) continue;
      return;
    }
    if (STATE(S_STATUS) == STATUS_THROW) {
      // The instance then runs on, or it trapped (and the next step returns at once).
      const u64 work = exn_throw(P, inst);
      cap = work < cap ? cap - work : 0;
      continue;
    }
    if (STATE(S_STATUS) == STATUS_HOSTCALL) {
      if (mailbox_call(P, inst)) continue;
      return;
    }
    if (STATE(S_STATUS) != STATUS_DEVICECALL) return;
    const u32* f = (const u32*)P[P_FUNCS] + (u64)STATE(S_HOST_FUNC) * F_FIELDS;
    u64* sl = (u64*)P[P_SLOTS] + (u64)inst * P[P_INST_STRIDE];
    u32 code = 0;
    const u32 r = wasi_fast_call(P, inst, sl, P[P_SLOT_STRIDE], STATE(S_HOST_FP), f[F_HOST] - DEVICE_IMPORT_BASE, &code);
    if (r == WF_EXIT) { STATE(S_STATUS) = STATUS_EXITED; STATE(S_TRAP) = code; return; }  // the exit code in S_TRAP
    STATE(S_STATUS) = r == WF_DONE ? STATUS_RUNNING : STATUS_HOSTCALL;  // else the host serves it
    if (r != WF_DONE && !mailbox_call(P, inst)) return;
  }
}
#endif  // WG_PIECES_UNIT
