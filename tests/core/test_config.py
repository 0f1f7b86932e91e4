"""Node configs: the call timeout's default, its opt-out, and what is refused."""

import pytest

from meshnet import DEFAULT_CALL_TIMEOUT
from meshnet.config import ConfigError, load_config

NODE = '[node]\nname = "n"\nid = 1\n{extra}[start]\nservice = "a:B"\n'


def config(tmp_path, extra=""):
    path = tmp_path / "node.toml"
    path.write_text(NODE.format(extra=extra))
    return load_config(path)


def test_calls_time_out_after_the_default_unless_the_config_says_otherwise(tmp_path):
    assert config(tmp_path).call_timeout == DEFAULT_CALL_TIMEOUT
    assert config(tmp_path, "call_timeout = 2\n").call_timeout == 2.0


def test_call_timeout_none_lets_calls_wait_forever(tmp_path):
    assert config(tmp_path, 'call_timeout = "none"\n').call_timeout is None


@pytest.mark.parametrize("value", ["0", "-1", '"forever"', "true"])
def test_a_bad_call_timeout_is_refused_naming_the_key(tmp_path, value):
    with pytest.raises(ConfigError, match="node.call_timeout"):
        config(tmp_path, f"call_timeout = {value}\n")
