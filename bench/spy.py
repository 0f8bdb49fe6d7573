"""py-spy on a running server, and where its samples went.

py-spy is not in requirements.txt (it is a profiler, not part of Intake):
    python3 -m venv /tmp/pyspy && /tmp/pyspy/bin/pip install py-spy
"""
import re
import signal
import subprocess
from collections import Counter

RATE = 250  # samples per second


def attach(py_spy, pid, output, log_file):
    """Record every process under `pid` (gunicorn's master and its workers), on-CPU samples only."""
    argv = [py_spy, "record", "--pid", str(pid), "--subprocesses", "--rate", str(RATE), "--nonblocking",
            "--format", "raw", "--output", str(output)]
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=log_file)


def detach(spy):
    """Stop recording; py-spy writes its file when interrupted."""
    spy.send_signal(signal.SIGINT)
    spy.wait(timeout=60)


def frame_name(frame):
    """'function (path:line)' without the line, so that one function counts once."""
    return re.sub(r":\d+\)$", ")", frame)


def samples(path):
    """(frames from the root, count) of each stack in py-spy's raw format."""
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            yield [frame_name(frame) for frame in stack.split(";")[1:]], int(count)  # [0] is the thread


def where_time_went(path, requests, top=30):
    """Each function's share of the samples with it on the stack (inclusive) and as the leaf (self),
    and the CPU milliseconds per request they stand for."""
    inclusive, own, total = Counter(), Counter(), 0
    for frames, count in samples(path):
        total += count
        own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    if not total:
        return f"no samples in {path}"
    per_request = 1000 / RATE / max(requests, 1)

    def table(counter):
        return [f"    {count / total:6.1%} {count * per_request:6.3f} ms  {frame[:120]}"
                for frame, count in counter.most_common(top)]

    return "\n".join([f"  {total / RATE:.1f} CPU-s sampled, {total * per_request:.3f} ms per request",
                      "  inclusive:", *table(inclusive), "  self:", *table(own)])
