"""One run per output: the lock is exclusive, names its holder, is released on any exit, and a stale lock of
a dead process is taken over. (Before issue 11 there was no lock: two runs mixed their latents.)"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap

import pytest

from preencode.errors import ResourceError
from preencode.store.lock import (
    LockInfo,
    acquire_output_lock,
    check_run_lock,
    lock_is_held,
    read_lock,
    refuse_if_locked,
)
from preencode.store.names import LOCK


def test_second_lock_is_refused_naming_the_holder(tmp_path):
    with acquire_output_lock(tmp_path) as lock:
        info = read_lock(tmp_path)
        assert info == lock.info and info.pid == os.getpid() and info.host and info.started and info.token
        assert lock_is_held(tmp_path)
        for attempt in (lambda: acquire_output_lock(tmp_path), lambda: refuse_if_locked(tmp_path)):
            with pytest.raises(ResourceError, match=re.escape(f"being written by another run (pid {os.getpid()} on "
                                                              f"{info.host}, started {info.started}")):
                attempt()
    assert not (tmp_path / LOCK).exists() and not lock_is_held(tmp_path)
    acquire_output_lock(tmp_path).release()  # free again


def test_lock_of_a_killed_process_is_taken_over(tmp_path, caplog):
    code = textwrap.dedent(f"""
        import os, sys
        sys.path.insert(0, {str(os.getcwd())!r})
        from pathlib import Path
        from preencode.store.lock import acquire_output_lock
        acquire_output_lock(Path({str(tmp_path)!r}))
        os._exit(0)  # dies holding it: the kernel releases the flock, the file stays
    """)
    subprocess.run([sys.executable, "-c", code], check=True)
    stale = read_lock(tmp_path)
    assert stale is not None and stale.pid != os.getpid() and not lock_is_held(tmp_path)
    with acquire_output_lock(tmp_path) as lock:
        assert lock.info.pid == os.getpid()
    assert f"pid {stale.pid}" in caplog.text and "no longer running" in caplog.text


def test_other_ranks_check_the_lock_names_their_run(tmp_path):
    assert "missing" in check_run_lock(tmp_path, "abc")
    with acquire_output_lock(tmp_path) as lock:
        assert check_run_lock(tmp_path, lock.info.token) is None
        assert "names another run" in check_run_lock(tmp_path, "another token")
    (tmp_path / LOCK).write_text(json.dumps(LockInfo(1, "elsewhere", "t", "cmd", "tok").__dict__))
    assert check_run_lock(tmp_path, "tok") is None  # another host: the token decides
