"""EngineClient retries and errors, and the local-process helpers (start, health wait, log tail, stop)."""

from __future__ import annotations

import asyncio
import sys
import threading
import time

import pytest
import uvicorn
from fastapi import FastAPI
from miles_core.engines.client import EngineClient, EngineConnectionError, EngineHTTPError
from miles_core.engines.process import ServerStartError, free_port, launch_server


def serve_later(app: FastAPI, port: int, delay: float) -> uvicorn.Server:
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))

    def run():
        time.sleep(delay)
        server.run()

    threading.Thread(target=run, daemon=True).start()
    return server


def model_info_app() -> FastAPI:
    app = FastAPI()

    @app.get("/get_model_info")
    async def info():
        return {"model_path": "m", "weight_version": "3"}

    @app.get("/get_weight_version")
    async def version():
        return {"weight_version": "3"}

    @app.post("/generate")
    async def broken():
        from fastapi.responses import JSONResponse

        return JSONResponse({"error": {"message": "model exploded"}}, status_code=500)

    return app


def test_the_client_retries_until_a_late_server_comes_up():
    port = free_port()
    server = serve_later(model_info_app(), port, delay=0.6)
    try:
        async def run():
            async with EngineClient(f"http://127.0.0.1:{port}", max_retries=10, backoff=0.1) as client:
                return await client.get_weight_version(), await client.get_model_info()

        version, info = asyncio.run(run())
        assert version == "3" and info["model_path"] == "m"
    finally:
        server.should_exit = True


def test_errors_name_the_url_the_status_and_the_body():
    port = free_port()
    server = serve_later(model_info_app(), port, delay=0)
    try:
        async def run():
            async with EngineClient(f"http://127.0.0.1:{port}", max_retries=20, backoff=0.05) as client:
                await client.get_model_info()
                await client.generate(text="hi")

        with pytest.raises(EngineHTTPError) as error:
            asyncio.run(run())
        assert error.value.status == 500 and "model exploded" in str(error.value)
        assert f"127.0.0.1:{port}/generate" in str(error.value)
    finally:
        server.should_exit = True


def test_an_unreachable_engine_is_a_connection_error_after_the_retries():
    url = f"http://127.0.0.1:{free_port()}"

    async def run():
        async with EngineClient(url, max_retries=2, backoff=0.01) as client:
            assert not await client.health()
            await client.get_model_info()

    with pytest.raises(EngineConnectionError, match="3 attempt"):
        asyncio.run(run())


def test_generate_payload_leaves_unset_fields_out():
    payload = EngineClient.generate_payload(input_ids=[1, 2], sampling_params={"max_new_tokens": 3},
                                            return_logprob=True, extra_key=1)
    assert payload == {"input_ids": [1, 2], "sampling_params": {"max_new_tokens": 3}, "return_logprob": True,
                       "extra_key": 1}
    with pytest.raises(ValueError):
        EngineClient.generate_payload()


def test_a_server_that_dies_at_start_reports_its_log(tmp_path):
    command = [sys.executable, "-c", "import sys; print('weights are missing'); sys.exit(3)"]
    with pytest.raises(ServerStartError, match="(?s)exited with code 3.*weights are missing"):
        launch_server(command, f"http://127.0.0.1:{free_port()}", log_path=tmp_path / "x.log", startup_timeout=30)


def test_launch_waits_for_health_and_stop_ends_the_process_group(tmp_path):
    port = free_port()
    # A server that spawns a child: stopping the server must end the child too (same process group).
    child_pid_file = tmp_path / "child.pid"
    script = (
        "import http.server, subprocess, sys\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'])\n"
        f"open({str(child_pid_file)!r}, 'w').write(str(child.pid))\n"
        "class H(http.server.BaseHTTPRequestHandler):\n"
        "    def do_GET(self):\n"
        "        self.send_response(200); self.end_headers()\n"
        "    def log_message(self, *a): pass\n"
        f"http.server.HTTPServer(('127.0.0.1', {port}), H).serve_forever()\n"
    )
    with launch_server([sys.executable, "-c", script], f"http://127.0.0.1:{port}", log_path=tmp_path / "s.log",
                       startup_timeout=30) as server:
        assert server.alive() and server.port == port
        child_pid = int(child_pid_file.read_text())
    assert not server.alive()
    server.stop()  # idempotent
    deadline = time.monotonic() + 10
    while _running(child_pid):
        assert time.monotonic() < deadline, "the server's child survived stop()"
        time.sleep(0.05)


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split()[2] != "Z"  # a zombie has exited
    except FileNotFoundError:
        return False
