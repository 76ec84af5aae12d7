"""fer-serve's command line, without starting a server (no TensorFlow)."""
import pytest

from serving import server_cli


def _config(*flags):
    return server_cli.config_from_args(
        server_cli.build_parser().parse_args(["--model-base-path", "x", *flags]))


@pytest.mark.parametrize("flags, message", [
    (["--threads", "0"], "--threads must be positive"),
    (["--num-latest", "0"], "--num-latest must be positive"),
    (["--poll-interval", "0"], "--poll-interval must be positive"),
    (["--max-batch-size", "0"], "--max-batch-size must be positive"),
    (["--max-load-retries", "-1"], "--max-load-retries must be 0 or more"),
    (["--load-retry-interval", "-2"], "--load-retry-interval must be 0 or more"),
    (["--grace", "-1"], "--grace must be 0 or more"),
])
def test_numbers_out_of_range_stop_with_the_flag_named(flags, message):
    with pytest.raises(SystemExit, match=message):
        _config(*flags)


def test_zero_retries_and_zero_grace_are_allowed():
    config = _config("--max-load-retries", "0", "--grace", "0")
    assert config.max_load_retries == 0 and config.grace_s == 0


def test_a_ready_line_without_ports_gives_none():
    assert server_cli.ready_ports("serving model 'fer' from x: starting") is None
