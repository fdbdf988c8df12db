"""Persistence survives a crash mid-save: the previous save stays loadable.

Both tests use real processes: one is killed with SIGKILL while it saves in a
loop, the other hits a real failed write (a file-size limit, RLIMIT_FSIZE).
"""

from __future__ import annotations

import signal
import subprocess
import textwrap
import time

import pytest

from middleware.embedders import hashing_embedder
from retrievers import Collection, Query
from retrievers.persist import FILE_NAME

WRITER = textwrap.dedent("""
    import sys
    from pathlib import Path
    from middleware.embedders import hashing_embedder
    from middleware.types import Document
    from retrievers import Collection

    folder = Path(sys.argv[1])
    coll = Collection("crash", hashing_embedder(), folder=folder)
    filler = " ".join(f"word{i}" for i in range(150))
    for gen in range(10_000):
        # Every generation has exactly gen + 1 generation documents plus 400 filler ones,
        # so a loaded state can be checked for consistency.
        coll.upsert([Document(id=f"g{gen}", text=f"generation {gen}", metadata={"gen": gen})]
                    + [Document(id=f"f{i}", text=f"{filler} {gen} {i}") for i in range(400)])
        print("saving", gen, flush=True)
        coll.save()
        print("saved", gen, flush=True)
""")


def _check_consistent(coll: Collection) -> int:
    gens = sorted(int(i[1:]) for i in coll.ids() if i.startswith("g"))
    assert gens == list(range(len(gens)))
    assert len(coll) == len(gens) + 400 == coll.chunk_count
    last = gens[-1]
    assert coll.retrieve(Query("generation", top_k=1, mode="lexical", filter={"gen": last}))[0].document.id == f"g{last}"
    return last


@pytest.mark.parametrize("delay", [0.0, 0.013, 0.041])
def test_sigkill_mid_save_leaves_the_previous_save_loadable(tmp_path, python_exe, subprocess_env, delay):
    folder = tmp_path / "crash"
    proc = subprocess.Popen([python_exe, "-c", WRITER, str(folder)], stdout=subprocess.PIPE, text=True,
                            env=subprocess_env)
    try:
        deadline = time.monotonic() + 120
        line = ""
        while line != "saving 3\n" and time.monotonic() < deadline:
            line = proc.stdout.readline()
            assert line, "writer exited early"
        # The fourth save (generation 3) has begun: kill it now or a few milliseconds in.
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        rest = proc.stdout.read()
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()
    coll = Collection.load("crash", hashing_embedder(), folder)
    assert coll is not None
    # Exactly the previous save or the new one (the kill may land between the rename
    # and the print); the new one for certain when the writer said it had finished.
    loaded = _check_consistent(coll)
    assert loaded in (2, 3)
    if "saved 3" in rest:
        assert loaded == 3


FAILING_WRITER = textwrap.dedent("""
    import resource, signal, sys
    from pathlib import Path
    from middleware.embedders import hashing_embedder
    from middleware.types import Document
    from retrievers import Collection

    folder = Path(sys.argv[1])
    coll = Collection("small", hashing_embedder(), folder=folder)
    coll.upsert([Document(id="keep", text="the first state", metadata={"v": 1})])
    coll.save()
    # From now on no file may grow past 64 KiB: the next save fails half-way through.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, resource.RLIM_INFINITY))
    coll.upsert([Document(id=f"big{i}", text="x " * 200 + str(i)) for i in range(500)])
    try:
        coll.save()
    except OSError as exc:
        print("failed:", exc.errno, flush=True)
    else:
        print("saved", flush=True)
""")


def test_failed_write_keeps_the_previous_state(tmp_path, python_exe, subprocess_env):
    folder = tmp_path / "small"
    out = subprocess.run([python_exe, "-c", FAILING_WRITER, str(folder)], capture_output=True, text=True,
                         env=subprocess_env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("failed:"), out.stdout
    assert sorted(p.name for p in folder.iterdir()) == [FILE_NAME]  # the torn temporary file is gone
    coll = Collection.load("small", hashing_embedder(), folder)
    assert coll.ids() == ["keep"] and coll.get(["keep"])[0].metadata == {"v": 1}
