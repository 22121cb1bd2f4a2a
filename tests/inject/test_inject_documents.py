"""inject on streams written for the purpose: what stays byte for byte, what a
round trip keeps (comments, order, quotes, indentation), the kinds and the
reasons to skip, and where a parse error is."""

from __future__ import annotations

import textwrap

import pytest
from injectkit import container, load_all, pod_templates

from meshtui import __version__
from meshtui.inject import InjectConfig, ParseError, inject_text
from meshtui.proxy.init import parse_ports

SERVICE = """\
# The web service: left exactly as it is, odd spacing and all.
apiVersion: v1
kind: Service
metadata:
  name:   web-svc      # two spaces too many, on purpose
spec:
    ports:
      - {port: 80, targetPort: 'http'}
"""

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  annotations:
    note: "keep my quotes"   # and this comment
spec:
  template:
    # pod template comment
    metadata:
      labels:
        app: web
    spec:
      containers:
        - name: web        # the app
          image: web:1
          args: ["--port", "8080"]
      volumes: []
"""


def pod(kind: str, name: str = "x", extra: str = "", pod_meta: str = "") -> str:
    """A workload: its pod labelled app=NAME, ``pod_meta`` lines in the pod's
    metadata, ``extra`` lines after the pod spec's containers."""
    spec = f"spec:\n  containers:\n  - name: app\n    image: app:1\n{extra}"
    if kind == "Pod":
        return (f"kind: Pod\nmetadata:\n  name: {name}\n  labels: {{app: {name}}}\n"
                f"{pod_meta}{spec}")
    template = f"metadata:\n  labels: {{app: {name}}}\n{pod_meta}{spec}"
    return (f"kind: {kind}\nmetadata:\n  name: {name}\nspec:\n  template:\n"
            f"{textwrap.indent(template, '    ')}")


def test_documents_without_workloads_are_byte_identical_around_an_injected_one() -> None:
    configmap = "---\n# lead comment\nkind: ConfigMap\ndata:\n  a:    '1'\n...\n"
    text = SERVICE + "---\n" + DEPLOYMENT + configmap + "--- # closing\n"
    result = inject_text(text)
    assert [o.line() for o in result.outcomes] == ['deployment "web" injected']
    assert result.text.startswith(SERVICE + "---\n")
    assert result.text.endswith(configmap + "--- # closing\n")


def test_an_injected_document_keeps_comments_quotes_order_and_indentation() -> None:
    out = inject_text(DEPLOYMENT).text
    for kept in ('    note: "keep my quotes"   # and this comment\n',
                 "    # pod template comment\n",
                 "        - name: web        # the app\n",
                 '          args: ["--port", "8080"]\n',
                 "      volumes: []\n"):
        assert kept in out
    # The original lines come in their order, the additions among them.
    lines = iter(out.splitlines())
    assert all(any(o == line for o in lines) for line in DEPLOYMENT.splitlines())
    # Sequences indented as the input indents them.
    assert "        - name: meshtui-proxy\n" in out
    spec = pod_templates(load_all(out)[0])[0][1]["spec"]
    assert list(spec) == ["containers", "volumes", "initContainers"]


def test_crlf_stays_crlf() -> None:
    text = pod("Pod").replace("\n", "\r\n")
    out = inject_text(text).text
    assert out.count("\r\n") == out.count("\n")
    assert "meshtui-proxy" in out


@pytest.mark.parametrize("kind", ["Pod", "Deployment", "StatefulSet", "DaemonSet",
                                  "ReplicaSet", "ReplicationController", "Job"])
def test_each_workload_kind_is_injected(kind: str) -> None:
    result = inject_text(pod(kind, "w"))
    assert result.outcomes[0].line().startswith(f'{kind.lower()} "w" injected')
    ((_, p),) = pod_templates(load_all(result.text)[0])
    container(p, "meshtui-proxy")
    container(p, "meshtui-init", init=True)


def test_a_list_of_mixed_items_and_other_documents() -> None:
    text = ("kind: List\nitems:\n"
            + textwrap.indent(pod("Pod", "a"), "  ").replace("  kind", "- kind", 1)
            + "- kind: Service\n  metadata: {name: s}\n"
            + textwrap.indent(pod("Deployment", "b", extra="  hostNetwork: true\n"),
                              "  ").replace("  kind", "- kind", 1)
            + "---\n" + pod("Job", "c"))
    result = inject_text(text)
    assert [o.line() for o in result.outcomes] == [
        'pod "a" injected',
        "deployment \"b\" skipped: hostNetwork: true (the pod uses its node's network: "
        "its iptables rules would be the node's)",
        "job \"c\" injected; the proxy keeps running after the job's own containers finish"]
    assert [o.document for o in result.outcomes] == [1, 1, 2]


@pytest.mark.parametrize(("where", "key", "value"), [
    ("pod", "meshtui.io/inject", "disabled"),
    ("pod", "linkerd.io/inject", "disabled"),
    ("workload", "meshtui.io/inject", "Disabled"),
])
def test_disabled_by_annotation(where: str, key: str, value: str) -> None:
    annotation = f"  annotations:\n    {key}: {value}\n"
    if where == "pod":
        text = pod("Deployment", "d", pod_meta=annotation)
    else:
        text = pod("Deployment", "d").replace("  name: d\n", f"  name: d\n{annotation}", 1)
    result = inject_text(text)
    assert result.text == text
    assert [o.line() for o in result.outcomes] == [
        f'deployment "d" skipped: injection disabled by annotation {key}: {value}']


def test_enabled_annotation_does_not_skip() -> None:
    text = pod("Pod", pod_meta="  annotations:\n    meshtui.io/inject: enabled\n")
    assert inject_text(text).injected == 1


def test_another_meshs_sidecar_is_left_alone() -> None:
    text = pod("Pod", extra="  - name: linkerd-proxy\n    image: l:1\n")
    result = inject_text(text)
    assert result.text == text
    assert result.outcomes[0].reason == "it already has a linkerd-proxy sidecar"


def test_pod_annotations_add_skip_ports_to_the_rules() -> None:
    meta = ("  annotations:\n    meshtui.io/skip-inbound-ports: '22, 8000-8100'\n"
            "    meshtui.io/skip-outbound-ports: \"3306\"\n")
    config = InjectConfig(skip_inbound_ports=parse_ports("9000"),
                          skip_outbound_ports=parse_ports("25"))
    out = inject_text(pod("Pod", pod_meta=meta), config).text
    args = container(load_all(out)[0], "meshtui-init", init=True)["args"]
    assert args[args.index("--inbound-ports-to-ignore") + 1] == "22,4190,4191,8000-8100,9000"
    assert args[args.index("--outbound-ports-to-ignore") + 1] == "25,3306"


def test_a_bad_skip_ports_annotation_skips_that_pod_only() -> None:
    bad = "  annotations:\n    meshtui.io/skip-inbound-ports: ssh\n"
    result = inject_text(pod("Pod", "bad", pod_meta=bad) + "---\n" + pod("Pod", "good"))
    assert [o.injected for o in result.outcomes] == [False, True]
    assert "annotation meshtui.io/skip-inbound-ports: 'ssh' is not a port" in \
        result.outcomes[0].reason


@pytest.mark.parametrize(("kind", "labels", "expected"), [
    ("Deployment", "{app: web-svc}", "w"),  # a Deployment: always its own name
    ("StatefulSet", "{app: web-svc}", "web-svc"),
    ("StatefulSet", "{tier: db}", "w"),
    ("Pod", "{app: bot}", "bot"),
    ("Pod", "{}", "w"),
    ("DaemonSet", "{app: 7}", "w"),  # an app label that is not a string: not a name
])
def test_the_workload_name_the_proxy_reports(kind: str, labels: str, expected: str) -> None:
    text = pod(kind, "w").replace("{app: w}", labels)
    ((_, p),) = pod_templates(load_all(inject_text(text).text)[0])
    env = {e["name"]: e for e in container(p, "meshtui-proxy")["env"]}
    assert env["MESHTUI_DEPLOYMENT"] == {"name": "MESHTUI_DEPLOYMENT", "value": expected}


def test_a_template_without_metadata_gets_one_first() -> None:
    text = ("kind: Deployment\nmetadata:\n  name: m\nspec:\n  template:\n    spec:\n"
            "      containers:\n      - name: app\n        image: a\n")
    out = inject_text(text).text
    template = load_all(out)[0]["spec"]["template"]
    assert list(template) == ["metadata", "spec"]
    assert template["metadata"] == {"annotations": {"meshtui.io/proxy-version": __version__}}


def test_other_ports_and_requests_reach_both_containers() -> None:
    config = InjectConfig(inbound_port=5143, outbound_port=5140, tap_port=5190,
                          admin_port=5191, cpu_request="0.25", memory_request="1Gi")
    p = load_all(inject_text(pod("Pod"), config).text)[0]
    proxy, init = container(p, "meshtui-proxy"), container(p, "meshtui-init", init=True)
    assert [x["containerPort"] for x in proxy["ports"]] == [5143, 5190, 5191]
    assert proxy["readinessProbe"]["httpGet"]["port"] == 5191
    env = {e["name"]: e.get("value") for e in proxy["env"]}
    assert (env["MESHTUI_INBOUND_ADDR"], env["MESHTUI_OUTBOUND_ADDR"]) == \
        ("0.0.0.0:5143", "127.0.0.1:5140")
    assert proxy["resources"] == {"requests": {"cpu": "0.25", "memory": "1Gi"}}
    assert init["args"] == ["proxy-init", "--proxy-uid", "2102", "--inbound-port", "5143",
                            "--outbound-port", "5140", "--inbound-ports-to-ignore", "5190,5191",
                            "--tap-port", "5190", "--admin-port", "5191"]


def test_meshtui_init_goes_before_the_pods_own_init_containers() -> None:
    text = pod("Pod", extra="  initContainers:\n  - name: migrate\n    image: m:1\n"
                            "  - name: warm\n    image: w:1\n")
    result = inject_text(text)
    spec = load_all(result.text)[0]["spec"]
    assert [c["name"] for c in spec["initContainers"]] == ["meshtui-init", "migrate", "warm"]
    assert result.outcomes[0].reason.startswith(
        'init containers "migrate", "warm" now run before the proxy starts: TCP they open '
        "fails unless they run as UID 2102")


def test_a_version_that_looks_like_a_number_stays_a_string() -> None:
    out = inject_text(pod("Pod"), InjectConfig(version="1.10")).text
    assert load_all(out)[0]["metadata"]["annotations"]["meshtui.io/proxy-version"] == "1.10"


@pytest.mark.parametrize(("text", "reason"), [
    ("kind: Deployment\nmetadata: {name: e}\nspec: {}\n", "no pod spec with containers"),
    ("kind: Pod\nmetadata: {name: e}\nspec:\n  containers: []\n",
     "no pod spec with containers"),
])
def test_workloads_without_containers_are_skipped(text: str, reason: str) -> None:
    result = inject_text(text)
    assert result.text == text and result.outcomes[0].reason == reason


def test_names_with_control_characters_are_shown_escaped() -> None:
    text = 'kind: Pod\nmetadata:\n  name: "evil\\e[2J"\nspec:\n  containers: [{name: a}]\n'
    assert inject_text(text).outcomes[0].line() == 'pod "evil\\x1b[2J" injected'


def test_nothing_to_inject() -> None:
    for text in ("", "# only a comment\n", "---\n", "just a scalar\n", "- a\n- b\n"):
        result = inject_text(text)
        assert result.text == text and result.outcomes == []


@pytest.mark.parametrize(("text", "document", "line"), [
    ("kind: Pod\nmetadata: {name: [\n", 1, 2),
    ("kind: Service\n---\n# c\nkind: Pod\n  bad: indent\n", 2, 5),
    ("a: 1\n...\nb: 2\n---\nc:\n\td: tab\n", 3, 6),
    ("a: 1\nb: 2\na: 3\n", 1, 3),
    ("a: 1\n---\n\nc: 2\nb: \"\x1b[2J\"\n", 2, 5),  # a raw control character
])
def test_parse_errors_name_the_document_and_line(text: str, document: int, line: int) -> None:
    with pytest.raises(ParseError) as err:
        inject_text(text)
    assert (err.value.document, err.value.line) == (document, line), str(err.value)
    assert str(err.value).startswith(f"document {document}, line {line}: could not parse YAML")
