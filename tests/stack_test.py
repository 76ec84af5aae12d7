"""scripts/stack.sh and scripts/bootstrap.sh: which stack a machine runs, and why, in one line.

The machine is faked: `getconf` on PATH reports the glibc, and only the interpreters linked into
a fake bin folder exist (pyenv's folder is pointed at an empty one).
"""
import os
import subprocess

import pytest

from pipeline import configs

STACK_SH = os.path.join(configs.PROJECT_ROOT, "scripts", "stack.sh")
BOOTSTRAP = os.path.join(configs.PROJECT_ROOT, "scripts", "bootstrap.sh")


@pytest.fixture
def machine(tmp_path):
    def make(glibc, pythons=()):
        bin_dir = tmp_path / f"bin-{glibc}-{'-'.join(pythons) or 'none'}"
        bin_dir.mkdir()
        (bin_dir / "getconf").write_text(f"#!/bin/sh\necho 'glibc {glibc}'\n")
        # Stand-ins that pass the scripts' version check; python3 and python shadow the
        # machine's own, which fail it.
        for version in pythons:
            (bin_dir / f"python{version}").write_text("#!/bin/sh\nexit 0\n")
        for name in ("python3", "python"):
            (bin_dir / name).write_text("#!/bin/sh\nexit 1\n")
        for tool in bin_dir.iterdir():
            tool.chmod(0o755)
        env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(tmp_path),
               "PYENV_ROOT": str(tmp_path / "no-pyenv")}
        return env
    return make


def _stack(env, *args, **extra):
    return subprocess.run([STACK_SH, *args], env={**env, **extra}, capture_output=True,
                          text=True, timeout=30)


@pytest.mark.parametrize("glibc, pythons, chosen", [
    ("2.36", ("3.10", "3.12"), "legacy"),    # Debian 12: TFX 1.21's wheels cannot load
    ("2.41", ("3.10", "3.12"), "current"),   # Debian 13
    ("2.41", ("3.10",), "legacy"),           # new glibc, but no Python 3.12
    ("2.38", ("3.12",), "current"),          # the oldest glibc that loads them
])
def test_the_machine_picks_the_stack_it_can_run(machine, glibc, pythons, chosen):
    env = machine(glibc, pythons)
    assert _stack(env, "choose").stdout.strip() == chosen
    reason = _stack(env, "reason").stdout.strip()
    assert reason.startswith(f"stack: {chosen} (") and f"glibc {glibc}" in reason
    assert len(reason.splitlines()) == 1


def test_the_legacy_reason_says_what_current_needs_and_how_to_get_it(machine):
    reason = _stack(machine("2.36", ("3.10", "3.12")), "reason").stdout.strip()
    assert reason == ("stack: legacy (TFX 1.16, Python 3.10: glibc 2.36 < 2.38 that TFX 1.21's "
                      "wheels need; STACK=current runs it in a Debian 13 root)")


def test_stack_chooses_and_the_old_glibc_runs_current_in_the_root(machine):
    old = machine("2.36", ("3.10", "3.12"))
    assert _stack(old, "choose", STACK="current").stdout.strip() == "current"
    assert _stack(old, "needs-root", "current").returncode == 0
    assert _stack(old, "needs-root", "legacy").returncode == 1
    assert "in the Debian 13 root" in _stack(old, "reason", STACK="current").stdout
    new = machine("2.41", ("3.12",))
    assert _stack(new, "needs-root", "current").returncode == 1
    assert _stack(new, "needs-root", "current", STACK_ROOT="1").returncode == 0
    # Inside the root nothing needs it again.
    assert _stack(old, "needs-root", "current", FER_STACK_ROOT="/r").returncode == 1


def test_an_unknown_stack_is_refused(machine):
    done = _stack(machine("2.41", ("3.12",)), "choose", STACK="newest")
    assert done.returncode == 2
    assert "STACK=newest: not a stack (legacy or current)" in done.stderr


def test_bootstrap_without_the_python_says_what_to_install(machine, tmp_path):
    env = machine("2.36", ())   # no Python 3.10, glibc too old for current: legacy, not found
    done = subprocess.run([BOOTSTRAP], env={**env, "VENV": str(tmp_path / "venv")},
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "[bootstrap] ERROR: Python 3.10 not found for the legacy stack." in done.stderr
    assert "pyenv install 3.10" in done.stderr and "PYTHON=/path/to/python3.10" in done.stderr
    assert not (tmp_path / "venv").exists()


def test_bootstrap_of_current_on_an_old_glibc_points_at_the_root(machine, tmp_path):
    done = subprocess.run([BOOTSTRAP], env={**machine("2.36", ("3.12",)), "STACK": "current",
                                            "VENV": str(tmp_path / "venv")},
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "scripts/stack_root.sh run scripts/bootstrap.sh" in done.stderr
