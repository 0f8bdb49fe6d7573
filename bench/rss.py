"""Peak memory and CPU time of process trees, sampled from /proc.

    python bench/rss.py PID [PID …] [--interval 0.05]    # until Ctrl-C, then a summary

As a module: TreeSampler({"worker": pid, …}).start() … .stop() samples every
tree (a root and all its descendants, found again at every tick, so a forked
child such as an RQ work horse is seen as soon as it exists) and keeps, per
process, the largest resident set size seen and the CPU time it used while
watched. Linux only.
"""
import argparse
import os
import signal
import threading
import time

PAGE = os.sysconf("SC_PAGE_SIZE")
TICKS = os.sysconf("SC_CLK_TCK")
MB = 1024 * 1024


def read_stat(pid):
    """(parent pid, CPU seconds used (user + system), resident bytes) or None when gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            text = stat.read()
    except OSError:
        return None
    fields = text[text.rindex(b")") + 2:].split()
    # After the command: state ppid … utime(12) stime(13) … rss(22), counted from state = 0.
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / TICKS, int(fields[21]) * PAGE


def system_busy():
    """CPU seconds the whole machine has been busy (all CPUs, not idle nor waiting for I/O)."""
    with open("/proc/stat") as stat:
        values = [int(value) for value in stat.readline().split()[1:]]
    user, nice, system, idle, iowait, irq, softirq, steal = (values + [0] * 8)[:8]
    return (user + nice + system + irq + softirq + steal) / TICKS


def private_bytes(pid):
    """Memory only this process holds (Private_Clean + Private_Dirty): RSS without the pages a
    forked child still shares with its parent."""
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as smaps:
            text = smaps.read()
    except OSError:
        return 0
    total = 0
    for line in text.splitlines():
        if line.startswith((b"Private_Clean:", b"Private_Dirty:")):
            total += int(line.split()[1]) * 1024
    return total


def command_of(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            return cmdline.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


class Seen:
    def __init__(self, pid, root, depth, cpu, rss, first_tick):
        self.pid = pid
        self.root = root            # the name of the tree
        self.depth = depth          # 0 for the root, 1 for its children, …
        self.command = command_of(pid)
        self.cpu_start = cpu if first_tick else 0.0
        self.cpu_last = cpu
        self.rss_max = rss
        self.rss_first = rss
        self.rss_last = rss
        self.private_max = 0
        self.samples = 1

    @property
    def cpu(self):
        return self.cpu_last - self.cpu_start


class TreeSampler:
    def __init__(self, roots, interval=0.05, private=()):
        self.roots = dict(roots)    # name -> root pid
        self.private = set(private)  # names of trees whose processes' private memory is sampled too
        self.interval = interval
        self.seen = {}              # pid -> Seen
        self.marks = {}             # name -> {pid: CPU seconds at that moment}
        self.busy_marks = {}        # name -> (machine busy seconds, this process's CPU seconds)
        self.ticks = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self):
        self.started = time.monotonic()
        self.busy_marks["start"] = (system_busy(), time.process_time())
        self.tick()
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        self._thread.join()
        self.tick()
        self.busy_marks["stop"] = (system_busy(), time.process_time())
        self.seconds = time.monotonic() - self.started
        return self

    def _run(self):
        while not self._stop.wait(self.interval):
            self.tick()

    def tick(self):
        with self._lock:
            self._tick()

    def _tick(self):
        stats = {}
        for name in os.listdir("/proc"):
            if name.isdigit():
                stat = read_stat(int(name))
                if stat:
                    stats[int(name)] = stat
        children = {}
        for pid, (ppid, _, _) in stats.items():
            children.setdefault(ppid, []).append(pid)
        first_tick = self.ticks == 0
        for root_name, root in self.roots.items():
            level = [(root, 0)]
            while level:
                pid, depth = level.pop()
                if pid not in stats:
                    continue
                _, cpu, rss = stats[pid]
                seen = self.seen.get(pid)
                if seen is None:
                    seen = self.seen[pid] = Seen(pid, root_name, depth, cpu, rss, first_tick)
                else:
                    seen.cpu_last = cpu
                    seen.rss_max = max(seen.rss_max, rss)
                    seen.rss_last = rss
                    seen.samples += 1
                if root_name in self.private:
                    seen.private_max = max(seen.private_max, private_bytes(pid))
                level.extend((child, depth + 1) for child in children.get(pid, ()))
        self.ticks += 1

    def mark(self, name):
        """Remember every process's CPU time now, for cpu_seconds(…, since=name)."""
        with self._lock:
            self._tick()
            self.marks[name] = {pid: seen.cpu_last for pid, seen in self.seen.items()}
            self.busy_marks[name] = (system_busy(), time.process_time())

    def processes(self, root_name, depth=None):
        return [seen for seen in self.seen.values()
                if seen.root == root_name and (depth is None or seen.depth == depth)]

    def peak_mb(self, root_name, depth=None, children=False):
        """Largest RSS of one process of the tree: the root (depth 0), or of any descendant."""
        found = [seen for seen in self.processes(root_name)
                 if (seen.depth > 0 if children else depth is None or seen.depth == depth)]
        return max((seen.rss_max for seen in found), default=0) / MB

    def peak_private_mb(self, root_name, depth=None, children=False):
        found = [seen for seen in self.processes(root_name)
                 if (seen.depth > 0 if children else depth is None or seen.depth == depth)]
        return max((seen.private_max for seen in found), default=0) / MB

    def cpu_seconds(self, root_name, depth=None, children=False, since=None):
        """CPU time the tree's processes used while watched (or since a mark)."""
        found = [seen for seen in self.processes(root_name)
                 if (seen.depth > 0 if children else depth is None or seen.depth == depth)]
        if since is None:
            return sum(seen.cpu for seen in found)
        at_mark = self.marks[since]
        return sum(seen.cpu_last - at_mark.get(seen.pid, 0.0)
                   for seen in found)

    def other_cpu_seconds(self, since="start"):
        """CPU time the machine spent on anything but the watched trees and this process."""
        busy, own = self.busy_marks[since]
        end_busy, end_own = self.busy_marks["stop"]
        watched = sum(self.cpu_seconds(name, since=None if since == "start" else since) for name in self.roots)
        return (end_busy - busy) - (end_own - own) - watched

    def report(self):
        lines = [f"{self.ticks} samples in {self.seconds:.1f} s"]
        for seen in sorted(self.seen.values(), key=lambda seen: (seen.root, seen.depth, seen.pid)):
            lines.append(f"{seen.root:10} {'  ' * seen.depth}{seen.pid:>7}  peak {seen.rss_max / MB:7.1f} MB  "
                         f"first {seen.rss_first / MB:7.1f} MB  private peak {seen.private_max / MB:7.1f} MB  cpu {seen.cpu:7.2f} s  {seen.command[:70]}")
        return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description="Peak RSS and CPU of process trees until Ctrl-C.")
    parser.add_argument("pids", type=int, nargs="+")
    parser.add_argument("--interval", type=float, default=0.05)
    args = parser.parse_args()
    names = {str(pid): pid for pid in args.pids}
    sampler = TreeSampler(names, args.interval, private=names).start()
    try:
        signal.pause()
    except KeyboardInterrupt:
        pass
    print(sampler.stop().report())


if __name__ == "__main__":
    main()
