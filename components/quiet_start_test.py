"""quiet_start keeps what is written to descriptor 2 inside its block off the terminal, unless
the block fails or the caller is verbose. Each case runs in a fresh interpreter, whose standard
error the test reads as a terminal would."""
import os
import subprocess
import sys
import textwrap

PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SCRIPT = textwrap.dedent("""
    import os, sys, warnings
    from components.quiet_start import quiet_start
    with quiet_start(verbose={verbose}):
        os.write(2, b"C++ noise straight to the descriptor\\n")
        print("python noise", file=sys.stderr)
        warnings.warn("a start-up warning", FutureWarning)
        if {fail}:
            raise RuntimeError("the block failed")
    print("after the block", file=sys.stderr)
""")


def _stderr(verbose=False, fail=False) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", SCRIPT.format(verbose=verbose, fail=fail)],
                          cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60)


def test_what_the_block_writes_to_standard_error_is_dropped():
    result = _stderr()
    assert result.returncode == 0
    assert result.stderr == "after the block\n"


def test_a_failing_block_shows_what_it_wrote_then_the_error():
    result = _stderr(fail=True)
    assert result.returncode == 1
    lines = result.stderr
    assert lines.index("C++ noise") < lines.index("python noise") < lines.index(
        "a start-up warning") < lines.index("RuntimeError: the block failed")
    assert "after the block" not in lines


def test_verbose_leaves_everything_on_the_terminal():
    result = _stderr(verbose=True)
    assert "C++ noise" in result.stderr and "python noise" in result.stderr
    assert "a start-up warning" in result.stderr
    assert result.stderr.endswith("after the block\n")
