// The `gpu` module's processes served on the device (host side: wasmgpu/wasi/processes.py): spawn takes a
// spare process and gives its handle at once, recording the command for the host, which starts the child
// after the launch (a round for all of a launch's spawns, not one each); wait and output answer from the
// statuses and stdouts of the children the host has seen end. Anything else (an error to report, a child
// still running, no room) returns WF_HOST and the host serves the call as before, so the two paths agree.
// Included by wasi_fast.h.
#pragma once

// Takes `n` from the counter at p if it stays within `limit` (or, with limit 0, if at least n is left):
// the value before, or ~0 when there was not room.
DEV u64 proc_take(u64* p, u64 n, u64 limit) {
  while (true) {
    const u64 old = *(volatile u64*)p;
    const u64 now = limit ? old + n : old - n;
    if (limit ? now > limit : old < n) return ~0ull;
    if (wf_cas(p, old, now) == old) return old;
  }
}

// Who the process of `inst` is, as a handle's HF_PARENT names its parent.
DEV u64 proc_me(const u64* meta, const u32* occupant, u32 inst) {
  const u64 p = inst >> meta[PM_SHIFT];
  return 1 + (p < meta[PM_FIRST] ? p : (PROC_CHILD_BIT | occupant[p]));
}

#define PARG(k) sl[(u64)(cfp + (k)) * ss]
// gpu.spawn(args, args_len, env, env_len), gpu.wait(handle), gpu.output(handle, offset, buf, len): the
// result goes to the frame's first slot.
DEV u32 proc_call(const u64* P, u64* blk, u32 inst, MemRef r, u64 size, u32 kind, u64* sl, u64 ss, u32 cfp) {
  u64* meta = (u64*)blk[W_PROC_META];
  if (meta == 0) return WF_HOST;
  u32* occupant = (u32*)blk[W_PROC_OCCUPANT];
  u64* handles = (u64*)blk[W_PROC_HANDLES];
  const u64 me = proc_me(meta, occupant, inst);
  if (kind == WK_GPU_SPAWN) {
    const u64 args = (u32)PARG(0), nargs = (u32)PARG(1), env = (u32)PARG(2), nenv = (u32)PARG(3);
    u32 result;
    if (nargs + nenv > MAX_COMMAND_BYTES) {
      result = (u32)-(int)WASI_E2BIG;
    } else if (*(volatile u64*)&meta[PM_FREE] == 0) {  // spares are only taken during a launch
      result = (u32)-(int)WASI_EAGAIN;
    } else if (meta[PM_NOMEM]) {
      result = (u32)-(int)WASI_ENOMEM;
    } else {
      // The host reports a command it cannot take (out of bounds, a string without its NUL).
      if (!meta[PM_SPAWN] || args + nargs > size || env + nenv > size) return WF_HOST;
      if ((nargs && mem_load<u8>(r, args + nargs - 1) != 0) || (nenv && mem_load<u8>(r, env + nenv - 1) != 0))
        return WF_HOST;
      const u64 at = proc_take(&meta[PM_CMD_USED], nargs + nenv, meta[PM_CMD_CAP]);
      if (at == ~0ull) return WF_HOST;  // no room for the command this launch
      const u64 left = proc_take(&meta[PM_FREE], 1, 0);
      if (left == ~0ull) {
        result = (u32)-(int)WASI_EAGAIN;
      } else {
        const u64 k = meta[PM_FREE0] - left;  // the k-th spawn of the launch
        const u32 slot = ((const u32*)blk[W_PROC_FREE])[left - 1];
        u8* cmd = (u8*)blk[W_PROC_CMD];
        for (u64 b = 0; b < nargs; b++) cmd[at + b] = mem_load<u8>(r, args + b);
        for (u64 b = 0; b < nenv; b++) cmd[at + nargs + b] = mem_load<u8>(r, env + b);
        u64* rec = (u64*)blk[W_PROC_RECS] + k * RF_FIELDS;
        rec[RF_LANE] = inst; rec[RF_SLOT] = slot; rec[RF_CMD] = at; rec[RF_ARGS] = nargs; rec[RF_ENV] = nenv;
        rec[RF_FUEL] = ((const u64*)P[P_FUEL_LEFT])[inst];
        const u64 h = meta[PM_H0] + k;
        handles[h * HF_FIELDS + HF_PARENT] = me;
        handles[h * HF_FIELDS + HF_ENDED] = 0;
        occupant[slot] = (u32)h;
        result = (u32)h;
      }
    }
    PARG(0) = result;
    return WF_DONE;
  }
  // wait and output: a child of this process that ended, whose status and stdout the host has.
  const u64 h = (u32)PARG(0);
  if (h >= meta[PM_HANDLES]) return WF_HOST;
  const u64* row = handles + h * HF_FIELDS;
  if (row[HF_PARENT] != me || !row[HF_ENDED]) return WF_HOST;
  if (kind == WK_GPU_WAIT) {
    PARG(0) = (u32)row[HF_STATUS];
    return WF_DONE;
  }
  const u64 offset = (u32)PARG(1), buf = (u32)PARG(2), len = (u32)PARG(3), have = row[HF_OUT_LEN];
  const u64 n = offset >= have ? 0 : (have - offset < len ? have - offset : len);
  if (row[HF_OUT_AT] == PROC_NO_OUT || buf + n > size) return WF_HOST;
  mem_init(r, buf, (const u8*)blk[W_PROC_OUT] + row[HF_OUT_AT] + offset, n);
  PARG(0) = (u32)n;
  return WF_DONE;
}
#undef PARG
