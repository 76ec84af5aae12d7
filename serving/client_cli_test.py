"""fer-client's command line, without calling a server (no TensorFlow)."""
import pytest

from serving import client_cli


@pytest.mark.parametrize("flag", ["--batch-size", "--top-k"])
def test_counts_below_one_are_refused_by_the_parser(flag, capsys):
    with pytest.raises(SystemExit) as exit_info:
        client_cli.build_parser().parse_args(["predict", "face.jpg", flag, "0"])
    assert exit_info.value.code == 2
    assert f"{flag}: must be 1 or more, got 0" in capsys.readouterr().err
