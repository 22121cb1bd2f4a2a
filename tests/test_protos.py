"""The committed generated code is exactly what the protos produce."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_generated_code_matches_protos(tmp_path: Path) -> None:
    pytest.importorskip("grpc_tools")
    pytest.importorskip("mypy_protobuf")
    bin_dir = Path(sys.executable).parent
    if not (bin_dir / "protoc-gen-mypy").exists():
        pytest.skip("protoc-gen-mypy is not installed next to this Python")
    env_path = f"{bin_dir}:{Path('/usr/bin')}:{Path('/bin')}"
    subprocess.run(
        ["bash", str(ROOT / "scripts" / "gen_protos.sh"), str(tmp_path)],
        check=True,
        env={"PATH": env_path},
        cwd=ROOT,
    )
    # The mesh's wire contract and the demo apps' own.
    for package in (Path("meshtui", "v1"), Path("meshtui", "demo", "emojivoto_v1")):
        fresh = sorted(p.relative_to(tmp_path) for p in (tmp_path / package).iterdir())
        committed = sorted(
            p.relative_to(ROOT) for p in (ROOT / package).iterdir() if "_pb2" in p.name
        )
        assert fresh == committed, f"generated file set of {package} differs: run `make protos`"
        for rel in fresh:
            assert (tmp_path / rel).read_bytes() == (ROOT / rel).read_bytes(), (
                f"{rel} is stale: run `make protos` and commit the result"
            )
    shutil.rmtree(tmp_path / "meshtui")


def test_generated_modules_import_and_roundtrip() -> None:
    from meshtui.v1 import common_pb2, controller_pb2, proxy_pb2

    batch = proxy_pb2.TapBatch(
        events=[
            common_pb2.TapEvent(
                proxy_direction=common_pb2.INBOUND,
                id=common_pb2.StreamId(base=3, stream=17),
                request_init=common_pb2.RequestInit(method="GET", path="/api/list"),
            )
        ],
        dropped=5,
    )
    again = proxy_pb2.TapBatch.FromString(batch.SerializeToString())
    assert again.events[0].request_init.path == "/api/list"
    assert again.events[0].WhichOneof("event") == "request_init"
    assert again.dropped == 5
    assert controller_pb2.StatRequest(window_s=60).window_s == 60


def test_demo_services_keep_emojivoto_names() -> None:
    from meshtui.demo.emojivoto_v1 import emoji_pb2, voting_pb2

    emoji = emoji_pb2.DESCRIPTOR.services_by_name["EmojiService"]
    assert emoji.full_name == "emojivoto.v1.EmojiService"
    assert {m.name for m in emoji.methods} == {"ListAll", "FindByShortcode"}
    voting = voting_pb2.DESCRIPTOR.services_by_name["VotingService"]
    assert voting.full_name == "emojivoto.v1.VotingService"
    assert {"VoteDoughnut", "VoteJoy", "Vote100", "Results"} <= {m.name for m in voting.methods}
