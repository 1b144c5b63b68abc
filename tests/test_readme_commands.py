"""README's GPU commands for choosing by judgment are well-formed: each `tts eval` line's strategy expression parses
and validates (scorer, options), its task exists and its flags are eval's own, checked without starting anything."""
import re
import shlex
from pathlib import Path

import pytest

from tts import tasks
from tts.app.cli import eval_
from tts.app.session import resolve_strategy

README = (Path(__file__).parents[1] / "README.md").read_text()
BLOCK = re.search(r"On a GPU, with a process reward model.*?```bash\n(.*?)```", README, re.S).group(1)
COMMANDS = [line.split("#")[0].strip() for line in BLOCK.splitlines() if line.strip().startswith("tts eval")]


def test_the_block_has_the_five_settings():
    assert len(COMMANDS) == 5
    assert sum("'in_process': True" in c for c in COMMANDS) == 1  # the reward model beside the policy engine


@pytest.mark.parametrize("command", COMMANDS)
def test_gpu_command_is_well_formed(command):
    import inspect

    args = shlex.split(command)[2:]
    flags = {p.default.param_decls[0] if getattr(p.default, "param_decls", None) else "--" + n.replace("_", "-")
             for n, p in inspect.signature(eval_).parameters.items()}
    flags |= {"-s", "-m", "-n", "-e", "-o"}
    values = dict(zip(args[::2], args[1::2]))
    assert set(values) <= flags, set(values) - flags
    tasks.get(values["--task"])
    spec, config = resolve_strategy(values["-s"])
    assert spec.name in ("best-of-n", "compose", "beam")
