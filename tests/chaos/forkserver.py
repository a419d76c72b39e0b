"""A tiny fork server for `photobot worker` processes: import once, fork a fresh worker per restart.

On a loaded 2-core machine importing photobot takes seconds, so a kill -9 loop that spawned
`photobot worker` from scratch would mostly kill processes still importing. This process imports the CLI
once, then for every `spawn LOGFILE` line on stdin forks a child that runs the real `photobot worker`
command (`photobot.cli.main.cli`, the console script's entry point) with stdout/stderr to LOGFILE, and
answers the child's pid. The child is an ordinary process with its own connections: SIGKILL is a real crash.
"""

from __future__ import annotations

import os
import signal
import sys

from photobot.cli.main import cli


def main() -> None:
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel

    for line in sys.stdin:
        command, _, argument = line.strip().partition(" ")
        if command != "spawn":
            continue
        pid = os.fork()
        if pid == 0:
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            fd = os.open(argument, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            os.dup2(fd, 1)
            os.dup2(fd, 2)
            code = 0
            try:
                cli.main(["worker", "--grace", "2"], prog_name="photobot")
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
            finally:
                os._exit(code)
        print(pid, flush=True)


if __name__ == "__main__":  # the image pool's spawned processes import this module again: it must do nothing then
    main()
