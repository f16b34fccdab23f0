"""The disk alone: the writes sluice flushes before it answers an upload, done by 32 writers without sluice.

Each round is what the local store does with storage.fsync on for one upload: a new folder for the original
(flushed, with its parent), the original written to a staged file, flushed, renamed into place and its folder
flushed; then the job record written to a staged file, flushed, linked into place and its folder flushed.
The rounds/s and latency of this loop are the most the disk lets any server acknowledge durably.

Usage: bench_disk.py FOLDER BODY_FILE SECONDS [WRITERS]
Prints: rounds/s, rounds done, p50 ms, p99 ms (space-separated).
"""

import os
import sys
import threading
import time


def flush_folder(path):
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_staged(path, data):
    staged = path + "#1"
    fd = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)
    return staged


def one_upload(root, number, body, record):
    originals = os.path.join(root, "originals")
    folder = os.path.join(originals, str(number))
    os.mkdir(folder)
    flush_folder(folder)
    flush_folder(originals)
    original = os.path.join(folder, "0.jpg")
    os.rename(write_staged(original, body), original)
    flush_folder(folder)
    jobs = os.path.join(root, "jobs")
    path = os.path.join(jobs, f"{number}.json")
    staged = write_staged(path, record)
    os.link(staged, path)
    flush_folder(jobs)
    os.unlink(staged)


def main():
    root, body_file, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
    writers = int(sys.argv[4]) if len(sys.argv) > 4 else 32
    with open(body_file, "rb") as f:
        body = f.read()
    record = b'{"state":"queued"}'.ljust(900, b" ")
    os.makedirs(os.path.join(root, "originals"), exist_ok=True)
    os.makedirs(os.path.join(root, "jobs"), exist_ok=True)
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
            one_upload(root, number, body, record)
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
