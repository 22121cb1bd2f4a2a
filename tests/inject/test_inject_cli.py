"""``meshtui inject`` as a user runs it: files and standard input, options, and
one line on stderr with exit 2 for input it cannot take."""

from __future__ import annotations

from pathlib import Path

import pytest
from injectkit import container, inject, load_all

POD = """\
apiVersion: v1
kind: Pod
metadata:
  name: web
spec:
  containers:
  - name: web
    image: web:1
"""


def test_standard_input_to_standard_output() -> None:
    out = inject("-", stdin=POD)
    assert out.returncode == 0, out.stderr
    assert out.stderr == ('pod "web" injected\n'
                          "note: the proxies' tap (4190) and admin (4191) ports take no "
                          "credentials yet: any pod that can reach them can watch requests and "
                          "read metrics\n")
    assert out.stdout.startswith(POD[:POD.index("spec:")])
    container(load_all(out.stdout)[0], "meshtui-proxy")


def test_a_file_with_options(tmp_path: Path) -> None:
    f = tmp_path / "pod.yaml"
    f.write_text(POD)
    out = inject(str(f), "--proxy-image", "registry.local/mt:dev", "--proxy-uid", "3000",
                 "--skip-outbound-ports", "3306", "--skip-outbound-ports", "6379,25",
                 "--image-pull-policy", "Never")
    assert out.returncode == 0, out.stderr
    p = load_all(out.stdout)[0]
    proxy, init = container(p, "meshtui-proxy"), container(p, "meshtui-init", init=True)
    assert proxy["image"] == init["image"] == "registry.local/mt:dev"
    assert proxy["imagePullPolicy"] == "Never"
    assert proxy["securityContext"]["runAsUser"] == 3000
    args = init["args"]
    assert args[args.index("--proxy-uid") + 1] == "3000"
    assert args[args.index("--outbound-ports-to-ignore") + 1] == "25,3306,6379"


def test_redact_names_reach_the_sidecar_as_its_environment() -> None:
    out = inject("-", "--redact", "x-tenant, *pin*", stdin=POD)
    assert out.returncode == 0, out.stderr
    env = {e["name"]: e.get("value") for e in
           container(load_all(out.stdout)[0], "meshtui-proxy")["env"]}
    assert env["MESHTUI_REDACT"] == "x-tenant,*pin*"
    plain = inject("-", stdin=POD)
    assert "MESHTUI_REDACT" not in plain.stdout


def test_no_workload_says_so_and_passes_the_yaml_through() -> None:
    text = "apiVersion: v1\nkind: Service\nmetadata: {name: s}   # keep\n"
    out = inject("-", stdin=text)
    assert out.returncode == 0
    assert out.stdout == text
    assert out.stderr.startswith("no workloads found") and out.stderr.count("\n") == 1


@pytest.mark.parametrize(("argv", "stdin", "message"), [
    (["/no/such/file.yaml"], None, "meshtui: inject: /no/such/file.yaml: no such file"),
    (["/"], None, "meshtui: inject: /: is a directory, not a YAML file"),
    (["-"], "kind: Pod\n---\nkind: Pod\nspec: [\n",
     "meshtui: inject: document 2, line 4: could not parse YAML: "),
    (["-"], b"kind: Pod\nmetadata: {name: \xff}\n",
     "meshtui: inject: standard input: not UTF-8 text (line 2)"),
    (["-", "--inbound-port", "99999"], POD,
     "meshtui: inject: --inbound-port must be a port from 1 to 65535, not 99999"),
    (["-", "--tap-port", "4191"], POD,
     "meshtui: inject: the proxy's four ports must differ from each other"),
    (["-", "--proxy-uid", "0"], POD, "meshtui: inject: --proxy-uid must be a UID above 0"),
    (["-", "--skip-inbound-ports", "ssh"], POD,
     "meshtui: inject: --skip-inbound-ports: 'ssh' is not a port"),
    (["-", "--image-pull-policy", "Sometimes"], POD, "meshtui inject: argument"),
    (["-", "--proxy-memory-request", "lots"], POD,
     "meshtui: inject: --proxy-memory-request 'lots' is not a Kubernetes quantity"),
    (["-", "--redact", "x tenant"], POD,
     "meshtui: inject: --redact: 'x tenant' is not a header or parameter name or glob"),
    (["-", "--proxy-image", "my image"], POD,
     "meshtui: inject: --proxy-image 'my image' is not an image reference"),
])
def test_bad_input_exits_2_with_one_line(argv: list[str], stdin: str | bytes | None,
                                         message: str) -> None:
    out = inject(*argv, stdin=stdin)
    assert out.returncode == 2
    assert out.stdout == ""
    assert len(out.stderr.splitlines()) == 1, out.stderr
    assert out.stderr.startswith(message), out.stderr
    assert "Traceback" not in out.stderr


def test_a_bad_file_names_itself(tmp_path: Path) -> None:
    f = tmp_path / "broken.yaml"
    f.write_text("kind: Deployment\nmetadata:\n  name: x\n bad: 1\n")
    out = inject(str(f))
    assert out.returncode == 2
    assert out.stderr.startswith("meshtui: inject: document 1, line 4: could not parse YAML: ")
    assert out.stderr.endswith(f" (in {f})\n")


def test_a_closed_reader_is_not_an_error(tmp_path: Path) -> None:
    import subprocess

    from injectkit import MESHTUI

    big = tmp_path / "many.yaml"
    big.write_text("---\n".join(POD.replace("name: web\n", f"name: web{i}\n", 1)
                                for i in range(60)))
    p = subprocess.run(f"{MESHTUI} inject {big} | head -1", shell=True, capture_output=True,
                       text=True, timeout=60)
    assert p.stdout == "apiVersion: v1\n"
    assert "Traceback" not in p.stderr and "Error" not in p.stderr


def test_a_path_is_shown_with_its_control_characters_escaped(tmp_path: Path) -> None:
    out = inject(str(tmp_path / "evil\x1b[2J.yaml"))
    assert out.returncode == 2
    assert out.stderr == f"meshtui: inject: {tmp_path}/evil\\x1b[2J.yaml: no such file\n"


def test_input_past_the_limit_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    from meshtui import cli
    from meshtui.commands import inject as command

    f = tmp_path / "big.yaml"
    f.write_text(POD)
    monkeypatch.setattr(command, "MAX_INPUT", len(POD) - 1)
    assert cli.main(["inject", str(f)]) == 2
    assert capsys.readouterr().err == f"meshtui: inject: {f}: larger than 0 MiB; not a manifest\n"
    monkeypatch.setattr(command, "MAX_INPUT", len(POD))
    assert cli.main(["inject", str(f)]) == 0


def test_the_command_lines_defaults_are_the_librarys() -> None:
    from meshtui.cli import build_parser
    from meshtui.commands.inject import config_from
    from meshtui.inject import InjectConfig

    assert config_from(build_parser().parse_args(["inject", "-"])) == InjectConfig()
