"""`cosim verify`: check a run folder against its audit chain (and the chain head's signature)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from cosim.commands._common import app, fail, out


@app.command()
def verify(run_dir: Path = typer.Argument(..., help="results folder of a run"),
           key: Optional[Path] = typer.Option(None, "--key", metavar="PUB",
                                              help="Ed25519 PEM public key: also check the chain head's signature")) -> None:
    """Check that a run's results are as it wrote them: exit 0 if untouched, 1 naming the first broken link or changed file."""
    from cosim.audit import verify as check

    problem = check(run_dir, key)
    if problem is not None:
        fail(f"{run_dir}: {problem}", 1)
    info = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    signed = "signature checked" if key is not None else (
        "signed; give --key to check the signature" if info.get("audit_signature") else "not signed")
    out.print(f"ok: {run_dir} — {info['audit_records']} chain record{'' if info['audit_records'] == 1 else 's'}, head {info['audit_head'][:16]}…, {signed}",
              highlight=False, markup=False)
