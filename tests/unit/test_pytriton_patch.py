"""The changes to PyTriton's proxy model, checked against the installed PyTriton without starting Triton."""
import pathlib
import socket
import threading

import pytest

communication = pytest.importorskip("pytriton.proxy.communication")

from prox.models.pytriton_patch import ERROR_OUTPUT, config_from_handshake_server, patched_proxy_model

PROXY_MODEL = pathlib.Path(communication.__file__).with_name("model.py")


def test_the_patched_proxy_model_compiles_and_retries_the_handshake():
    patched = patched_proxy_model(PROXY_MODEL.read_text())
    compile(patched, "model.py", "exec")
    assert "config_from_handshake_server(handshake_socket, get_config_from_handshake_server)" in patched
    assert "inference_handler_config = get_config_from_handshake_server(handshake_socket)" not in patched
    assert f'"{ERROR_OUTPUT}" in response.data' in patched


def test_a_proxy_model_of_another_shape_fails_at_startup():
    with pytest.raises(RuntimeError, match="unsupported nvidia-pytriton version"):
        patched_proxy_model(PROXY_MODEL.read_text().replace("get_config_from_handshake_server(handshake_socket)", "x"))


def _bound_but_not_listening(path: pathlib.Path) -> socket.socket:
    """What asyncio's start_unix_server leaves for a moment: the socket file exists, nobody listens yet."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(path))
    return sock


def test_an_instance_that_connects_before_instance_0_listens_gets_the_config(tmp_path):
    path = tmp_path / "prox_chunk-config.sock"
    config = {"data_socket": "x.sock", "authkey": "a2V5"}
    early = _bound_but_not_listening(path)
    with pytest.raises(ConnectionRefusedError):  # the race, as PyTriton alone meets it
        communication.get_config_from_handshake_server(path)
    servers = []

    def start_listening_later():
        early.close()
        path.unlink()
        servers.append(communication.HandshakeServer(path, config))
        servers[0].start()

    timer = threading.Timer(0.3, start_listening_later)
    timer.start()
    try:
        assert config_from_handshake_server(path, communication.get_config_from_handshake_server, timeout_s=10) == config
    finally:
        timer.join()
        servers[0].close()


def test_the_retry_gives_up_after_its_timeout(tmp_path):
    path = tmp_path / "never.sock"
    early = _bound_but_not_listening(path)
    try:
        with pytest.raises(ConnectionRefusedError):
            config_from_handshake_server(path, communication.get_config_from_handshake_server, timeout_s=0.2)
    finally:
        early.close()


def test_other_errors_are_not_retried(tmp_path):
    calls = []

    def broken(path):
        calls.append(path)
        raise ValueError("Invalid JSON response from the server.")

    with pytest.raises(ValueError):
        config_from_handshake_server(tmp_path / "x.sock", broken, timeout_s=10)
    assert len(calls) == 1
