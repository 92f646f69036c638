// Preopened files served on the device (host side: wasmgpu/wasi/devfiles.py; layout: compiler/vm_abi.py).
// While an instance has WF_FILES, its descriptors are the host's initial ones (stdio and preopens 3..) plus
// those opened here, read-only, on a snapshot of the preopens' regular files and directories (listed by
// fd_readdir). Each function answers exactly
// as wasi/preview1.py would, or returns WF_HOST before changing anything; the host then takes the
// instance's descriptors over (devfiles.py demote) and serves this call and every later one.
// Included by wasi_fast.h.
#pragma once

#define DF_U32(field, k) (((u32*)blk[field])[(u64)(k) * N + inst])
#define DF_U64(field, k) (((u64*)blk[field])[(u64)(k) * N + inst])

// The preopen index of fd (fd 3 + k), or -1.
DEV int df_preopen(const u64* blk, u32 inst, u64 N, u32 fd) {
  if (fd < 3 || fd - 3 >= DF_PREOPENS) return -1;
  return DF_U32(W_PRE_ROOT, fd - 3) == DF_NO_ROOT ? -1 : (int)(fd - 3);
}

// The device slot holding fd, or -1.
DEV int df_slot(const u64* blk, u32 inst, u64 N, u32 fd) {
  for (u32 k = 0; k < DF_SLOTS; k++)
    if (DF_U32(W_FD_NUM, k) == fd) return (int)k;
  return -1;
}

// FNV-1a 64 of the root (4 bytes, little-endian), then `pn` bytes of a directory's path in the snapshot and
// '/' (none where pn is 0), then the guest's path; false where the guest's path is not one the snapshot can
// hold: empty, absolute, with a trailing slash, an empty, "." or ".." component, or a NUL.
DEV bool df_hash(u32 root, const u8* pre, u64 pn, MemRef r, u64 p, u64 n, u64* out) {
  if (n == 0 || n > DF_PATH_MAX) return false;
  u64 h = 0xcbf29ce484222325ull;
  for (int k = 0; k < 4; k++) h = (h ^ ((root >> (8 * k)) & 0xff)) * 0x100000001b3ull;
  for (u64 k = 0; k < pn; k++) h = (h ^ pre[k]) * 0x100000001b3ull;
  if (pn) h = (h ^ (u8)'/') * 0x100000001b3ull;
  u64 start = 0;
  for (u64 k = 0; k <= n; k++) {
    const u8 c = k < n ? mem_load<u8>(r, p + k) : (u8)'/';
    if (c == 0) return false;
    if (c == '/') {
      const u64 len = k - start;
      if (len == 0) return false;
      if (len <= 2 && mem_load<u8>(r, p + start) == '.' && (len == 1 || mem_load<u8>(r, p + start + 1) == '.'))
        return false;
      start = k + 1;
    }
    if (k < n) h = (h ^ c) * 0x100000001b3ull;
  }
  *out = h;
  return true;
}

// The snapshot's file at (root, prefix/path), or DF_NO_FD.
DEV u32 df_lookup(const u64* blk, u32 root, const u8* pre, u64 pn, MemRef r, u64 p, u64 n) {
  u64 h;
  if (!df_hash(root, pre, pn, r, p, n, &h)) return DF_NO_FD;
  const u64* names = (const u64*)blk[W_NAMES];
  const u8* bytes = (const u8*)blk[W_NAME_BYTES];
  const u64 at = pn ? pn + 1 : 0, mask = blk[W_NAME_MASK], want = (at + n) | ((u64)root << 32);
  for (u64 s = h & mask;; s = (s + 1) & mask) {
    const u64* e = names + s * NT_FIELDS;
    if (e[NT_LEN_ROOT] == DF_EMPTY) return DF_NO_FD;
    if (e[NT_HASH] != h || e[NT_LEN_ROOT] != want) continue;
    const u8* name = bytes + e[NT_NAME];
    u64 k = 0;
    while (k < pn && name[k] == pre[k]) k++;
    if (k < pn || (pn && name[pn] != '/')) continue;
    k = 0;
    while (k < n && name[at + k] == mem_load<u8>(r, p + k)) k++;
    if (k == n) return (u32)e[NT_FILE];
  }
}

// The row of file `file` in W_FILE_INFO.
DEV const u64* df_info(const u64* blk, u32 file) { return (const u64*)blk[W_FILE_INFO] + (u64)file * FI_FIELDS; }

// The file a path names below descriptor fd (preopen `pre`, or a directory the device opened, in `slot`):
// "." the directory itself (a preopen's if listed), any other path one of the snapshot's below it; DF_NO_FD
// where there is none, or fd is no directory the device knows.
DEV u32 df_path(const u64* blk, u32 inst, u64 N, int pre, int slot, MemRef r, u64 p, u64 n) {
  u32 root, dir = DF_NO_FD;
  const u8* prefix = (const u8*)blk[W_NAME_BYTES];  // none (pn 0), but never a null pointer
  u64 pn = 0;
  if (pre >= 0) {
    root = DF_U32(W_PRE_ROOT, pre);
  } else if (slot >= 0 && !(DF_U32(W_FD_FILE, slot) & DF_OV_BIT) &&
             df_info(blk, DF_U32(W_FD_FILE, slot))[FI_DIR] != DF_NOT_DIR) {  // a snapshot directory
    dir = DF_U32(W_FD_FILE, slot);
    const u64* info = df_info(blk, dir);
    root = (u32)info[FI_ROOT];
    prefix = (const u8*)blk[W_NAME_BYTES] + (info[FI_NAME] >> 16);
    pn = info[FI_NAME] & 0xffff;
  } else {
    return DF_NO_FD;
  }
  if (n == 1 && mem_load<u8>(r, p) == '.') return pre >= 0 ? ((const u32*)blk[W_ROOT_DIR])[root] : dir;
  return df_lookup(blk, root, prefix, pn, r, p, n);
}

// The iovec array (iovs, count) checked against the memory: its total length, or false (the host answers).
DEV bool df_iovecs(MemRef r, u64 size, u64 iovs, u64 count, u64* total) {
  if (iovs + 8 * count > size) return false;
  u64 t = 0;
  for (u64 k = 0; k < count; k++) {
    const u64 b = mem_load<u32>(r, iovs + 8 * k), n = mem_load<u32>(r, iovs + 8 * k + 4);
    if (b + n > size) return false;
    t += n;
  }
  *total = t;
  return true;
}

// Up to `total` bytes of a file from `at` into the iovecs: the number copied.
DEV u64 df_scatter(MemRef r, u64 iovs, u64 count, const u8* data, u64 size, u64 at, u64 total) {
  u64 left = at < size ? size - at : 0;
  if (left > total) left = total;
  const u64 n = left;
  for (u64 k = 0; k < count && left; k++) {
    const u64 b = mem_load<u32>(r, iovs + 8 * k);
    u64 m = mem_load<u32>(r, iovs + 8 * k + 4);
    if (m > left) m = left;
    mem_init(r, b, data + at, m);
    at += m;
    left -= m;
  }
  return n;
}

// fd_read of fd 0 for an instance with WF_STDIN: its stdin's bytes (W_STDIN) from where it has read to.
DEV u32 df_stdin_read(u64* blk, u32 inst, u64 N, MemRef r, u64 size, u64 iovs, u64 count, u64 nread) {
  u64 total;
  if (!df_iovecs(r, size, iovs, count, &total) || nread + 4 > size) return WF_HOST;
  u64* info = (u64*)blk[W_STDIN_INFO];
  u64* pos = &info[SD_POS * N + inst];
  const u64 n = df_scatter(r, iovs, count, (const u8*)blk[W_STDIN] + info[SD_BASE * N + inst],
                           info[SD_LEN * N + inst], *pos, total);
  *pos += n;
  mem_store<u32>(r, nread, (u32)n);
  return WF_DONE;
}


// ---- Files and directories made on the device (W_OV_*): new names in directories whose whole listing the
// snapshot has, under a root no other instance reaches; the host makes them on its file system when it
// takes the instance over or the instance ends (devfiles.py DeviceFiles._make).

// One of the instance's overlay buffers (W_OV_NAMES, W_OV_BUF) as a memory of `cap` bytes.
DEV MemRef df_ov_ref(const u64* blk, u32 field, u64 cap, u32 inst, u64 N) {
  const u64 rec[M_FIELDS] = {blk[field], cap, 0};
  return mem_ref(rec, 0, inst, N);
}

// The overlay slot holding the path (root, prefix/guest path), or -1; `h` is its df_hash.
DEV int df_ov_find(const u64* blk, u32 inst, u64 N, u32 root, const u8* pre, u64 pn, MemRef r, u64 p, u64 n, u64 h) {
  const u64 len = pn ? pn + 1 + n : n;
  const MemRef names = df_ov_ref(blk, W_OV_NAMES, DF_OV_NAME_CAP, inst, N);
  const u32 count = DF_U32(W_FD_META, FM_OV_COUNT);
  for (u32 k = 0; k < count; k++) {
    const u64 e = DF_U64(W_OV_NAME, k);
    if (DF_U64(W_OV_HASH, k) != h || (e & 0xffff) != len || ((e >> 32) & 0x1fffffff) != root || (e & OV_GONE))
      continue;
    const u64 at = (e >> 16) & 0xffff;
    u64 j = 0;
    while (j < pn && mem_load<u8>(names, at + j) == pre[j]) j++;
    if (j < pn || (pn && mem_load<u8>(names, at + pn) != '/')) continue;
    const u64 off = pn ? at + pn + 1 : at;
    j = 0;
    while (j < n && mem_load<u8>(names, off + j) == mem_load<u8>(r, p + j)) j++;
    if (j == n) return (int)k;
  }
  return -1;
}

// Whether listing `dir` (a snapshot directory) has an entry named by the guest's bytes [p, p + n).
DEV bool df_listed(const u64* blk, u32 dir, MemRef r, u64 p, u64 n) {
  const u64* d = (const u64*)blk[W_DIR_INFO] + df_info(blk, dir)[FI_DIR] * DI_FIELDS;
  const u64* offs = (const u64*)blk[W_DIR_OFFS] + d[DI_OFFS];
  const u8* bytes = (const u8*)blk[W_DIR_BYTES];
  for (u64 k = 2; k < d[DI_COUNT]; k++) {  // past "." and ".."
    const u8* rec = bytes + offs[k];
    u32 len;
    memcpy(&len, rec + 16, 4);  // the dirent's d_namlen
    if (len != n) continue;
    u64 j = 0;
    while (j < n && rec[24 + j] == mem_load<u8>(r, p + j)) j++;
    if (j == n) return true;
  }
  return false;
}

// The directory descriptor fd names (preopen `pre`, or a snapshot directory the device opened in `slot`): its
// root, its path in the snapshot (prefix, pn) and its file (*at_dir); false where it is neither.
DEV bool df_dir_of(const u64* blk, u32 inst, u64 N, int pre, int slot, u32* root, const u8** prefix, u64* pn,
                   u32* at_dir) {
  *prefix = (const u8*)blk[W_NAME_BYTES];  // none (pn 0), but never a null pointer
  *pn = 0;
  if (pre >= 0) {
    *root = DF_U32(W_PRE_ROOT, pre);
    *at_dir = ((const u32*)blk[W_ROOT_DIR])[*root];
    return true;
  }
  if (slot < 0 || (DF_U32(W_FD_FILE, slot) & DF_OV_BIT) || df_info(blk, DF_U32(W_FD_FILE, slot))[FI_DIR] == DF_NOT_DIR)
    return false;
  *at_dir = DF_U32(W_FD_FILE, slot);
  const u64* info = df_info(blk, *at_dir);
  *root = (u32)info[FI_ROOT];
  *prefix = (const u8*)blk[W_NAME_BYTES] + (info[FI_NAME] >> 16);
  *pn = info[FI_NAME] & 0xffff;
  return true;
}

// path_unlink_file of a file made here and not open: it is gone (never made on the host); else the host's.
DEV bool df_unlink(u64* blk, u32 inst, u64 N, int pre, int slot, MemRef r, u64 path, u64 n) {
  u32 root, at_dir;
  const u8* prefix;
  u64 pn, h;
  if (blk[W_OV_CAP] == 0 || !df_dir_of(blk, inst, N, pre, slot, &root, &prefix, &pn, &at_dir) ||
      !df_hash(root, prefix, pn, r, path, n, &h))
    return false;
  const int k = df_ov_find(blk, inst, N, root, prefix, pn, r, path, n, h);
  if (k < 0 || (DF_U64(W_OV_NAME, k) & (OV_DIR | OV_REPLACE))) return false;
  for (u32 j = 0; j < DF_SLOTS; j++)
    if (DF_U32(W_FD_NUM, j) != DF_NO_FD && (DF_U32(W_FD_FILE, j) & DF_OV_BIT) &&
        (DF_U32(W_FD_FILE, j) & ~DF_OV_FLAGS) == (u32)k)
      return false;
  DF_U64(W_OV_NAME, k) |= OV_GONE;
  return true;
}

// What df_make did: made the name (its slot in *made), found it there already (the host's answer would be
// EEXIST), or left it to the host.
enum DevMake { DF_MADE, DF_EXISTS, DF_TO_HOST };

// Makes the name `path` below directory fd (preopen `pre`, or the directory the device opened in `slot`) in
// the overlay. DF_TO_HOST where its parent is not a directory the device knows whole, the root is shared,
// the path has bytes other than printable ASCII, or there is no room; DF_EXISTS where the name exists
// (`trunc`: but for a regular file of the snapshot with one link and not open here, which is replaced).
DEV u32 df_make(u64* blk, u32 inst, u64 N, int pre, int slot, MemRef r, u64 path, u64 n, bool dir, bool trunc,
                u32* made) {
  u32 root, at_dir;
  const u8* prefix;
  u64 pn;
  if (blk[W_OV_CAP] == 0 || !df_dir_of(blk, inst, N, pre, slot, &root, &prefix, &pn, &at_dir)) return DF_TO_HOST;
  if (((const u32*)blk[W_ROOT_SHARED])[root]) return DF_TO_HOST;
  const u32 count = DF_U32(W_FD_META, FM_OV_COUNT), used = DF_U32(W_FD_META, FM_OV_NAMES);
  const u64 len = pn ? pn + 1 + n : n;
  u64 h, cut = n;
  if (!df_hash(root, prefix, pn, r, path, n, &h)) return DF_TO_HOST;
  for (u64 k = 0; k < n; k++) {
    const u8 c = mem_load<u8>(r, path + k);
    if (c < 0x20 || c > 0x7e) return DF_TO_HOST;
    if (c == '/') cut = k;
  }
  if (df_ov_find(blk, inst, N, root, prefix, pn, r, path, n, h) >= 0) return DF_EXISTS;
  // The parent: the directory itself, a snapshot directory below it, or one made here.
  if (cut < n) {
    const u32 up = df_lookup(blk, root, prefix, pn, r, path, cut);
    if (up == DF_NO_FD) {
      u64 uh;
      if (!df_hash(root, prefix, pn, r, path, cut, &uh)) return DF_TO_HOST;
      const int k = df_ov_find(blk, inst, N, root, prefix, pn, r, path, cut, uh);
      if (k < 0 || !(DF_U64(W_OV_NAME, k) & OV_DIR)) return DF_TO_HOST;
      at_dir = DF_NO_FD;  // a directory made here: nothing in it but what the overlay holds
    } else {
      at_dir = up;
    }
  }
  const u64 name = cut < n ? cut + 1 : 0;
  u64 replace = 0;
  if (at_dir != DF_NO_FD) {
    if (df_info(blk, at_dir)[FI_DIR] == DF_NOT_DIR) return DF_TO_HOST;
    if (df_listed(blk, at_dir, r, path + name, n - name)) {
      // An existing name: only a regular file of the snapshot opened to truncate, with no other link and
      // not open here, is replaced (the snapshot's own bytes are then the host's to read).
      const u32 old = df_lookup(blk, root, prefix, pn, r, path, n);
      if (dir || !trunc || old == DF_NO_FD || df_info(blk, old)[FI_DIR] != DF_NOT_DIR) return DF_EXISTS;
      u64 nlink;
      memcpy(&nlink, (const u8*)blk[W_FILE_STAT] + (u64)old * 64 + 24, 8);
      if (nlink != 1) return DF_TO_HOST;
      for (u32 k = 0; k < DF_SLOTS; k++)
        if (DF_U32(W_FD_NUM, k) != DF_NO_FD && DF_U32(W_FD_FILE, k) == old) return DF_TO_HOST;
      replace = OV_REPLACE;
    }
  } else if (cut == n) {
    return DF_TO_HOST;  // the directory fd names is not one the snapshot lists
  }
  if (count == DF_OV_SLOTS || used + len > DF_OV_NAME_CAP) return DF_TO_HOST;
  const MemRef names = df_ov_ref(blk, W_OV_NAMES, DF_OV_NAME_CAP, inst, N);
  for (u64 k = 0; k < pn; k++) mem_store<u8>(names, used + k, prefix[k]);
  if (pn) mem_store<u8>(names, used + pn, (u8)'/');
  wf_copy(names, used + (pn ? pn + 1 : 0), r, path, n);
  DF_U64(W_OV_HASH, count) = h;
  DF_U64(W_OV_NAME, count) = len | ((u64)used << 16) | ((u64)root << 32) | (dir ? OV_DIR : 0ull) | replace;
  DF_U64(W_OV_DATA, count) = 0;
  DF_U32(W_FD_META, FM_OV_COUNT) = count + 1;
  if (replace) DF_U32(W_FD_META, FM_OV_REPLACED)++;
  DF_U32(W_FD_META, FM_OV_NAMES) = (u32)(used + len);
  *made = count;
  return DF_MADE;
}

// The number the host's table would give a new descriptor (fds.FdTable.add, as wasmtime): the largest freed
// one, else a new one.
DEV u32 df_new_number(const u64* blk, u32 inst, u64 N) {
  const u32 nfree = DF_U32(W_FD_META, FM_NFREE);
  if (nfree == 0) return DF_U32(W_FD_META, FM_NEXT)++;
  u32 best = 0;
  for (u32 k = 1; k < nfree; k++)
    if (DF_U32(W_FD_FREE, k) > DF_U32(W_FD_FREE, best)) best = k;
  const u32 num = DF_U32(W_FD_FREE, best);
  DF_U32(W_FD_FREE, best) = DF_U32(W_FD_FREE, nfree - 1);
  DF_U32(W_FD_META, FM_NFREE) = nfree - 1;
  return num;
}

// fd_write to a file made here, at its position (`append`: at its end): a record of the instance's writes (the
// host makes them in order), where the buffer has room.
DEV u32 df_ov_write(u64* blk, u32 inst, u64 N, MemRef r, u64 size, u32 k, u64* pos, bool append, u64 iovs,
                    u64 count, u64 nwritten) {
  u64 total;
  const u64 at_pos = append ? DF_U64(W_OV_DATA, k) : *pos;
  if (!df_iovecs(r, size, iovs, count, &total) || nwritten + 4 > size || at_pos > 0x7fffffffffffffffull - total)
    return WF_HOST;
  if (total > 0) {
    const u64 at = DF_U32(W_FD_META, FM_OV_USED), need = 16 + ((total + 3) & ~3ull);
    if (at + need > blk[W_OV_CAP]) return WF_HOST;
    const MemRef buf = df_ov_ref(blk, W_OV_BUF, blk[W_OV_CAP], inst, N);
    mem_store<u32>(buf, at, k);
    mem_store<u32>(buf, at + 4, (u32)total);
    mem_store<u32>(buf, at + 8, (u32)at_pos);
    mem_store<u32>(buf, at + 12, (u32)(at_pos >> 32));
    u64 d = at + 16;
    for (u64 j = 0; j < count; j++) {
      const u64 b = mem_load<u32>(r, iovs + 8 * j), m = mem_load<u32>(r, iovs + 8 * j + 4);
      wf_copy(buf, d, r, b, m);
      d += m;
    }
    DF_U32(W_FD_META, FM_OV_USED) = (u32)(at + need);
    *pos = at_pos + total;
    if (*pos > DF_U64(W_OV_DATA, k)) DF_U64(W_OV_DATA, k) = *pos;
  } else if (append) {
    *pos = at_pos;  // as wasmtime: to the end, even with nothing to write
  }
  mem_store<u32>(r, nwritten, (u32)total);
  return WF_DONE;
}

// `m` bytes from `src` at `s` into the iovecs (iovs, count), `off` bytes into them.
DEV void df_to_iovecs(MemRef r, u64 iovs, u64 count, u64 off, MemRef src, u64 s, u64 m) {
  for (u64 j = 0; j < count && m; j++) {
    const u64 b = mem_load<u32>(r, iovs + 8 * j), len = mem_load<u32>(r, iovs + 8 * j + 4);
    if (off >= len) { off -= len; continue; }
    const u64 c = len - off < m ? len - off : m;
    wf_copy(r, b + off, src, s, c);
    s += c;
    m -= c;
    off = 0;
  }
}

// fd_read/fd_pread of a file made here, from `at`: its bytes rebuilt from the instance's records (zeros where
// nothing was written, then each write of it in order). The number of bytes given.
DEV u64 df_ov_read(const u64* blk, u32 inst, u64 N, MemRef r, u32 k, u64 at, u64 iovs, u64 count, u64 total) {
  const u64 fsize = DF_U64(W_OV_DATA, k);
  const u64 n = at < fsize ? (fsize - at < total ? fsize - at : total) : 0;
  u64 left = n;
  for (u64 j = 0; j < count && left; j++) {
    const u64 b = mem_load<u32>(r, iovs + 8 * j), len = mem_load<u32>(r, iovs + 8 * j + 4);
    const u64 c = len < left ? len : left;
    for (u64 x = 0; x < c; x++) mem_store<u8>(r, b + x, (u8)0);
    left -= c;
  }
  const MemRef buf = df_ov_ref(blk, W_OV_BUF, blk[W_OV_CAP], inst, N);
  const u64 used = DF_U32(W_FD_META, FM_OV_USED);
  for (u64 p = 0; p + 16 <= used;) {
    const u64 slot = mem_load<u32>(buf, p), len = mem_load<u32>(buf, p + 4);
    const u64 where = mem_load<u32>(buf, p + 8) | ((u64)mem_load<u32>(buf, p + 12) << 32);
    if (slot == k) {
      const u64 lo = where > at ? where : at, hi = where + len < at + n ? where + len : at + n;
      if (lo < hi) df_to_iovecs(r, iovs, count, lo - at, buf, p + 16 + (lo - where), hi - lo);
    }
    p += 16 + ((len + 3) & ~3ull);
  }
  return n;
}

// A guest path's leading "./" (a C program's "./out.txt") names what the rest names below the same directory:
// skipped, so that such a path finds the snapshot's and the overlay's names, which hold no "." component.
DEV void df_skip_dot(MemRef r, u64* p, u64* n) {
  while (*n > 2 && mem_load<u8>(r, *p) == '.' && mem_load<u8>(r, *p + 1) == '/') {
    *p += 2;
    *n -= 2;
  }
}

// What df_reopen did: opened the made file, found no file made under the name (the snapshot's may be there),
// or left the call to the host.
enum DevReopen { DF_REOPENED, DF_NOT_MADE, DF_REOPEN_HOST };

// path_open of a regular file made here (found in the overlay) without O_EXCL: a new descriptor on it at
// position 0, to write (`write`: with write rights or O_TRUNC, O_CREAT allowed) or to read only. The host's
// where it is a directory, open in another descriptor (the host gives each made file one: devfiles.py _make),
// to be truncated with bytes in it, or asked with other flags.
DEV u32 df_reopen(u64* blk, u32 inst, u64 N, int pre, int dslot, MemRef r, u64 path, u64 n, u64 oflags, u64 rights,
                  u64 fdflags, bool write, u64 out, u32* e) {
  u32 root, at_dir;
  const u8* prefix;
  u64 pn, h;
  if (blk[W_OV_CAP] == 0 || !df_dir_of(blk, inst, N, pre, dslot, &root, &prefix, &pn, &at_dir) ||
      !df_hash(root, prefix, pn, r, path, n, &h))
    return write ? DF_REOPEN_HOST : DF_NOT_MADE;
  const int k = df_ov_find(blk, inst, N, root, prefix, pn, r, path, n, h);
  if (k < 0) return write ? DF_REOPEN_HOST : DF_NOT_MADE;
  const u64 allowed = write ? blk[W_OFLAGS_CREAT] | blk[W_OFLAGS_TRUNC] : 0;
  if ((DF_U64(W_OV_NAME, k) & OV_DIR) || (oflags & ~allowed) != 0 ||
      (fdflags != 0 && !(write && fdflags == blk[W_FDFLAGS_APPEND])) ||
      ((oflags & blk[W_OFLAGS_TRUNC]) && DF_U64(W_OV_DATA, k) != 0))
    return DF_REOPEN_HOST;
  for (u32 j = 0; j < DF_SLOTS; j++)
    if (DF_U32(W_FD_NUM, j) != DF_NO_FD && (DF_U32(W_FD_FILE, j) & DF_OV_BIT) &&
        (DF_U32(W_FD_FILE, j) & ~DF_OV_FLAGS) == (u32)k)
      return DF_REOPEN_HOST;
  const int slot = df_slot(blk, inst, N, DF_NO_FD);
  if (slot < 0) return DF_REOPEN_HOST;
  const u32 num = df_new_number(blk, inst, N);
  DF_U32(W_FD_NUM, slot) = num;
  DF_U32(W_FD_FILE, slot) = DF_OV_BIT | (!write || (rights & blk[W_READ_RIGHTS]) ? DF_OV_READ : 0u) |
                            (write ? 0u : DF_OV_RDONLY) | (fdflags ? DF_OV_APPEND : 0u) | (u32)k;
  DF_U64(W_FD_POS, slot) = 0;
  mem_store<u32>(r, out, num);
  *e = WASI_SUCCESS;
  return DF_REOPENED;
}

// One of the calls below for an instance with WF_FILES: WF_DONE with *e set, or WF_HOST.
DEV u32 df_call(u64* blk, u32 inst, u64 N, MemRef r, u64 size, u32 kind, u64* sl, u64 ss, u32 cfp, u32* e) {
#define DF_ARG(k) sl[(u64)(cfp + (k)) * ss]
  const u32 fd = (u32)DF_ARG(0);
  const int pre = df_preopen(blk, inst, N, fd);
  // Once the instance made something here, the snapshot's directories are not what the host's are now.
  const bool changed = DF_U32(W_FD_META, FM_OV_COUNT) > 0;
  // And once it replaced a file of the snapshot, the snapshot's files may not be what the paths name now.
  const bool replaced = DF_U32(W_FD_META, FM_OV_REPLACED) > 0;
  if (kind == WK_FD_PRESTAT_GET || kind == WK_FD_PRESTAT_DIR_NAME) {
    // Every descriptor is a preopen, stdio or one opened here: all but the preopens answer EBADF.
    if (pre < 0) { *e = WASI_EBADF; return WF_DONE; }
    const u64 name = DF_U64(W_PRE_NAME, pre), off = name >> 16, len = name & 0xffff;
    if (kind == WK_FD_PRESTAT_GET) {
      const u64 out = (u32)DF_ARG(1);
      if (out + 8 > size) { *e = WASI_EFAULT; return WF_DONE; }
      mem_store<u32>(r, out, 0u);  // PREOPENTYPE_DIR and padding
      mem_store<u32>(r, out + 4, (u32)len);
    } else {
      const u64 path = (u32)DF_ARG(1), cap = (u32)DF_ARG(2);
      if (cap < len) { *e = WASI_ENAMETOOLONG; return WF_DONE; }
      if (path + len > size) { *e = WASI_EFAULT; return WF_DONE; }
      mem_init(r, path, (const u8*)blk[W_NAME_BYTES] + off, len);
    }
    *e = WASI_SUCCESS;
    return WF_DONE;
  }
  if (kind == WK_PATH_UNLINK_FILE) {
    u64 path = (u32)DF_ARG(1), plen = (u32)DF_ARG(2);
    if (path + plen > size) return WF_HOST;
    df_skip_dot(r, &path, &plen);
    if (!df_unlink(blk, inst, N, pre, df_slot(blk, inst, N, fd), r, path, plen)) return WF_HOST;
    *e = WASI_SUCCESS;
    return WF_DONE;
  }
  if (kind == WK_PATH_CREATE_DIRECTORY) {
    u64 path = (u32)DF_ARG(1), plen = (u32)DF_ARG(2);
    u32 made;
    if (path + plen > size) return WF_HOST;
    df_skip_dot(r, &path, &plen);
    const u32 how = df_make(blk, inst, N, pre, df_slot(blk, inst, N, fd), r, path, plen, true, false, &made);
    if (how == DF_TO_HOST) return WF_HOST;
    *e = how == DF_EXISTS ? WASI_EEXIST : WASI_SUCCESS;
    return WF_DONE;
  }
  if (kind == WK_PATH_OPEN && ((u32)DF_ARG(4) & blk[W_OFLAGS_CREAT])) {
    // A new file opened to write, without fdflags: made here. All else that creates is the host's.
    u64 path = (u32)DF_ARG(2), plen = (u32)DF_ARG(3);
    const u64 oflags = (u32)DF_ARG(4), rights = DF_ARG(5), fdflags = (u32)DF_ARG(7), out = (u32)DF_ARG(8);
    const bool write = (rights & blk[W_WRITE_RIGHTS]) || (oflags & blk[W_OFLAGS_TRUNC]);
    if ((oflags & ~(blk[W_OFLAGS_CREAT] | blk[W_OFLAGS_TRUNC] | blk[W_OFLAGS_EXCL])) != 0 || !write ||
        (fdflags != 0 && fdflags != blk[W_FDFLAGS_APPEND]))
      return WF_HOST;
    if (path + plen > size || out + 4 > size) return WF_HOST;
    df_skip_dot(r, &path, &plen);
    const int slot = df_slot(blk, inst, N, DF_NO_FD);
    u32 made;
    const bool excl = (oflags & blk[W_OFLAGS_EXCL]) != 0, trunc = (oflags & blk[W_OFLAGS_TRUNC]) && !excl;
    if (slot < 0) return WF_HOST;
    const u32 how = df_make(blk, inst, N, pre, df_slot(blk, inst, N, fd), r, path, plen, false, trunc, &made);
    if (how == DF_EXISTS && excl) { *e = WASI_EEXIST; return WF_DONE; }
    if (how == DF_EXISTS)
      return df_reopen(blk, inst, N, pre, df_slot(blk, inst, N, fd), r, path, plen, oflags, rights, fdflags, true, out,
                       e) == DF_REOPENED ? WF_DONE : WF_HOST;
    if (how != DF_MADE) return WF_HOST;
    const u32 num = df_new_number(blk, inst, N);
    DF_U32(W_FD_NUM, slot) = num;
    DF_U32(W_FD_FILE, slot) = DF_OV_BIT | ((rights & blk[W_READ_RIGHTS]) ? DF_OV_READ : 0u) |
                              (fdflags ? DF_OV_APPEND : 0u) | made;
    DF_U64(W_FD_POS, slot) = 0;
    mem_store<u32>(r, out, num);
    *e = WASI_SUCCESS;
    return WF_DONE;
  }
  if (kind == WK_PATH_OPEN) {
    // A file made here opened again (df_reopen), or a read-only open of a regular file or a directory of the
    // snapshot, without flags (but the one that asks for a directory): all else is the host's.
    u64 path = (u32)DF_ARG(2), plen = (u32)DF_ARG(3);
    const u64 oflags = (u32)DF_ARG(4), rights = DF_ARG(5), fdflags = (u32)DF_ARG(7), out = (u32)DF_ARG(8);
    if (path + plen > size || out + 4 > size) return WF_HOST;
    df_skip_dot(r, &path, &plen);
    const bool write = (rights & blk[W_WRITE_RIGHTS]) || (oflags & blk[W_OFLAGS_TRUNC]);
    const u32 again = df_reopen(blk, inst, N, pre, df_slot(blk, inst, N, fd), r, path, plen, oflags, rights, fdflags,
                                write, out, e);
    if (again != DF_NOT_MADE) return again == DF_REOPENED ? WF_DONE : WF_HOST;
    if ((oflags & ~blk[W_OPEN_DIRECTORY]) != 0) return WF_HOST;
    const u32 file = df_path(blk, inst, N, pre, df_slot(blk, inst, N, fd), r, path, plen);
    if (file == DF_NO_FD) return WF_HOST;
    const bool is_dir = df_info(blk, file)[FI_DIR] != DF_NOT_DIR;
    if (!is_dir && replaced) return WF_HOST;
    if (oflags != 0 && !is_dir) return WF_HOST;  // ENOTDIR: the host says it
    // A file without fdflags; a directory also with the one it keeps (wasi-libc's opendir asks NONBLOCK).
    if (fdflags != 0 && !(is_dir && fdflags == blk[W_DIR_FDFLAGS])) return WF_HOST;
    const int slot = df_slot(blk, inst, N, DF_NO_FD);
    if (slot < 0) return WF_HOST;
    const u32 num = df_new_number(blk, inst, N);
    DF_U32(W_FD_NUM, slot) = num;
    DF_U32(W_FD_FILE, slot) = file;
    DF_U64(W_FD_POS, slot) = fdflags;  // a file's position (0), or a directory's fdflags
    mem_store<u32>(r, out, num);
    *e = WASI_SUCCESS;
    return WF_DONE;
  }
  if (kind == WK_PATH_FILESTAT_GET) {  // a snapshot file's stat (a regular file: no link to follow or not)
    u64 path = (u32)DF_ARG(2), plen = (u32)DF_ARG(3);
    const u64 out = (u32)DF_ARG(4);
    if (path + plen > size || out + 64 > size) return WF_HOST;
    df_skip_dot(r, &path, &plen);
    const u32 file = df_path(blk, inst, N, pre, df_slot(blk, inst, N, fd), r, path, plen);
    if (file == DF_NO_FD || (df_info(blk, file)[FI_DIR] != DF_NOT_DIR ? changed : replaced)) return WF_HOST;
    mem_init(r, out, (const u8*)blk[W_FILE_STAT] + (u64)file * 64, 64);
    *e = WASI_SUCCESS;
    return WF_DONE;
  }
  const int slot = df_slot(blk, inst, N, fd);
  const u32 file = slot >= 0 ? DF_U32(W_FD_FILE, slot) : DF_NO_FD;
  const bool made = file != DF_NO_FD && (file & DF_OV_BIT);  // a file made here (W_OV_*), not the snapshot's
  if (kind == WK_FD_WRITE && (!made || (file & DF_OV_RDONLY))) return WF_HOST;
  // A snapshot file's row; row 0 (always there) otherwise, so that no load is ever through a null pointer:
  // compute-sanitizer saw a read at 0x10 here for made files, which the source guards against.
  const bool snap = file != DF_NO_FD && !made;
  const u64* info = df_info(blk, snap ? file : 0);
  const bool dir = snap && info[FI_DIR] != DF_NOT_DIR;
  if (kind == WK_FD_FDSTAT_GET && (slot >= 0 || pre >= 0)) {
    // A file or a directory opened here, or a preopen (whose flags and rights change only on the host).
    const u64 out = (u32)DF_ARG(1);
    if (out + 24 > size) return WF_HOST;
    const u64 row = slot < 0 ? 1
                    : made  ? ((file & DF_OV_RDONLY) ? 0 : 4 + ((file & DF_OV_READ) ? 1 : 0) + ((file & DF_OV_APPEND) ? 2 : 0))
                    : !dir  ? 0
                    : DF_U64(W_FD_POS, slot) ? 3 : 2;
    mem_init(r, out, (const u8*)blk[W_FDSTATS] + 24 * row, 24);
    *e = WASI_SUCCESS;
    return WF_DONE;
  }
  if (kind == WK_FD_READDIR) {
    // A directory opened here or a preopen, from its listing in the snapshot; a file is the host's (EBADF).
    const u32 listed = slot >= 0 ? (dir ? file : DF_NO_FD)
                                 : pre >= 0 ? ((const u32*)blk[W_ROOT_DIR])[DF_U32(W_PRE_ROOT, pre)] : DF_NO_FD;
    const u64 buf = (u32)DF_ARG(1), len = (u32)DF_ARG(2), cookie = DF_ARG(3), used = (u32)DF_ARG(4);
    if (listed == DF_NO_FD || changed || buf + len > size || used + 4 > size) return WF_HOST;
    const u64* d = (const u64*)blk[W_DIR_INFO] + df_info(blk, listed)[FI_DIR] * DI_FIELDS;
    const u64* offs = (const u64*)blk[W_DIR_OFFS] + d[DI_OFFS];
    const u64 count = d[DI_COUNT], start = offs[cookie < count ? cookie : count];
    u64 n = offs[count] - start;
    if (n > len) n = len;
    mem_init(r, buf, (const u8*)blk[W_DIR_BYTES] + start, n);
    mem_store<u32>(r, used, (u32)n);
    *e = WASI_SUCCESS;
    return WF_DONE;
  }
  if (slot < 0) return WF_HOST;  // stdio or a preopen: the host's
  const u32 k = file & ~DF_OV_FLAGS;  // a made file's overlay slot
  const u64 fsize = made ? DF_U64(W_OV_DATA, k) : info[FI_SIZE];
  u64* pos = &DF_U64(W_FD_POS, slot);
  if (dir && kind != WK_FD_FILESTAT_GET && kind != WK_FD_CLOSE) return WF_HOST;  // reading a directory: EBADF there
  switch (kind) {
    case WK_FD_WRITE:  // a made file's (others went to the host above)
      if (df_ov_write(blk, inst, N, r, size, k, pos, (file & DF_OV_APPEND) != 0, (u32)DF_ARG(1), (u32)DF_ARG(2),
                      (u32)DF_ARG(3)) == WF_HOST)
        return WF_HOST;
      break;
    case WK_FD_READ: case WK_FD_PREAD: {
      const bool p = kind == WK_FD_PREAD;
      const u64 iovs = (u32)DF_ARG(1), count = (u32)DF_ARG(2), at = p ? DF_ARG(3) : *pos;
      const u64 nread = (u32)DF_ARG(p ? 4 : 3);
      u64 total;
      // A range past 2^63 is the kernel's EINVAL: the host answers it; so does a made file opened to write only.
      if ((made && !(file & DF_OV_READ)) || !df_iovecs(r, size, iovs, count, &total) || nread + 4 > size ||
          at > 0x7fffffffffffffffull - total)
        return WF_HOST;
      const u64 n = made ? df_ov_read(blk, inst, N, r, k, at, iovs, count, total)
                         : df_scatter(r, iovs, count, (const u8*)blk[W_FILE_DATA] + info[FI_DATA], fsize, at, total);
      if (!p) *pos = at + n;
      mem_store<u32>(r, nread, (u32)n);
      break;
    }
    case WK_FD_SEEK: {
      const i64 off = (i64)DF_ARG(1);
      const u32 whence = (u32)DF_ARG(2);
      const u64 out = (u32)DF_ARG(3);
      if (out + 8 > size || whence > 2) return WF_HOST;
      const i64 base = whence == 0 ? 0 : whence == 1 ? (i64)*pos : (i64)fsize;
      if (off < -base || (off > 0 && base > 0x7fffffffffffffffll - off)) return WF_HOST;
      *pos = (u64)(base + off);
      mem_store<u64>(r, out, *pos);
      break;
    }
    case WK_FD_TELL: {
      const u64 out = (u32)DF_ARG(1);
      if (out + 8 > size) return WF_HOST;
      mem_store<u64>(r, out, *pos);
      break;
    }
    case WK_FD_FILESTAT_GET: {  // a made file's is the host's, once it is made there
      const u64 out = (u32)DF_ARG(1);
      if (made || out + 64 > size || (dir && changed)) return WF_HOST;
      mem_init(r, out, (const u8*)blk[W_FILE_STAT] + (u64)file * 64, 64);
      break;
    }
    case WK_FD_CLOSE: {
      const u32 nfree = DF_U32(W_FD_META, FM_NFREE);
      if (nfree == DF_QUEUE) return WF_HOST;
      DF_U32(W_FD_FREE, nfree) = fd;
      DF_U32(W_FD_META, FM_NFREE) = nfree + 1;
      DF_U32(W_FD_NUM, slot) = DF_NO_FD;
      break;
    }
    default: return WF_HOST;
  }
  *e = WASI_SUCCESS;
  return WF_DONE;
#undef DF_ARG
}

#undef DF_U32
#undef DF_U64
