import os
import subprocess
import sys
import textwrap
import time

import pytest


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl is Linux-only")
def test_trainer_dies_when_its_parent_is_killed(tmp_path):
    pid_file = tmp_path / "child.pid"
    # parent: starts a child that calls die_with_parent() and then sleeps; the parent then sleeps too.
    parent_code = textwrap.dedent(
        f"""
        import os, subprocess, sys, time
        child = subprocess.Popen([sys.executable, "-c",
            "import time, os; from pipeline_trainer.parent import die_with_parent; die_with_parent(); "
            "open({str(pid_file)!r}, 'w').write(str(os.getpid())); time.sleep(60)"],
            env={{**os.environ, "PIPELINE_PARENT_PID": str(os.getpid())}})
        time.sleep(60)
        """
    )
    env = {**os.environ, "PYTHONPATH": os.path.join(os.path.dirname(__file__), "..")}
    parent = subprocess.Popen([sys.executable, "-c", parent_code], env=env)
    deadline = time.time() + 30
    while not pid_file.exists() or not pid_file.read_text():
        assert time.time() < deadline, "child did not start"
        time.sleep(0.05)
    child_pid = int(pid_file.read_text())
    os.kill(child_pid, 0)  # alive
    parent.kill()
    parent.wait()
    deadline = time.time() + 10
    while True:
        try:
            os.kill(child_pid, 0)
        except ProcessLookupError:
            break
        # a zombie waiting for init to reap it counts as dead
        with open(f"/proc/{child_pid}/stat") as f:
            if f.read().split()[2] == "Z":
                break
        assert time.time() < deadline, "child outlived its parent"
        time.sleep(0.05)


def test_without_the_variable_nothing_changes(monkeypatch):
    from pipeline_trainer.parent import die_with_parent

    monkeypatch.delenv("PIPELINE_PARENT_PID", raising=False)
    die_with_parent()  # returns, does not exit
