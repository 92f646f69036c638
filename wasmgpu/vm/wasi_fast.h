// WASI preview1 calls the device serves itself, without a round trip to the host (DESIGN.md section 5):
// args and environ from per-instance blobs loaded before the run, clocks, random bytes, fd_write to the
// original stdout/stderr (appended to a per-instance buffer the host drains after each launch) and
// proc_exit, and preopened files (wasi_files.h). Each function returns WF_HOST when it cannot serve a call; the host then serves it as any
// other import (wasmgpu/wasi/preview1.py), so the two paths must agree byte for byte.
// Included by vm.h (after the memory helpers); the host side is wasmgpu/wasi/fast.py.
#pragma once

// WasiKind, the block at P[P_EXT] (WasiField, WasiStringField, WasiClockField), the WF_* flags and NO_MEMORY
// are generated into isa.h from compiler/vm_abi.py.

enum WasiResult { WF_HOST, WF_DONE, WF_EXIT };
#define WF_TO_HOST 0xffffffffu  // from a helper in place of an errno: the host serves the call

#ifdef WG_CUDA
DEV u64 wf_timer_ns() {
  u64 t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  return t;
}
DEV u64 wf_cas(u64* p, u64 expect, u64 v) {
  return atomicCAS((unsigned long long*)p, (unsigned long long)expect, (unsigned long long)v);
}
#else
#include <time.h>
DEV u64 wf_timer_ns() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (u64)ts.tv_sec * 1000000000ull + (u64)ts.tv_nsec;
}
DEV u64 wf_cas(u64* p, u64 expect, u64 v) {
  __atomic_compare_exchange_n(p, &expect, v, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
  return expect;
}
#endif

DEV u32 rotl32(u32 x, u32 r) { return (x << r) | (x >> (32 - r)); }
#define WF_QR(a, b, c, d) \
  a += b; d = rotl32(d ^ a, 16); c += d; b = rotl32(b ^ c, 12); \
  a += b; d = rotl32(d ^ a, 8); c += d; b = rotl32(b ^ c, 7);
// Block `counter` of the ChaCha20 stream of `key` (nonce 0, 64-bit block counter in words 12-13).
DEV void chacha20_block(const u32* key, u64 kstride, u64 counter, u32* out) {
  u32 x[16], s[16];
  s[0] = 0x61707865u; s[1] = 0x3320646eu; s[2] = 0x79622d32u; s[3] = 0x6b206574u;
  for (int k = 0; k < 8; k++) s[4 + k] = key[k * kstride];
  s[12] = (u32)counter; s[13] = (u32)(counter >> 32); s[14] = 0; s[15] = 0;
  for (int k = 0; k < 16; k++) x[k] = s[k];
  for (int r = 0; r < 10; r++) {
    WF_QR(x[0], x[4], x[8], x[12]) WF_QR(x[1], x[5], x[9], x[13])
    WF_QR(x[2], x[6], x[10], x[14]) WF_QR(x[3], x[7], x[11], x[15])
    WF_QR(x[0], x[5], x[10], x[15]) WF_QR(x[1], x[6], x[11], x[12])
    WF_QR(x[2], x[7], x[8], x[13]) WF_QR(x[3], x[4], x[9], x[14])
  }
  for (int k = 0; k < 16; k++) out[k] = x[k] + s[k];
}

// n bytes from s in memory src to d in memory dst (two different memories): words where d is aligned.
DEV void wf_copy(MemRef dst, u64 d, MemRef src, u64 s, u64 n) {
  u64 k = 0;
  for (; k < n && ((d + k) & 3); k++) mem_store<u8>(dst, d + k, mem_load<u8>(src, s + k));
  for (; k + 4 <= n; k += 4) mem_store<u32>(dst, d + k, mem_load<u32>(src, s + k));
  for (; k < n; k++) mem_store<u8>(dst, d + k, mem_load<u8>(src, s + k));
}

// The guest's strings (args or environ) and the array of pointers to them, as preview1.py's _strings.
DEV u32 wf_strings(MemRef r, u64 size, const u8* blob, u64 count, u64 bytes, u64 ptrs, u64 buf) {
  if (ptrs + 4 * count > size || buf + bytes > size) return WASI_EFAULT;
  u64 at = 0;
  for (u64 k = 0; k < count; k++) {  // pointers first, then the bytes (the host's order, should they overlap)
    mem_store<u32>(r, ptrs + 4 * k, (u32)(buf + at));
    while (blob[at] != 0) at++;
    at++;
  }
  mem_init(r, buf, blob, bytes);
  return WASI_SUCCESS;
}

DEV u32 wf_sizes(MemRef r, u64 size, u64 count, u64 bytes, u64 count_ptr, u64 size_ptr) {
  if (count_ptr + 4 > size || size_ptr + 4 > size) return WASI_EFAULT;
  mem_store<u32>(r, count_ptr, (u32)count);
  mem_store<u32>(r, size_ptr, (u32)bytes);
  return WASI_SUCCESS;
}

// clock_time_get and clock_res_get: an errno, or WF_TO_HOST for the host's CPU-time clocks (served there).
DEV u32 wf_clock(u64* blk, u32 inst, u64 N, u32 flags, u32 id, bool res, u64* value) {
  u64* clock = (u64*)blk[W_CLOCK];
  if (id > 3) return WASI_EINVAL;
  if (flags & WF_CLOCK_VIRTUAL) {  // VirtualClock: each read advances the clock by its step
    const u64 step = clock[C_STEP * N + inst];
    if (res) { *value = step; return WASI_SUCCESS; }
    const u64 t = clock[C_VALUE * N + inst] + step;
    clock[C_VALUE * N + inst] = t;
    *value = id == 0 ? clock[C_EPOCH * N + inst] + t : t;
    return WASI_SUCCESS;
  }
  if (res) { *value = 1; return WASI_SUCCESS; }
  if (id > 1) return WF_TO_HOST;
  // The host's clocks when this launch began, plus the device timer since the launch's first clock read:
  // values stay below the host's clocks at the next launch, so host and device reads never disagree.
  const u64 now = wf_timer_ns();
  u64 base = *(volatile u64*)&blk[W_TIMER_BASE];
  if (base == 0) {
    const u64 old = wf_cas(&blk[W_TIMER_BASE], 0, now);
    base = old ? old : now;
  }
  const u64 delta = now > base ? now - base : 0;
  if (id == 0) { *value = blk[W_HOST_REALTIME] + delta; return WASI_SUCCESS; }
  u64 t = blk[W_HOST_MONOTONIC] + delta;
  u64* last = &clock[C_VALUE * N + inst];
  if (t < *last) t = *last;  // monotonic: never backwards for an instance
  *last = t;
  *value = t;
  return WASI_SUCCESS;
}

// n random bytes at buf: the instance's ChaCha20 stream from where it stopped.
DEV void wf_random(u64* blk, u32 inst, u64 N, MemRef r, u64 buf, u64 n) {
  const u32* key = (const u32*)blk[W_RNG_KEY] + inst;
  u64* posp = (u64*)blk[W_RNG_POS] + inst;
  u64 pos = *posp;
  u32 block[16];
  for (u64 k = 0; k < n;) {
    const u32 j = (u32)(pos & 63);
    if (k == 0 || j == 0) chacha20_block(key, N, pos >> 6, block);
    if (((j | (buf + k)) & 3) == 0 && k + 4 <= n) {  // a whole word where both sides are aligned
      mem_store<u32>(r, buf + k, block[j >> 2]);
      k += 4; pos += 4;
    } else {
      mem_store<u8>(r, buf + k, (u8)(block[j >> 2] >> (8 * (j & 3))));
      k++; pos++;
    }
  }
  *posp = pos;
}

// fd_write to the original stdout/stderr: one record (header: length | WF_OUT_FD2, then the bytes, padded
// to 4) appended to the instance's buffer. Bad pointers give EFAULT as on the host; a write that does not
// fit goes to the host, which drains the buffer first so that the order of all writes is kept.
DEV u32 wf_fd_write(u64* blk, u32 inst, u64 N, MemRef r, u64 size, u32 fd, u64 iovs, u64 count, u64 nwritten,
                    u32* errno_out) {
  if (iovs + 8 * count > size) { *errno_out = WASI_EFAULT; return WF_DONE; }
  u64 total = 0;
  for (u64 k = 0; k < count; k++) {
    const u64 b = mem_load<u32>(r, iovs + 8 * k), n = mem_load<u32>(r, iovs + 8 * k + 4);
    if (b + n > size) { *errno_out = WASI_EFAULT; return WF_DONE; }
    total += n;
  }
  if (nwritten + 4 > size) { *errno_out = WASI_EFAULT; return WF_DONE; }
  if (total > 0) {
    const u64 cap = blk[W_OUT_CAP];
    u32* used = (u32*)blk[W_OUT_USED] + inst;
    const u64 at = *used, need = 4 + ((total + 3) & ~3ull);
    if (at + need > cap) return WF_HOST;
    const u64 rec[M_FIELDS] = {blk[W_OUT], cap, 0};
    MemRef out = mem_ref(rec, 0, inst, N);
    mem_store<u32>(out, at, (u32)total | (fd == 2 ? WF_OUT_FD2 : 0u));
    u64 d = at + 4;
    for (u64 k = 0; k < count; k++) {
      const u64 b = mem_load<u32>(r, iovs + 8 * k), n = mem_load<u32>(r, iovs + 8 * k + 4);
      wf_copy(out, d, r, b, n);
      d += n;
    }
    *used = (u32)(at + need);
  }
  mem_store<u32>(r, nwritten, (u32)total);
  *errno_out = WASI_SUCCESS;
  return WF_DONE;
}

#include "wasi_files.h"
#include "processes.h"

// Serves import `kind` for instance `inst`, its arguments in the frame at slot `cfp`: WF_DONE (the errno is
// in the frame's first slot), WF_EXIT (proc_exit: *code is the exit code) or WF_HOST.
DEV u32 wasi_fast_call(const u64* P, u32 inst, u64* sl, u64 ss, u32 cfp, u32 kind, u32* code) {
  u64* blk = (u64*)P[P_EXT];
  if (blk == 0) return WF_HOST;
  const u64 N = P[P_N];
  const u32 flags = ((const u32*)blk[W_FLAGS])[inst];
#define ARG(k) sl[(u64)(cfp + (k)) * ss]
  if (kind == WK_PROC_EXIT) {
    const u32 c = (u32)ARG(0);
    if (c >= 126) return WF_HOST;  // not an exit but an error, with the host's message
    *code = c;
    return WF_EXIT;
  }
  const u64 m = blk[W_MEM];
  if (m == NO_MEMORY) return WF_HOST;  // no memory exported: the host says so
  const u64 size = (u64)((const u32*)P[P_MEM_PAGES])[m * N + inst] * PAGE;
  MemRef r = mem_ref((const u64*)P[P_MEMS], m, inst, N);
  if (kind >= WK_GPU_SPAWN) return proc_call(P, blk, inst, r, size, kind, sl, ss, cfp);
  u32 e = WASI_SUCCESS;
  if (kind == WK_FD_FDSTAT_GET && (u32)ARG(0) < 3 && (flags & WF_STDIO)) {  // stdio's, as the host has them
    const u64 out = (u32)ARG(1), row = ((const u32*)blk[W_STDIO_ROW])[(u32)ARG(0) * N + inst];
    if (out + 24 > size) return WF_HOST;
    mem_init(r, out, (const u8*)blk[W_STDIO_FDSTAT] + 24 * row, 24);
    ARG(0) = e;
    return WF_DONE;
  }
  if (kind == WK_FD_READ && (u32)ARG(0) == 0 && (flags & WF_STDIN)) {
    if (df_stdin_read(blk, inst, N, r, size, (u32)ARG(1), (u32)ARG(2), (u32)ARG(3)) == WF_HOST) return WF_HOST;
    ARG(0) = e;
    return WF_DONE;
  }
  switch (kind) {
    case WK_ARGS_GET: case WK_ENVIRON_GET: case WK_ARGS_SIZES_GET: case WK_ENVIRON_SIZES_GET: {
      if (!(flags & WF_ARGS)) return WF_HOST;
      const u64* info = (const u64*)blk[W_STRING_INFO];
      const u32 f = (kind == WK_ARGS_GET || kind == WK_ARGS_SIZES_GET) ? SI_ARGS : SI_ENV;
      const u64 off = info[f * N + inst], count = info[(f + 1) * N + inst], bytes = info[(f + 2) * N + inst];
      if (kind == WK_ARGS_GET || kind == WK_ENVIRON_GET)
        e = wf_strings(r, size, (const u8*)blk[W_STRINGS] + off, count, bytes, (u32)ARG(0), (u32)ARG(1));
      else
        e = wf_sizes(r, size, count, bytes, (u32)ARG(0), (u32)ARG(1));
      break;
    }
    case WK_CLOCK_RES_GET: case WK_CLOCK_TIME_GET: {
      const bool res = kind == WK_CLOCK_RES_GET;
      const u64 out = (u32)ARG(res ? 1 : 2);
      if (!(flags & (WF_CLOCK_REAL | WF_CLOCK_VIRTUAL))) return WF_HOST;
      if (out + 8 > size) { e = WASI_EFAULT; break; }  // the host checks the pointer before the clock id
      u64 v = 0;
      e = wf_clock(blk, inst, N, flags, (u32)ARG(0), res, &v);
      if (e == WF_TO_HOST) return WF_HOST;
      if (e == WASI_SUCCESS) mem_store<u64>(r, out, v);
      break;
    }
    case WK_RANDOM_GET: {
      if (!(flags & WF_RANDOM)) return WF_HOST;
      const u64 buf = (u32)ARG(0), n = (u32)ARG(1);
      if (buf + n > size) { e = WASI_EFAULT; break; }
      wf_random(blk, inst, N, r, buf, n);
      break;
    }
    case WK_FD_WRITE: {
      const u32 fd = (u32)ARG(0);
      if (fd > 2 && (flags & WF_FILES)) {  // a file the device made
        if (df_call(blk, inst, N, r, size, kind, sl, ss, cfp, &e) == WF_HOST) return WF_HOST;
        break;
      }
      if (blk[W_OUT_CAP] == 0 || !(fd == 1 ? flags & WF_STDOUT : fd == 2 ? flags & WF_STDERR : 0)) return WF_HOST;
      if (wf_fd_write(blk, inst, N, r, size, fd, (u32)ARG(1), (u32)ARG(2), (u32)ARG(3), &e) == WF_HOST)
        return WF_HOST;
      break;
    }
    case WK_FD_PRESTAT_GET: case WK_FD_PRESTAT_DIR_NAME: case WK_PATH_OPEN: case WK_FD_READ: case WK_FD_PREAD:
    case WK_FD_SEEK: case WK_FD_TELL: case WK_FD_FILESTAT_GET: case WK_FD_FDSTAT_GET: case WK_FD_CLOSE:
    case WK_PATH_FILESTAT_GET: case WK_FD_READDIR: case WK_PATH_CREATE_DIRECTORY: case WK_PATH_UNLINK_FILE:
      if (!(flags & WF_FILES) || df_call(blk, inst, N, r, size, kind, sl, ss, cfp, &e) == WF_HOST) return WF_HOST;
      break;
    default: return WF_HOST;
  }
  ARG(0) = e;
  return WF_DONE;
#undef ARG
}
