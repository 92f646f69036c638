// Reading the preopens' regular files for the device snapshot (wasi/devfiles.py scan), many roots at once
// in native threads; without a C++ compiler there is no snapshot and the host serves every file call.
// Every directory and file is opened relative to its parent without following links, so the snapshot holds
// only what a guest could open below the preopen.
//
// A root's result is one buffer of records, each a tag byte then its fields. 'F', a regular file: u32 path
// length, the path (UTF-8, relative, '/'-separated), the 64-byte WASI filestat, u64 data length, the data.
// 'D', a directory's listing (the root's own has the empty path): u32 path length, the path, the 64-byte
// filestat (taken after the listing was read), u32 entry count, then per entry in name order (as the host's
// fd_readdir lists them: wasi/fds.py DirEntry.listing): u64 inode, u8 WASI filetype, u32 name length, name.
// A directory with a name that is not UTF-8, or more than DIR_ENTRIES_MAX entries, has no listing.
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <cerrno>
#include <fcntl.h>
#include <initializer_list>
#include <new>
#include <string>
#include <string_view>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>
#include <unordered_map>
#include <vector>

namespace {

struct Limits {
  int64_t file_max, entries_max, depth_max, path_max, root_max;
  std::atomic<int64_t>* budget;
};

// What one root may still take: entries and bytes.
struct Left {
  int64_t entries, bytes;
};

// Strict UTF-8 (no overlong forms, surrogates or values past U+10FFFF): the names a guest path can spell.
bool valid_utf8(const unsigned char* s, size_t n) {
  for (size_t i = 0; i < n;) {
    const unsigned c = s[i];
    size_t len;
    unsigned cp;
    if (c < 0x80) { i++; continue; }
    if ((c & 0xE0) == 0xC0) { len = 2; cp = c & 0x1F; }
    else if ((c & 0xF0) == 0xE0) { len = 3; cp = c & 0x0F; }
    else if ((c & 0xF8) == 0xF0) { len = 4; cp = c & 0x07; }
    else return false;
    if (i + len > n) return false;
    for (size_t k = 1; k < len; k++) {
      if ((s[i + k] & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (s[i + k] & 0x3F);
    }
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10FFFF ||
        (cp >= 0xD800 && cp <= 0xDFFF))
      return false;
    i += len;
  }
  return true;
}

void put_u32(std::string& out, uint32_t v) { out.append(reinterpret_cast<const char*>(&v), 4); }
void put_u64(std::string& out, uint64_t v) { out.append(reinterpret_cast<const char*>(&v), 8); }

uint64_t ns(const struct timespec& t) { return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec; }

const int64_t DIR_ENTRIES_MAX = 4096;
const unsigned char NOT_WALKED = 0xff;  // a d_type no entry has: an entry neither read nor walked

// WASI's filetype of a mode (wasi/fds.py filetype_of).
unsigned char filetype(mode_t m) {
  return S_ISREG(m) ? 4 : S_ISDIR(m) ? 3 : S_ISLNK(m) ? 7 : S_ISCHR(m) ? 2 : S_ISBLK(m) ? 1 : S_ISSOCK(m) ? 6 : 0;
}

// The 64-byte WASI filestat of st.
void put_filestat(std::string& out, const struct stat& st) {
  put_u64(out, (uint64_t)st.st_dev);
  put_u64(out, (uint64_t)st.st_ino);
  out.push_back((char)filetype(st.st_mode));  // then 7 bytes of padding
  out.append(7, '\0');
  put_u64(out, (uint64_t)st.st_nlink);
  put_u64(out, (uint64_t)st.st_size);
  put_u64(out, ns(st.st_atim));
  put_u64(out, ns(st.st_mtim));
  put_u64(out, ns(st.st_ctim));
}

void read_file(int dir_fd, const char* name, const std::string& path, const Limits& lim, std::string& out,
               Left& left) {
  // O_NOATIME: reading the snapshot must not mark files the guest may never open as read (allowed for the
  // files' owner; others are read without it).
  const int flags = O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC;
  int fd = openat(dir_fd, name, flags | O_NOATIME);
  if (fd < 0 && errno == EPERM) fd = openat(dir_fd, name, flags);
  if (fd < 0) return;
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > lim.file_max || st.st_size > left.bytes) {
    close(fd);
    return;
  }
  const int64_t size = st.st_size;
  if (lim.budget->fetch_sub(size) < size) { lim.budget->fetch_add(size); close(fd); return; }
  std::string data(size + 1, '\0');  // one byte more than expected shows a file that grew
  int64_t got = 0;
  while (got < size + 1) {
    const ssize_t r = read(fd, &data[got], size + 1 - got);
    if (r <= 0) break;
    got += r;
  }
  close(fd);
  if (got != size) { lim.budget->fetch_add(size); return; }  // changed while read: the host serves it
  out.push_back('F');
  put_u32(out, (uint32_t)path.size());
  out += path;
  put_filestat(out, st);
  put_u64(out, (uint64_t)size);
  out.append(data.data(), size);
  left.entries--;
  left.bytes -= size;
}

// The 'D' record of the directory at dir_fd (path prefix, '/'-terminated but for the root) whose entries are
// `names` in name order; none where a name is not UTF-8 or too long, or there are too many.
void list_dir(int dir_fd, const std::string& prefix, const std::vector<std::pair<std::string, unsigned char>>& names,
              const Limits& lim, std::string& out) {
  if ((int64_t)names.size() > DIR_ENTRIES_MAX) return;
  std::string rec;
  uint32_t count = 0;
  for (const auto& entry : names) {
    const std::string& name = entry.first;
    if ((int64_t)(prefix.size() + name.size()) > lim.path_max ||
        !valid_utf8(reinterpret_cast<const unsigned char*>(name.data()), name.size()))
      return;
    struct stat st;
    if (fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) continue;  // gone: the host skips it too
    put_u64(rec, (uint64_t)st.st_ino);
    rec.push_back((char)filetype(st.st_mode));
    put_u32(rec, (uint32_t)name.size());
    rec += name;
    count++;
  }
  struct stat self;
  if (fstat(dir_fd, &self) != 0) return;
  const std::string path = prefix.empty() ? prefix : prefix.substr(0, prefix.size() - 1);
  out.push_back('D');
  put_u32(out, (uint32_t)path.size());
  out += path;
  put_filestat(out, self);
  put_u32(out, count);
  out += rec;
}

void walk(int dir_fd, const std::string& prefix, int64_t depth, const Limits& lim, std::string& out,
          Left& left) {
  // O_NOATIME as for files: listing a directory for the snapshot is no read by the guest (and on a batch's
  // thousands of fresh input directories, each atime update is a write to the file system's journal).
  int list_fd = openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOATIME);
  if (list_fd < 0 && errno == EPERM) list_fd = openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (list_fd < 0) return;
  DIR* d = fdopendir(list_fd);
  if (d == nullptr) { close(list_fd); return; }
  std::vector<std::pair<std::string, unsigned char>> names;
  while (struct dirent* e = readdir(d)) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    names.emplace_back(e->d_name, e->d_type);
  }
  closedir(d);
  std::sort(names.begin(), names.end());
  list_dir(dir_fd, prefix, names, lim, out);
  for (auto& [name, type] : names) {
    if ((int64_t)(prefix.size() + name.size()) > lim.path_max ||
        !valid_utf8(reinterpret_cast<const unsigned char*>(name.data()), name.size())) {
      type = NOT_WALKED;
      continue;
    }
    if (type == DT_UNKNOWN) {
      struct stat st;
      type = fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 ? NOT_WALKED
             : S_ISREG(st.st_mode)                                     ? DT_REG
             : S_ISDIR(st.st_mode)                                     ? DT_DIR
                                                                       : NOT_WALKED;
    }
  }
  // A directory's own files before what is below it: the entry budget then goes to the files nearest the
  // root, which a large subtree beside them (say, a job's earlier outputs) would otherwise use up first.
  for (auto& [name, type] : names) {
    if (left.entries <= 0) return;
    if (type == DT_REG) read_file(dir_fd, name.c_str(), prefix + name, lim, out, left);
  }
  if (depth + 1 >= lim.depth_max) return;
  for (auto& [name, type] : names) {
    if (left.entries <= 0) return;
    if (type != DT_DIR) continue;
    const int sub = openat(dir_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (sub < 0) continue;
    walk(sub, prefix + name + "/", depth + 1, lim, out, left);
    close(sub);
  }
}

void scan_root(const char* root, uint64_t dev, uint64_t ino, const Limits& lim, std::string& out) {
  const int top = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (top < 0) return;
  struct stat st;
  // The directory the context recorded, not one swapped in at its path since.
  if (fstat(top, &st) == 0 && (uint64_t)st.st_dev == dev && (uint64_t)st.st_ino == ino) {
    Left left{lim.entries_max, lim.root_max};
    walk(top, "", 0, lim, out, left);
  }
  close(top);
}

}  // namespace

extern "C" {

// Scans roots[0..n) (each checked to be device dev[k], inode ino[k]; at most entries_max files and root_max
// bytes each, budget bytes in all) with `threads` threads; out[k] and
// out_len[k] receive a malloc'd buffer of root k's records (free with wg_scan_free), or null when empty.
void wg_scan(const char** roots, const uint64_t* dev, const uint64_t* ino, int64_t n, int64_t threads,
             int64_t file_max, int64_t entries_max, int64_t depth_max, int64_t path_max, int64_t root_max,
             int64_t budget, char** out, uint64_t* out_len) {
  std::atomic<int64_t> left(budget);
  std::atomic<int64_t> next(0);
  const Limits lim{file_max, entries_max, depth_max, path_max, root_max, &left};
  auto work = [&]() {
    std::string buf;
    for (int64_t k; (k = next.fetch_add(1)) < n;) {
      buf.clear();
      scan_root(roots[k], dev[k], ino[k], lim, buf);
      out[k] = nullptr;
      out_len[k] = buf.size();
      if (!buf.empty()) {
        out[k] = static_cast<char*>(malloc(buf.size()));
        if (out[k] == nullptr) { out_len[k] = 0; continue; }
        memcpy(out[k], buf.data(), buf.size());
      }
    }
  };
  std::vector<std::thread> pool;
  for (int64_t t = 1; t < threads && t < n; t++) pool.emplace_back(work);
  work();
  for (auto& t : pool) t.join();
}

void wg_scan_free(char* p) { free(p); }

// Makes what instances made on the device (wasi/devfiles.py DeviceFiles._make), in `threads` threads. Job j is
// one instance: its items first[j] .. first[j + 1] (its overlay slots in order), their paths in row row[j] of
// `names` (item k: name_at[k], name_len[k]) below root item_root[k] (roots[r], checked to be device dev[r],
// inode ino[r]), then its writes, log_len[j] bytes of records in row row[j] of `log` (vm/wasi_files.h
// df_ov_write: u32 slot, u32 length, u64 position, the bytes padded to 4), made in that order. Every
// component is opened below the root without following links; an item is a directory (flags 1, mkdir) or a
// new file (O_EXCL; flags 16: a regular file there truncated), left open (flags 2: fd_out[k], at pos[k])
// read-write where flags has 4, else write-only, appending where it has 8; flags 32: unlinked, not made.
// err_out[k]: 0 or the errno that stopped it.
void wg_make(int64_t jobs, const char** roots, const uint64_t* dev, const uint64_t* ino, const int64_t* first,
             const int64_t* row, const uint8_t* names, int64_t names_stride, const uint8_t* log, int64_t log_stride,
             const uint64_t* log_len, const int64_t* item_root, const uint64_t* name_at, const uint64_t* name_len,
             const uint8_t* flags, const uint64_t* pos, int64_t threads, int32_t* fd_out, int32_t* err_out) {
  std::atomic<int64_t> next(0);
  // Item k below the directory `top`: its directory made, or its file made and open (returned).
  auto make = [&](const uint8_t* path_row, int64_t k, int top, int* fd) -> int {
    const std::string full(reinterpret_cast<const char*>(path_row + name_at[k]), name_len[k]);
    int dir = top;
    size_t start = 0;
    for (size_t cut; (cut = full.find('/', start)) != std::string::npos; start = cut + 1) {
      const int sub = openat(dir, full.substr(start, cut - start).c_str(),
                             O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      const int e = errno;
      if (dir != top) close(dir);
      if (sub < 0) return e;
      dir = sub;
    }
    const std::string name = full.substr(start);
    int e = 0;
    if (flags[k] & 1) {
      if (mkdirat(dir, name.c_str(), 0777) != 0) e = errno;
    } else {
      const int mode = (flags[k] & 4) ? O_RDWR : O_WRONLY;
      // A file replaced: whatever is at the name now must be a regular file (O_NONBLOCK: a FIFO swapped in
      // must not block the open).
      const int how = (flags[k] & 16) ? O_TRUNC | O_NONBLOCK : O_EXCL;
      *fd = openat(dir, name.c_str(), mode | how | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0666);
      struct stat st;
      if (*fd < 0) {
        e = errno;
      } else if ((flags[k] & 16) && (fstat(*fd, &st) != 0 || !S_ISREG(st.st_mode) ||
                                     fcntl(*fd, F_SETFL, fcntl(*fd, F_GETFL) & ~O_NONBLOCK) < 0)) {
        e = EACCES;
        close(*fd);
        *fd = -1;
      }
    }
    if (dir != top) close(dir);
    return e;
  };
  auto work = [&]() {
    for (int64_t j; (j = next.fetch_add(1)) < jobs;) {
      const int64_t lo = first[j], hi = first[j + 1];
      std::vector<int> fds(hi - lo, -1);
      std::vector<std::pair<int64_t, int>> tops;  // the roots opened for this instance (fd, or -errno)
      for (int64_t k = lo; k < hi; k++) {
        fd_out[k] = -1;
        int top = -1;
        for (auto& [r, fd] : tops)
          if (r == item_root[k]) top = fd;
        if (top == -1) {
          const int64_t r = item_root[k];
          top = open(roots[r], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
          struct stat st;
          if (top < 0) {
            top = -errno;
          } else if (fstat(top, &st) != 0 || (uint64_t)st.st_dev != dev[r] || (uint64_t)st.st_ino != ino[r]) {
            close(top);  // the directory the context recorded, not one swapped in at its path since
            top = -ENOENT;
          }
          tops.emplace_back(r, top);
        }
        if (flags[k] & 32) { err_out[k] = 0; continue; }
        err_out[k] = top < 0 ? -top : make(names + row[j] * names_stride, k, top, &fds[k - lo]);
      }
      const uint8_t* rec = log + row[j] * log_stride;
      for (uint64_t at = 0; at + 16 <= log_len[j];) {
        uint32_t slot, n;
        uint64_t where;
        memcpy(&slot, rec + at, 4);
        memcpy(&n, rec + at + 4, 4);
        memcpy(&where, rec + at + 8, 8);
        const uint8_t* b = rec + at + 16;
        at += 16 + ((n + 3ull) & ~3ull);
        if ((int64_t)slot >= hi - lo || fds[slot] < 0 || err_out[lo + slot]) continue;
        for (uint64_t done = 0; done < n;) {
          const ssize_t w = pwrite(fds[slot], b + done, n - done, (off_t)(where + done));
          if (w < 0 && errno == EINTR) continue;
          if (w <= 0) { err_out[lo + slot] = w < 0 ? errno : EIO; break; }
          done += (uint64_t)w;
        }
      }
      for (int64_t k = lo; k < hi; k++) {
        const int fd = fds[k - lo];
        if (fd < 0) continue;
        if (!err_out[k] && (flags[k] & 2) && lseek(fd, (off_t)pos[k], SEEK_SET) < 0) err_out[k] = errno;
        // O_APPEND only now: pwrite on such a descriptor would append, not write where the record says.
        if (!err_out[k] && (flags[k] & 8) && fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_APPEND) < 0) err_out[k] = errno;
        if (!err_out[k] && (flags[k] & 2)) fd_out[k] = fd;
        else close(fd);
      }
      for (auto& [r, fd] : tops)
        if (fd >= 0) close(fd);
    }
  };
  std::vector<std::thread> pool;
  for (int64_t t = 1; t < threads && t < jobs; t++) pool.emplace_back(work);
  work();
  for (auto& t : pool) t.join();
}

// An instance's output records (vm/wasi_fast.h: a u32 header, the length or'ed with fd2_bit for fd 2, then
// the bytes padded to 4), joined in place: the bytes of consecutive records to one fd are moved to lie
// together at the front of buf, and runs[2k], runs[2k + 1] receive the fd and the length of each run, in
// order (runs has room for len / 4 + 1 pairs). Returns the number of runs.
int64_t wg_join_records(uint8_t* buf, int64_t len, uint32_t fd2_bit, uint64_t* runs) {
  int64_t nruns = 0, at = 0, to = 0;
  while (at + 4 <= len) {
    uint32_t head;
    memcpy(&head, buf + at, 4);
    const uint64_t fd = (head & fd2_bit) ? 2 : 1;
    int64_t n = head & ~fd2_bit;
    if (n > len - at - 4) n = len - at - 4;  // a cut record keeps what is there
    memmove(buf + to, buf + at + 4, n);
    if (nruns > 0 && runs[2 * nruns - 2] == fd) {
      runs[2 * nruns - 1] += n;
    } else {
      runs[2 * nruns] = fd;
      runs[2 * nruns + 1] = n;
      nruns++;
    }
    to += n;
    at += 4 + ((n + 3) & ~int64_t(3));
  }
  return nruns;
}
}

// The device's tables of a snapshot (wasi/devfiles.py Snapshot, vm_abi.py W_FILE_INFO ... W_NAMES), built
// from the roots' records as wasi_files.h reads them: files' bytes stored once per distinct content, names
// once per distinct path, and the open-addressing name table keyed by wasi_files.h df_hash.
namespace {

struct Tables {
  std::string part[TP_PARTS];
  uint64_t files = 0;
};

template <typename T> T get(const char* p) { T v; memcpy(&v, p, sizeof v); return v; }

// A row of u64 fields, given in their enum's order.
void put_row(std::string& out, std::initializer_list<uint64_t> row) {
  for (uint64_t v : row) put_u64(out, v);
}
static_assert(FI_DATA == 0 && FI_SIZE == 1 && FI_DIR == 2 && FI_ROOT == 3 && FI_NAME == 4 && FI_FIELDS == 5,
              "W_FILE_INFO rows are written in field order");
static_assert(DI_BYTES == 0 && DI_COUNT == 1 && DI_OFFS == 2 && DI_FIELDS == 3,
              "W_DIR_INFO rows are written in field order");

uint64_t fnv(uint32_t root, const char* path, size_t n) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (int k = 0; k < 4; k++) h = (h ^ ((root >> (8 * k)) & 0xff)) * 0x100000001b3ull;
  for (size_t k = 0; k < n; k++) h = (h ^ (unsigned char)path[k]) * 0x100000001b3ull;
  return h;
}

// A directory's listing as fd_readdir writes it from cookie 0 (wasi/fds.py DirEntry.listing: "." and ".."
// with the directory's own inode, then the entries by name): its W_DIR_INFO row, record offsets and bytes.
void add_listing(Tables& t, uint64_t self_ino, const char* entries, uint32_t count) {
  std::string& bytes = t.part[TP_DIR_BYTES];
  std::string& offs = t.part[TP_DIR_OFFS];
  put_row(t.part[TP_DIR_INFO], {bytes.size(), count + 2ull, offs.size() / 8});
  auto record = [&](uint64_t cookie, uint64_t ino, const char* name, uint32_t len, unsigned char type) {
    put_u64(offs, bytes.size());
    put_u64(bytes, cookie);
    put_u64(bytes, ino);
    put_u32(bytes, len);
    bytes.push_back((char)type);
    bytes.append(3, '\0');
    bytes.append(name, len);
  };
  record(1, self_ino, ".", 1, filetype(S_IFDIR));
  record(2, self_ino, "..", 2, filetype(S_IFDIR));
  const char* at = entries;
  for (uint32_t k = 0; k < count; k++) {
    const uint32_t len = get<uint32_t>(at + 9);
    record(k + 3, get<uint64_t>(at), at + 13, len, (unsigned char)at[8]);
    at += 13 + len;
  }
  put_u64(offs, bytes.size());
}

// The tables of the roots' records (wg_scan's out[r], out_len[r]).
void build_tables(Tables& t, char* const* out, const uint64_t* out_len, int64_t n) {
  std::unordered_map<std::string_view, uint64_t> data_at, name_at;
  struct Key { uint64_t hash, name, len_root, file; };
  std::vector<Key> keys;
  auto intern = [&](std::string_view s) -> uint64_t {
    auto it = name_at.find(s);
    if (it != name_at.end()) return it->second;
    const uint64_t at = t.part[TP_NAMES].size();
    t.part[TP_NAMES].append(s.data(), s.size());
    name_at.emplace(s, at);  // the key points into the root's buffer, kept until the end
    return at;
  };
  std::vector<uint32_t> root_dir(std::max<int64_t>(1, n), DF_NO_FD);
  for (int64_t r = 0; r < n; r++) {
    const char* at = out[r];
    const char* end = at + out_len[r];
    while (at < end) {
      const char tag = at[0];
      const uint32_t plen = get<uint32_t>(at + 1);
      const std::string_view path(at + 5, plen);
      const char* stat = at + 5 + plen;
      at = stat + 64;
      const uint64_t index = t.files++;
      t.part[TP_STATS].append(stat, 64);
      const uint64_t name_off = intern(path);
      const uint64_t name = name_off << 16 | plen;
      if (tag == 'F') {
        const uint64_t size = get<uint64_t>(at);
        const std::string_view data(at + 8, size);
        at += 8 + size;
        auto found = data_at.find(data);
        uint64_t where;
        if (found != data_at.end()) {
          where = found->second;
        } else {
          where = t.part[TP_DATA].size();
          t.part[TP_DATA].append(data.data(), data.size());
          data_at.emplace(data, where);
        }
        put_row(t.part[TP_INFO], {where, size, DF_NOT_DIR, (uint64_t)r, name});
      } else {
        const uint32_t count = get<uint32_t>(at);
        const char* entries = at + 4;
        at = entries;
        for (uint32_t k = 0; k < count; k++) at += 13 + get<uint32_t>(at + 9);
        put_row(t.part[TP_INFO], {0, 0, t.part[TP_DIR_INFO].size() / (8 * DI_FIELDS), (uint64_t)r, name});
        add_listing(t, get<uint64_t>(stat + 8), entries, count);
        if (plen == 0) {  // the root itself: found through the preopen, not by name
          root_dir[r] = (uint32_t)index;
          continue;
        }
      }
      keys.push_back({fnv((uint32_t)r, path.data(), plen), name_off, plen | (uint64_t)r << 32, index});
    }
  }
  int bits = 0;
  for (uint64_t v = 2 * keys.size(); v; v >>= 1) bits++;
  const uint64_t slots = 1ull << std::max(4, bits), mask = slots - 1;
  std::vector<uint64_t> table(slots * NT_FIELDS, DF_EMPTY);
  for (const Key& k : keys) {
    uint64_t s = k.hash & mask;
    while (table[s * NT_FIELDS + NT_LEN_ROOT] != DF_EMPTY) s = (s + 1) & mask;
    uint64_t* row = &table[s * NT_FIELDS];
    row[NT_HASH] = k.hash;
    row[NT_NAME] = k.name;
    row[NT_LEN_ROOT] = k.len_root;
    row[NT_FILE] = k.file;
  }
  t.part[TP_TABLE].assign(reinterpret_cast<const char*>(table.data()), table.size() * 8);
  t.part[TP_ROOT_DIR].assign(reinterpret_cast<const char*>(root_dir.data()), root_dir.size() * 4);
}

}  // namespace

extern "C" {

// Scans as wg_scan does, then builds the tables from all roots' records (root k's files under root number
// k); a handle for wg_tables_part, freed by wg_tables_free; null where memory ran out.
void* wg_snapshot(const char** roots, const uint64_t* dev, const uint64_t* ino, int64_t n, int64_t threads,
                  int64_t file_max, int64_t entries_max, int64_t depth_max, int64_t path_max, int64_t root_max,
                  int64_t budget) {
  std::vector<char*> out(n);
  std::vector<uint64_t> out_len(n);
  wg_scan(roots, dev, ino, n, threads, file_max, entries_max, depth_max, path_max, root_max, budget, out.data(),
          out_len.data());
  Tables* t = nullptr;
  try {
    t = new Tables;
    build_tables(*t, out.data(), out_len.data(), n);
  } catch (const std::bad_alloc&) {  // the host serves the files instead
    delete t;
    t = nullptr;
  }
  for (int64_t r = 0; r < n; r++) free(out[r]);
  return t;
}

// Part `part` (enum TablePart) of a snapshot's tables: its bytes and their count.
const char* wg_tables_part(void* tables, int64_t part, uint64_t* len) {
  const std::string& s = static_cast<Tables*>(tables)->part[part];
  *len = s.size();
  return s.data();
}

void wg_tables_free(void* tables) { delete static_cast<Tables*>(tables); }
}
