"""What we change in PyTriton's proxy model (the Python-backend model it copies into Triton's repository).

1. PyTriton fails every request of a merged batch when the infer function raises, always as INTERNAL. A
   response carrying ERROR_OUTPUT becomes an INVALID_ARGUMENT error for that request only.
2. With several instances of a model, instance 0 serves the handshake config on a Unix socket and the others
   fetch it while Triton initializes them all at once. asyncio binds that socket (the file appears) before it
   listens, and PyTriton's client connects as soon as the file exists: "Connection refused" fails the model
   load and the server exits (seen in a model-server restart of the fault tests). The other instances retry.
3. The model config also gets our parameters (model name/version/backend).

Every change fails loudly at startup if PyTriton changes shape.
"""
from __future__ import annotations

import inspect
import textwrap

ERROR_OUTPUT = "prox_invalid_argument"  # never in the model config: the patched proxy turns it into an error

_RESPONSE_ANCHOR = "def _wrap_response(response: Response, requested_outputs_names, model_outputs_dict):\n"
_RESPONSE_RULE = f"""    if response.data is not None and "{ERROR_OUTPUT}" in response.data:
        message = response.data["{ERROR_OUTPUT}"].reshape(-1)[0]
        message = message.decode("utf-8", "replace") if isinstance(message, bytes) else str(message)
        return pb_utils.InferenceResponse(error=pb_utils.TritonError(message, pb_utils.TritonError.INVALID_ARG))
"""
_HANDSHAKE_CALL = "inference_handler_config = get_config_from_handshake_server(handshake_socket)\n"
_LOGGER_ANCHOR = "LOGGER = logging.getLogger(__name__)\n"

model_parameters: dict[str, dict[str, str]] = {}


def config_from_handshake_server(socket_path, fetch, timeout_s: float = 60.0, pause_s: float = 0.05):
    """`fetch(socket_path)` until instance 0 listens: refused or missing while it starts, never after `timeout_s`.

    Copied into the proxy model by source (it runs in Triton's Python stub), so it uses nothing but `time`.
    """
    import time

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return fetch(socket_path)
        except (ConnectionRefusedError, FileNotFoundError, TimeoutError):
            if time.monotonic() >= deadline:
                raise
            time.sleep(pause_s)


def patched_proxy_model(source: str) -> str:
    """PyTriton's proxy `model.py` with our error rule and the retried handshake."""
    for anchor in (_RESPONSE_ANCHOR, _HANDSHAKE_CALL, _LOGGER_ANCHOR):
        if source.count(anchor) != 1:
            raise RuntimeError(f"unsupported nvidia-pytriton version: proxy model.py lacks {anchor.strip()!r}")
    retry = textwrap.dedent(inspect.getsource(config_from_handshake_server))
    source = source.replace(_LOGGER_ANCHOR, _LOGGER_ANCHOR + "\n\n" + retry + "\n")
    source = source.replace(_HANDSHAKE_CALL, _HANDSHAKE_CALL.replace(
        "get_config_from_handshake_server(handshake_socket)",
        "config_from_handshake_server(handshake_socket, get_config_from_handshake_server)"))
    return source.replace(_RESPONSE_ANCHOR, _RESPONSE_ANCHOR + _RESPONSE_RULE)


def patch_pytriton() -> None:
    from pytriton.models.model import Model

    if getattr(Model, "_prox_patched", False):
        return
    original_files, original_config = Model.get_proxy_model_files, Model._get_triton_model_config

    def get_proxy_model_files(self):
        files = original_files(self)
        for key, source in files.items():
            if key.endswith("/model.py"):
                files[key] = patched_proxy_model(source.decode("utf-8")).encode("utf-8")
        return files

    def get_triton_model_config(self):
        config = original_config(self)
        config.backend_parameters.update(model_parameters.get(self.model_name, {}))
        return config

    Model.get_proxy_model_files, Model._get_triton_model_config = get_proxy_model_files, get_triton_model_config
    Model._prox_patched = True
