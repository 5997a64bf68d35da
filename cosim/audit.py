"""The tamper-evident record of a run: `audit.jsonl`, a SHA-256 hash chain, and its check.

Every line is one JSON record `{seq, kind, prev, ..., hash}`: `prev` is the previous record's
hash (64 zeros for the first), `hash` the SHA-256 of the record's canonical JSON without
`hash`. During the run the chain takes every command the controller issued, every event and
alarm of the run's event log and every guard decision on a Modbus write; the last record,
`results`, holds the SHA-256 of every results file (each chunk of timeseries.parquet) and of
run.json's content. run.json then gets the chain head (`audit_head`, `audit_records`) and,
with a signing key, an Ed25519 signature of the head. Changing, removing or adding a record or
a byte of a results file breaks the chain or a digest; `verify` says where.
"""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path
from typing import Any, TextIO

AUDIT_FILE = "audit.jsonl"
RUN_FILE = "run.json"
GENESIS = "0" * 64
_AUDIT_KEYS = ("audit_head", "audit_records", "audit_signature")  # what sealing adds to run.json


def canonical(record: dict[str, Any]) -> bytes:
    """The bytes a record's hash covers: sorted keys, no spaces, UTF-8 (NaN stays NaN)."""
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str).encode("utf-8")


def record_hash(record: dict[str, Any]) -> str:
    """SHA-256 (hex) of a record without its `hash` field."""
    return hashlib.sha256(canonical({k: v for k, v in record.items() if k != "hash"})).hexdigest()


def file_digest(path: Path) -> str:
    """SHA-256 (hex) of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def results_files(out_dir: Path) -> dict[str, str]:
    """SHA-256 of every results file under `out_dir` by relative path; the chain, run.json and hidden
    (temporary) files excluded."""
    out = {}
    for path in sorted(p for p in Path(out_dir).rglob("*") if p.is_file()):
        rel = path.relative_to(out_dir).as_posix()
        if rel in (AUDIT_FILE, RUN_FILE) or any(part.startswith(".") for part in Path(rel).parts):
            continue
        out[rel] = file_digest(path)
    return out


def run_info_digest(info: dict[str, Any]) -> str:
    """SHA-256 of run.json's content without the fields sealing adds."""
    return hashlib.sha256(canonical({k: v for k, v in info.items() if k not in _AUDIT_KEYS})).hexdigest()


class AuditChain:
    """Appends records to `audit.jsonl`, each line flushed as it is written."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.head, self.count = GENESIS, 0
        self._file: TextIO | None = open(self.path, "w", encoding="utf-8")
        self._lock = threading.Lock()  # a controller's worker thread adds events too

    def append(self, kind: str, **data: Any) -> str:
        """Add one record of `kind` with `data`; returns its hash, the new head."""
        with self._lock:
            if self._file is None:
                raise RuntimeError(f"{self.path}: the chain is sealed")
            record = {"seq": self.count, "kind": kind, "prev": self.head, **data}
            record["hash"] = record_hash(record)
            self._file.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
            self._file.flush()
            self.head, self.count = record["hash"], self.count + 1
            return self.head

    def seal(self, out_dir: Path, key: Any = None) -> None:
        """Close the chain with the digests of the results and write its head (and signature) into run.json."""
        from cosim.results import write_json  # the results package's atomic JSON writer

        run_path = Path(out_dir) / RUN_FILE
        info = json.loads(run_path.read_text(encoding="utf-8"))
        self.append("results", files=results_files(out_dir), run_json=run_info_digest(info))
        self.close()
        info.update(audit_head=self.head, audit_records=self.count)
        if key is not None:  # an Ed25519 private key (signing_key)
            info["audit_signature"] = key.sign(self.head.encode("ascii")).hex()
        write_json(run_path, info)

    def close(self) -> None:
        """Close the file (a run that dies leaves a chain without `results`, which verify reports)."""
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None


class AuditKeyError(ValueError):
    """A signing or verification key that cannot be used; the message says why."""


def signing_key(key_file: Path) -> Any:
    """The Ed25519 private key in a PEM file (unencrypted), or AuditKeyError saying why it cannot sign."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        key = load_pem_private_key(Path(key_file).read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise AuditKeyError(f"cannot read {key_file} as an unencrypted PEM private key: {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise AuditKeyError(f"{key_file} holds a {type(key).__name__}, not an Ed25519 private key")
    return key


def _check_signature(head: str, signature: str | None, key_file: Path) -> str | None:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    try:
        key = load_pem_public_key(Path(key_file).read_bytes())
    except (OSError, ValueError) as exc:
        return f"cannot read {key_file} as a PEM public key: {exc}"
    if not isinstance(key, Ed25519PublicKey):
        return f"{key_file} is not an Ed25519 public key"
    if not signature:
        return "run.json has no audit_signature (the run was not signed)"
    try:
        key.verify(bytes.fromhex(signature), head.encode("ascii"))
    except (InvalidSignature, ValueError):
        return f"the signature of the chain head does not verify with {key_file}"
    return None


def _chain_problem(lines: list[str]) -> tuple[str | None, list[dict]]:
    """The first broken link of the chain's lines (or None) and the records read."""
    records, prev = [], GENESIS
    for i, line in enumerate(lines, 1):
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            return f"{AUDIT_FILE} line {i}: not a JSON record", records
        if not isinstance(record, dict) or "hash" not in record:
            return f"{AUDIT_FILE} line {i}: not a chain record (no hash)", records
        if record.get("seq") != i - 1:
            return f"{AUDIT_FILE} line {i}: record number {record.get('seq')} where {i - 1} was expected " \
                   "(a record was removed or inserted)", records
        if record.get("prev") != prev:
            return f"{AUDIT_FILE} line {i}: broken link, prev does not match the hash of record {i - 2}", records
        if record_hash(record) != record["hash"]:
            return f"{AUDIT_FILE} line {i}: record {i - 1} ({record.get('kind')}) was changed " \
                   "(its hash does not match its content)", records
        records.append(record)
        prev = record["hash"]
    return None, records


def verify(out_dir: Path, key_file: Path | None = None) -> str | None:
    """None for an untouched run folder; else the first problem: a broken link, a changed, missing or
    added results file, a head or signature that does not match."""
    out_dir = Path(out_dir)
    try:
        info = json.loads((out_dir / RUN_FILE).read_text(encoding="utf-8"))
        lines = (out_dir / AUDIT_FILE).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        return f"cannot read the run's record: {exc}"
    problem, records = _chain_problem(lines)
    if problem:
        return problem
    if not records or records[-1]["kind"] != "results":
        return f"{AUDIT_FILE} does not end with the results record (the run did not finish writing it, " \
               "or records were removed from the end)"
    head = records[-1]["hash"]
    if info.get("audit_head") != head or info.get("audit_records") != len(records):
        return f"{RUN_FILE}: audit_head / audit_records do not match the chain ({len(records)} records, " \
               f"head {head[:12]}…)"
    if run_info_digest(info) != records[-1]["run_json"]:
        return f"{RUN_FILE} was changed after the run (its content does not match the digest in the chain)"
    recorded, actual = records[-1]["files"], results_files(out_dir)
    for name in sorted(set(recorded) | set(actual)):
        if name not in actual:
            return f"{name}: missing (recorded in the chain)"
        if name not in recorded:
            return f"{name}: not in the chain (added after the run)"
        if recorded[name] != actual[name]:
            return f"{name}: changed after the run (SHA-256 {actual[name][:12]}… where the chain has " \
                   f"{recorded[name][:12]}…)"
    if key_file is not None:
        return _check_signature(head, info.get("audit_signature"), key_file)
    return None
