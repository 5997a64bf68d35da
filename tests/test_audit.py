"""The run's audit chain: `cosim verify` accepts an untouched run and names the first thing changed after it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cosim import audit
from cosim.results import read_timeseries
from tests.conftest import BASE

SCENARIO = BASE.replace("generators:", "controller: {kind: droop}\ngenerators:")


def _keys(folder: Path, name: str) -> tuple[Path, Path]:
    key = Ed25519PrivateKey.generate()
    private, public = folder / f"{name}.pem", folder / f"{name}.pub.pem"
    private.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    public.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                     serialization.PublicFormat.SubjectPublicKeyInfo))
    return private, public


@pytest.fixture(scope="module")
def signed_run(tmp_path_factory):
    """One real run of IEEE 33 with the droop controller, signed: (results folder, public key, other public key)."""
    from typer.testing import CliRunner

    from cosim.cli import app

    root = tmp_path_factory.mktemp("audit")
    (root / "s.yaml").write_text(SCENARIO, encoding="utf-8")
    private, public = _keys(root, "lab")
    _, other = _keys(root, "other")
    result = CliRunner().invoke(app, ["run", str(root / "s.yaml"), "--out", str(root / "run"), "-q",
                                      "--sign", str(private)])
    assert result.exit_code == 0, result.output
    return root / "run", public, other


@pytest.fixture
def copy(signed_run, tmp_path):
    """A fresh copy of the signed run's folder, to tamper with."""
    target = tmp_path / "run"
    shutil.copytree(signed_run[0], target)
    return target


def _records(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "audit.jsonl").read_text(encoding="utf-8").splitlines()]


def test_untouched_run_verifies_with_its_key(signed_run, cli):
    folder, public, _ = signed_run
    code, output, _ = cli("verify", folder, "--key", public)
    assert code == 0, output
    assert "signature checked" in output


def test_chain_holds_the_commands_the_controller_issued(signed_run):
    """The command records are the setpoints the recorder saw the controller hold (ctrl.<setpoint> columns)."""
    folder = signed_run[0]
    ts = read_timeseries(folder / "timeseries.parquet")
    commands = [r for r in _records(folder) if r["kind"] == "command"]
    assert [r["step"] for r in commands] == list(range(len(ts)))
    for r in commands:
        for name, value in r["setpoints"].items():
            assert ts[f"ctrl.{name}"].iloc[r["step"]] == pytest.approx(value, rel=1e-12)
    assert json.loads((folder / "run.json").read_text())["audit_head"] == _records(folder)[-1]["hash"]


def test_one_byte_changed_in_any_results_file_is_named(signed_run, copy):
    """Every file the chain digests (each chunk of timeseries.parquet too), one byte flipped in the middle."""
    files = _records(signed_run[0])[-1]["files"]
    assert {"events.csv", "metrics.json", "report.html"} <= set(files)
    assert any(name.startswith("timeseries.parquet/part-") for name in files)
    for name in files:
        path = copy / name
        original = path.read_bytes()
        data = bytearray(original)
        data[len(data) // 2] ^= 0x01
        path.write_bytes(bytes(data))
        problem = audit.verify(copy)
        assert problem is not None and problem.startswith(f"{name}: changed after the run"), problem
        path.write_bytes(original)
    assert audit.verify(copy) is None


def test_changed_file_fails_the_cli(copy, cli):
    (copy / "metrics.json").write_text((copy / "metrics.json").read_text().replace("0", "1", 1))
    code, output, _ = cli("verify", copy)
    assert code == 1 and "metrics.json: changed after the run" in " ".join(output.split())


def test_added_and_removed_files_are_named(copy):
    (copy / "timeseries.parquet" / "part-00099.parquet").write_bytes(b"x")
    assert audit.verify(copy) == "timeseries.parquet/part-00099.parquet: not in the chain (added after the run)"
    (copy / "timeseries.parquet" / "part-00099.parquet").unlink()
    (copy / "events.csv").unlink()
    assert audit.verify(copy) == "events.csv: missing (recorded in the chain)"


def test_edited_record_is_named(copy):
    lines = (copy / "audit.jsonl").read_text(encoding="utf-8").splitlines()
    record = json.loads(lines[3])
    record["setpoints"] = {k: 0.0 for k in record["setpoints"]}
    lines[3] = json.dumps(record)
    (copy / "audit.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert audit.verify(copy) == "audit.jsonl line 4: record 3 (command) was changed (its hash does not match its content)"


def test_edited_record_with_its_hash_recomputed_breaks_the_next_link(copy):
    lines = (copy / "audit.jsonl").read_text(encoding="utf-8").splitlines()
    record = json.loads(lines[3])
    record["setpoints"] = {k: 0.0 for k in record["setpoints"]}
    record["hash"] = audit.record_hash(record)
    lines[3] = json.dumps(record)
    (copy / "audit.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert audit.verify(copy) == "audit.jsonl line 5: broken link, prev does not match the hash of record 3"


def test_removed_records_are_named(copy):
    lines = (copy / "audit.jsonl").read_text(encoding="utf-8").splitlines()
    (copy / "audit.jsonl").write_text("\n".join(lines[:2] + lines[3:]) + "\n", encoding="utf-8")
    assert "line 3: record number 3 where 2 was expected" in audit.verify(copy)
    (copy / "audit.jsonl").write_text("\n".join(lines[:-1]) + "\n", encoding="utf-8")
    assert "does not end with the results record" in audit.verify(copy)


def test_edited_run_json_is_named(copy):
    info = json.loads((copy / "run.json").read_text())
    info["status"] = "ok" if info["status"] != "ok" else "failed"
    (copy / "run.json").write_text(json.dumps(info))
    assert audit.verify(copy).startswith("run.json was changed after the run")


def test_signature_needs_the_right_key(signed_run, copy):
    _, public, other = signed_run
    assert audit.verify(copy, public) is None
    assert audit.verify(copy, other).startswith("the signature of the chain head does not verify")
    info = json.loads((copy / "run.json").read_text())
    del info["audit_signature"]
    (copy / "run.json").write_text(json.dumps(info))
    assert audit.verify(copy) is None  # the chain itself is intact
    assert audit.verify(copy, public) == "run.json has no audit_signature (the run was not signed)"


def test_chain_round_trip_by_hand(tmp_path):
    """The hash of each record is SHA-256 of its canonical JSON; the head goes into run.json on sealing."""
    import hashlib

    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "run.json").write_text(json.dumps({"status": "ok"}))
    (folder / "data.csv").write_text("a,b\n1,2\n")
    chain = audit.AuditChain(folder / "audit.jsonl")
    first = chain.append("event", step=0, event="x", target="y", steps=1)
    body = {"seq": 0, "kind": "event", "prev": "0" * 64, "step": 0, "event": "x", "target": "y", "steps": 1}
    assert first == hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    private, public = _keys(tmp_path, "k")
    chain.seal(folder, audit.signing_key(private))
    records = _records(folder)
    assert records[-1]["files"] == {"data.csv": hashlib.sha256(b"a,b\n1,2\n").hexdigest()}
    assert records[-1]["prev"] == first
    assert audit.verify(folder, public) is None


def test_bad_signing_key_is_exit_2(tmp_path, write_scenario, cli):
    (tmp_path / "key.pem").write_text("not a key")
    code, output, _ = cli("run", write_scenario(SCENARIO), "--sign", tmp_path / "key.pem", "--out", tmp_path / "r")
    assert code == 2 and "--sign: cannot read" in output and not (tmp_path / "r").exists()


@pytest.mark.slow
def test_hil_run_records_every_guard_decision(tmp_path, cli):
    """The shipped field-devices run: each write the bridge makes is in the chain with the guard's decision."""
    from tests.conftest import SCENARIOS

    code, output, _ = cli("run", SCENARIOS / "hil" / "ieee33-field-devices.yaml", "--out", tmp_path / "r", "-q")
    assert code == 0, output
    writes = [r for r in _records(tmp_path / "r") if r["kind"] == "modbus_write"]
    assert writes and {r["decision"] for r in writes} <= {"allowed", "clamped", "blocked"}
    assert all((r["value"] is None) == (r["decision"] == "blocked") for r in writes)
    assert "inv1" in {r["device"] for r in writes}  # the droop controller drives the inverter
    assert any(name.startswith("devices/") for name in _records(tmp_path / "r")[-1]["files"])
    assert audit.verify(tmp_path / "r") is None
