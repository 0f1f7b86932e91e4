"""``meshnet console HOST:PORT``: commands from standard input, and the interactive prompt
with its history and completion (through a pseudo-terminal)."""

import os
import pty
import subprocess
import sys

import trio
from console_client import HOST, WAIT, start_console

from meshnet import Service
from meshnet.console.client import candidates

MESHNET = [sys.executable, "-m", "meshnet", "console"]


class Named(Service):
    async def init(self) -> None:
        self.register(".named")


async def console_command(port, stdin: bytes, **env):
    with trio.fail_after(WAIT * 3):
        return await trio.run_process(
            [*MESHNET, f"{HOST}:{port}"],
            stdin=stdin,
            capture_stdout=True,
            capture_stderr=True,
            check=False,
            env={**os.environ, **env},
        )


async def test_each_line_of_standard_input_is_one_command(node):
    named = await node.newservice(Named)
    done = await console_command(await start_console(node), b"list\nping .named\n")
    assert done.returncode == 0, done.stderr
    out = done.stdout.decode().splitlines()
    assert out[0] == "meshnet console of node 'test' (id 1): type help for the commands"
    assert any(line.startswith(f"{named}  .named  test_console_client:Named") for line in out)
    assert out[-1].startswith(f"{named}: ")
    assert "<CMD" not in done.stdout.decode()


async def test_a_failed_command_makes_the_exit_code_1(node):
    done = await console_command(await start_console(node), b"frob\nhelp\n")
    assert done.returncode == 1
    assert "unknown command 'frob'" in done.stdout.decode()


async def test_the_password_comes_from_the_environment_or_the_first_line(node):
    port = await start_console(node, "s3cret")
    from_env = await console_command(port, b"help\n", MESHNET_CONSOLE_PASSWORD="s3cret")
    first_line = await console_command(port, b"s3cret\nhelp\n")
    for done in (from_env, first_line):
        assert done.returncode == 0, done.stdout
        assert "authenticated" in done.stdout.decode()
    wrong = await console_command(port, b"guess\nhelp\n")
    assert wrong.returncode == 1
    assert "wrong password" in wrong.stdout.decode()


async def test_a_console_that_is_not_there_is_one_error_line():
    listener = trio.socket.socket()
    await listener.bind((HOST, 0))
    port = listener.getsockname()[1]
    listener.close()  # nothing listens there now
    done = await console_command(port, b"help\n")
    assert done.returncode == 1
    assert done.stderr.decode().startswith(f"meshnet: error: cannot connect to {HOST}:{port}")


def test_completion_offers_commands_first_then_services():
    commands = ["list", "log", "kill", "call"]
    targets = [":01000002", ".store", ".stats"]
    assert candidates("l", commands, targets) == ["list ", "log "]
    assert candidates("", commands, targets) == ["call ", "kill ", "list ", "log "]
    assert candidates("kill .st", commands, targets) == [".stats ", ".store "]
    assert candidates("call :01", commands, targets) == [":01000002 "]
    assert candidates("frob", commands, targets) == []


async def test_the_prompt_completes_with_tab_and_keeps_a_history(node, tmp_path):
    await node.newservice(Named)
    port = await start_console(node)
    history = tmp_path / "history"
    main, terminal = pty.openpty()
    env = {**os.environ, "MESHNET_CONSOLE_HISTORY": str(history), "TERM": "xterm"}
    process = subprocess.Popen(
        [*MESHNET, f"{HOST}:{port}"], stdin=terminal, stdout=terminal, stderr=terminal, env=env
    )
    os.close(terminal)
    screen = b""

    async def read_until(text: bytes) -> None:
        nonlocal screen
        with trio.fail_after(WAIT * 3):
            while text not in screen:
                screen += await trio.to_thread.run_sync(os.read, main, 4096)

    try:
        await read_until(b"meshnet> ")
        os.write(main, b"pi\t.na\t\r")  # completes to "ping .named "
        await read_until(b"ms\r\n")
        assert b"ping .named " in screen
        os.write(main, b"\x04")  # Ctrl-D
        await trio.to_thread.run_sync(process.wait, WAIT)
    finally:
        if process.poll() is None:
            process.kill()
        os.close(main)
    assert process.returncode == 0
    assert history.read_text().splitlines()[-1] == "ping .named "
