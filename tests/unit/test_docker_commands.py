"""Each image under deploy/docker starts a command the `prox` CLI accepts: its ENTRYPOINT + CMD words (JSON
form, final stage) go through the real parser (`prox.cli.main.build_parser`), nothing is started."""
import json
import shlex

import pytest

from prox.cli.main import build_parser
from prox.common.config import load_settings
from prox.models.settings import ModelServerSettings
from tests.fixtures.paths import REPO

DOCKERFILES = sorted(path for path in (REPO / "deploy" / "docker").glob("Dockerfile.*")
                     if path.suffix != ".dockerignore")


def instructions(dockerfile) -> list[tuple[str, str]]:
    """(KEYWORD, arguments) of the final stage, continuation lines joined, comments dropped."""
    joined, line = [], ""
    for raw in dockerfile.read_text().splitlines():
        if raw.lstrip().startswith("#") or not raw.strip():
            continue
        line += raw.rstrip()
        if line.endswith("\\"):
            line = line[:-1] + " "
            continue
        joined.append(line.strip())
        line = ""
    parsed = [(text.split(None, 1)[0].upper(), text.split(None, 1)[1] if " " in text else "") for text in joined]
    last_from = max(index for index, (keyword, _) in enumerate(parsed) if keyword == "FROM")
    return parsed[last_from:]


def exec_form(dockerfile, keyword: str) -> list[str]:
    """The last `keyword` instruction's words; only the JSON (exec) form is allowed: a shell form hides errors."""
    found = [arguments for name, arguments in instructions(dockerfile) if name == keyword]
    if not found:
        return []
    words = json.loads(found[-1])
    assert isinstance(words, list) and all(isinstance(word, str) for word in words), f"{keyword} is not JSON form"
    return words


def image_command(dockerfile) -> list[str]:
    return exec_form(dockerfile, "ENTRYPOINT") + exec_form(dockerfile, "CMD")


def image_environment(dockerfile) -> dict[str, str]:
    pairs = [word.split("=", 1) for name, arguments in instructions(dockerfile) if name == "ENV"
             for word in shlex.split(arguments)]
    return dict(pairs)


def parsed(words: list[str], capsys):
    try:
        return build_parser().parse_args(words)
    except SystemExit:
        pytest.fail(f"prox {' '.join(words)}: {capsys.readouterr().err.strip()}")


def test_every_dockerfile_is_checked():
    assert {path.name for path in DOCKERFILES} >= {"Dockerfile.model-server", "Dockerfile.services"}


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda path: path.name)
def test_the_image_command_is_accepted_by_the_prox_parser(dockerfile, capsys):
    words = image_command(dockerfile)
    assert words[:1] == ["prox"], f"{dockerfile.name} does not start prox: {words}"
    args = parsed(words[1:], capsys)
    assert callable(getattr(args, "func", None)), f"{words} names no command"


def test_the_model_server_image_serves_the_hf_models_on_the_ports_it_exposes(capsys):
    dockerfile = REPO / "deploy" / "docker" / "Dockerfile.model-server"
    args = parsed(image_command(dockerfile)[1:], capsys)
    settings = load_settings(args, environ=image_environment(dockerfile), struct_type=ModelServerSettings)
    ports = {settings.triton.http_port, settings.triton.grpc_port, settings.triton.metrics_port}
    exposed = {int(port) for name, arguments in instructions(dockerfile) if name == "EXPOSE"
               for port in arguments.split()}
    assert ports == exposed == {8000, 8001, 8002}
    assert getattr(settings.triton, "listen_address", "0.0.0.0") == "0.0.0.0"  # reachable from outside the container
    assert settings.backends() == ("hf", "hf")
    assert (settings.doc.model, settings.chunk.model) == ("/models/doc", "/models/chunk")


def test_the_services_image_serves_its_health_and_metrics_beyond_the_container(capsys):
    from prox.common.config import ServiceSettings

    dockerfile = REPO / "deploy" / "docker" / "Dockerfile.services"
    args = parsed(image_command(dockerfile)[1:], capsys)
    settings = load_settings(args, environ=image_environment(dockerfile), struct_type=ServiceSettings)
    assert settings.http_port == 9400 and getattr(settings, "http_host", "0.0.0.0") == "0.0.0.0"
