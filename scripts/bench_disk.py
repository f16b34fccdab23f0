"""The disk alone: the writes sluice makes durable before it answers an upload, done by 32 writers without sluice.

Each round is what the local store does with storage.fsync on for one upload:
- grouped (the default, as sluice does): a new folder for the original and the original written to a staged
  file and renamed into place, all unflushed; then one flush of the file system (syncfs) shared by every
  writer waiting at the time; then the job record written to a staged file, flushed, linked into place and its
  folder flushed.
- per-file (as sluice did before the shared flush): the new folder flushed with its parent, the original's
  staged file flushed, renamed into place and its folder flushed; then the record as above.
The rounds/s and latency of this loop are the most the disk lets any server acknowledge durably that way.

Usage: bench_disk.py FOLDER BODY_FILE SECONDS [WRITERS] [grouped|per-file]
Prints: rounds/s, rounds done, p50 ms, p99 ms (space-separated).
"""

import ctypes
import os
import sys
import threading
import time

LIBC = ctypes.CDLL(None, use_errno=True)


def flush_folder(path):
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_staged(path, data, flush):
    staged = path + "#1"
    fd = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        if flush:
            os.fsync(fd)
    finally:
        os.close(fd)
    return staged


class SharedFlush:
    """One syncfs covers every writer that finished its writes before it began (what GroupCommit does)."""

    def __init__(self, root):
        self.fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
        self.cond = threading.Condition()
        self.requested = 0
        self.durable = 0
        self.running = False

    def commit(self):
        with self.cond:
            self.requested += 1
            ticket = self.requested
            while self.durable < ticket:
                if self.running:
                    self.cond.wait()
                    continue
                self.running = True
                covered = self.requested
                self.cond.release()
                try:
                    if LIBC.syncfs(self.fd) != 0:
                        raise OSError(ctypes.get_errno(), "syncfs")
                finally:
                    self.cond.acquire()
                    self.running = False
                    self.cond.notify_all()
                self.durable = max(self.durable, covered)


def one_upload(root, number, body, record, shared):
    originals = os.path.join(root, "originals")
    folder = os.path.join(originals, str(number))
    os.mkdir(folder)
    original = os.path.join(folder, "0.jpg")
    if shared is None:
        flush_folder(folder)
        flush_folder(originals)
        os.rename(write_staged(original, body, True), original)
        flush_folder(folder)
    else:
        os.rename(write_staged(original, body, False), original)
        shared.commit()
    jobs = os.path.join(root, "jobs")
    path = os.path.join(jobs, f"{number}.json")
    staged = write_staged(path, record, True)
    os.link(staged, path)
    flush_folder(jobs)
    os.unlink(staged)


def main():
    root, body_file, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
    writers = int(sys.argv[4]) if len(sys.argv) > 4 else 32
    mode = sys.argv[5] if len(sys.argv) > 5 else "grouped"
    if mode not in ("grouped", "per-file"):
        sys.exit(f"unknown mode {mode!r}: grouped or per-file")
    with open(body_file, "rb") as f:
        body = f.read()
    record = b'{"state":"queued"}'.ljust(900, b" ")
    os.makedirs(os.path.join(root, "originals"), exist_ok=True)
    os.makedirs(os.path.join(root, "jobs"), exist_ok=True)
    shared = SharedFlush(root) if mode == "grouped" else None
    counter = iter(range(1 << 62))
    lock = threading.Lock()
    latencies = []
    deadline = time.monotonic() + seconds

    def writer():
        mine = []
        while time.monotonic() < deadline:
            with lock:
                number = next(counter)
            started = time.monotonic()
            one_upload(root, number, body, record, shared)
            mine.append(time.monotonic() - started)
        with lock:
            latencies.extend(mine)

    started = time.monotonic()
    threads = [threading.Thread(target=writer) for _ in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    latencies.sort()

    def quantile(q):
        return latencies[min(len(latencies) - 1, int(len(latencies) * q))] * 1000

    print(f"{len(latencies) / elapsed:.1f} {len(latencies)} {quantile(0.5):.1f} {quantile(0.99):.1f}")


if __name__ == "__main__":
    main()
