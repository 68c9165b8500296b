#!/usr/bin/env python3
"""The offline infra checks, one function per step, shared by scripts/check-infra.sh (through
this file's command line) and test_negative.py (which runs them against broken copies).

Usage: python steps.py STEP [--repo DIR] [--infra-check DIR] [--service NAME ...]
STEP: parse | types | checkov | azure-yaml | consistency | cargo-build
Exit 0 when the step passes, 1 when it fails; the output says why.

--infra-check DIR (default $INFRA_CHECK_DIR) holds the data the checks read:
  bicep-types/<namespace>/<apiVersion>/types.json and azure-yaml.schema.json
(scripts/check-infra.sh finds or fetches it). When $BICEP_CLI is set (a command such as
`bicep` or `az bicep`), the types step runs `bicep build` and `bicep lint` on infra/main.bicep
instead of the type-data check.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import infra_model as m
import test_consistency

SERVICES = test_consistency.SERVICES


def bicep_files(repo: Path) -> list[Path]:
    return sorted((repo / "infra").rglob("*.bicep"))


def dockerfiles(repo: Path) -> list[Path]:
    return [repo / s / "Dockerfile" for s in SERVICES if (repo / s / "Dockerfile").is_file()]


def step_parse(repo: Path, **_) -> tuple[bool, str]:
    """(1) Every .bicep parses with pycep-parser (the syntax gate checkov lacks)."""
    from pycep import BicepParser

    files = bicep_files(repo)
    if not files:
        return False, "no .bicep files under infra/"
    out, ok = [], True
    for f in files:
        try:
            BicepParser().parse(file_path=f)
            out.append(f"parsed {f.relative_to(repo)}")
        except Exception as e:  # noqa: BLE001 - lark raises several error types
            ok = False
            out.append(f"PARSE ERROR {f.relative_to(repo)}: {str(e).splitlines()[0]}")
    return ok, "\n".join(out)


def _bicep_cli(repo: Path, cli: str) -> tuple[bool, str]:
    """`bicep build` + `bicep lint` of infra/main.bicep (modules included), with
    infra/bicepconfig.json. Any error or warning fails: an unknown property is only a warning
    (BCP037) for the compiler."""
    main = repo / "infra" / "main.bicep"
    lines, ok = [], True
    with tempfile.TemporaryDirectory() as tmp:
        for args in (["build", str(main), "--outdir", tmp], ["lint", str(main)]):
            cmd = [*shlex.split(cli), *args]
            p = subprocess.run(cmd, capture_output=True, text=True, cwd=repo, check=False)
            out = (p.stdout + p.stderr).strip()
            diags = [
                ln
                for ln in out.splitlines()
                if re.search(r"\b(Error|Warning) BCP\d+|\b(Error|Warning) [a-z-]+:", ln)
            ]
            if p.returncode != 0 or diags:
                ok = False
            lines.append(f"$ {' '.join(cmd)} -> exit {p.returncode}, {len(diags)} diagnostic(s)")
            lines += diags or ([out] if p.returncode else [])
    return ok, "\n".join(lines)


def step_types(repo: Path, infra_check: Path, **_) -> tuple[bool, str]:
    """(2) Property names vs the official Bicep type data (bicep_types.py), or the real Bicep
    compiler and linter when $BICEP_CLI names one. A type@apiVersion without data ("not
    checked") fails too: every resource must be checked."""
    cli = os.environ.get("BICEP_CLI")
    if cli:
        return _bicep_cli(repo, cli)
    files = [str(f) for f in bicep_files(repo)]
    p = subprocess.run(
        [
            sys.executable,
            str(HERE / "bicep_types.py"),
            "--types",
            str(infra_check / "bicep-types"),
            *files,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    out = (p.stdout + p.stderr).strip()
    return p.returncode == 0, out


def _checkov(repo: Path, targets: list[str], frameworks: list[str]) -> tuple[int, list[dict], str]:
    with tempfile.TemporaryDirectory() as tmp:
        args = [
            str(Path(sys.executable).parent / "checkov"),
            "--skip-download",
            "--compact",
            "--framework",
            *frameworks,
            *targets,
            "-o",
            "json",
            "--output-file-path",
            tmp,
        ]
        env = {**os.environ, "BC_SKIP_MAPPING": "TRUE", "ANSI_COLORS_DISABLED": "1"}
        p = subprocess.run(args, capture_output=True, text=True, env=env, cwd=repo, check=False)
        jsn = Path(tmp, "results_json.json")
        if not jsn.exists():
            return p.returncode, [], f"{p.stdout}\n{p.stderr}"
        data = json.loads(jsn.read_text())
    return p.returncode, data if isinstance(data, list) else [data], ""


def step_checkov(repo: Path, **_) -> tuple[bool, str]:
    """(3) checkov, offline: infra/ with the bicep and secrets frameworks, the Dockerfiles and
    azure.yaml with the dockerfile and secrets frameworks. checkov exits 0 on files it cannot
    parse, so parsing errors and an empty scan fail here too. The secrets framework only
    reports when it finds something."""
    runs = [
        # infra/tests/data holds third-party data (azd's JSON schema), not configuration.
        (["-d", str(repo / "infra"), "--skip-path", "tests/data"], ["bicep", "secrets"], "bicep"),
        (
            [a for f in dockerfiles(repo) for a in ("-f", str(f))]
            + ["-f", str(repo / "azure.yaml")],
            ["dockerfile", "secrets"],
            "dockerfile",
        ),
    ]
    ok, lines = True, []
    total = {"passed": 0, "failed": 0, "skipped": 0, "parsing_errors": 0, "resource_count": 0}
    for targets, frameworks, required in runs:
        rc, reports, raw = _checkov(repo, targets, frameworks)
        kinds = {rep.get("check_type") for rep in reports}
        if required not in kinds:
            ok = False
            lines.append(
                f"checkov {' '.join(frameworks)}: no {required} results (exit {rc}): nothing was scanned\n{raw.strip()}"
            )
        if rc not in (0, 1):
            ok = False
            lines.append(f"checkov {' '.join(frameworks)}: exit {rc}\n{raw.strip()}")
        for rep in reports:
            for k in total:
                total[k] += int(rep.get("summary", {}).get(k, 0) or 0)
            for c in rep.get("results", {}).get("failed_checks", []):
                ok = False
                lines.append(
                    f"FAILED  {c['check_id']} {c.get('resource')} {c.get('file_path')}: {c.get('check_name')}"
                )
            for c in rep.get("results", {}).get("skipped_checks", []):
                reason = ((c.get("check_result") or {}).get("suppress_comment") or "").strip()
                lines.append(
                    f"skipped {c['check_id']} {c.get('resource')} {c.get('file_path')}: {reason}"
                )
    if total["parsing_errors"]:
        ok = False
    lines.append(
        f"checkov: {total['passed']} passed, {total['failed']} failed, {total['skipped']} skipped, "
        f"{total['parsing_errors']} parsing errors, {total['resource_count']} resources"
    )
    return ok, "\n".join(lines)


def azure_yaml_schema(infra_check: Path) -> Path:
    """The data directory's copy of azd's schema, else the one kept in the repository
    (infra/tests/data, a copy of schemas/v1.0/azure.yaml.json of Azure/azure-dev)."""
    own = infra_check / "azure-yaml.schema.json"
    return own if own.is_file() else HERE / "data" / "azure-yaml.schema.json"


def step_azure_yaml(repo: Path, infra_check: Path, **_) -> tuple[bool, str]:
    """(4) azure.yaml vs azd's schema + the language rule."""
    p = subprocess.run(
        [
            sys.executable,
            str(HERE / "azure_yaml_check.py"),
            "--schema",
            str(azure_yaml_schema(infra_check)),
            str(repo / "azure.yaml"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    out = (p.stdout + p.stderr).strip()
    return p.returncode == 0, out or "azure.yaml: 0 schema errors"


def step_consistency(repo: Path, **_) -> tuple[bool, str]:
    """(5) Names and ports agree across code, local Dapr files, azure.yaml, Dockerfiles, infra."""
    errors = test_consistency.run(repo)
    return not errors, "\n".join(errors) if errors else "consistency: OK"


def cargo_commands(repo: Path, services: list[str]) -> list[tuple[str, str | None]]:
    out = []
    for svc in services:
        path = repo / svc / "Dockerfile"
        if not path.is_file():
            out.append((svc, None))
            continue
        cmds = m.read_dockerfile(path).cargo_build_commands()
        out.extend((svc, c) for c in cmds) if cmds else out.append((svc, None))
    return out


def _dockerignore_regex(pattern: str) -> re.Pattern:
    """One .dockerignore pattern as Docker (moby/patternmatcher) matches it."""
    pat = os.path.normpath(pattern.strip().lstrip("/")).replace(os.sep, "/")
    rx, i = "^", 0
    while i < len(pat):
        c = pat[i]
        if c == "*":
            if pat[i + 1 : i + 2] == "*":
                i += 1
                if pat[i + 1 : i + 2] == "/":
                    i += 1
                    rx += "(.*/)?"
                else:
                    rx += ".*"
            else:
                rx += "[^/]*"
        elif c == "?":
            rx += "[^/]"
        elif c == "\\" and i + 1 < len(pat):
            i += 1
            rx += re.escape(pat[i])
        else:
            rx += re.escape(c)
        i += 1
    return re.compile(rx + "$")


def dockerignore(repo: Path):
    """Predicate: is this context-relative path excluded by .dockerignore? (last match wins,
    `!` re-includes, a match on a parent directory excludes everything below it)."""
    rules = []
    path = repo / ".dockerignore"
    for line in path.read_text().splitlines() if path.is_file() else []:
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        neg = line.startswith("!")
        rules.append((neg, _dockerignore_regex(line[1:] if neg else line)))

    def excluded(rel: str) -> bool:
        parts = rel.split("/")
        candidates = ["/".join(parts[:k]) for k in range(1, len(parts) + 1)]
        result = False
        for neg, rx in rules:
            if any(rx.match(c) for c in candidates):
                result = not neg
        return result

    return excluded


def sync_build_context(repo: Path, dest: Path) -> int:
    """Mirror what `docker build` would receive (repository root minus .dockerignore) into
    dest, keeping mtimes so cargo rebuilds only what changed. Returns the file count."""
    excluded = dockerignore(repo)
    wanted: set[Path] = set()
    dest_res = dest.resolve()
    for root, dirs, files in os.walk(repo):
        rootp = Path(root)
        rel_root = rootp.relative_to(repo).as_posix()
        keep = []
        for d in dirs:
            rel = f"{rel_root}/{d}" if rel_root != "." else d
            if (rootp / d).resolve() == dest_res or excluded(rel):
                continue
            keep.append(d)
        dirs[:] = keep
        for f in files:
            rel = f"{rel_root}/{f}" if rel_root != "." else f
            if excluded(rel):
                continue
            src, dst = rootp / f, dest / rel
            wanted.add(dst)
            st = src.stat()
            if (
                not dst.exists()
                or dst.stat().st_size != st.st_size
                or dst.stat().st_mtime_ns != st.st_mtime_ns
            ):
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, dst)
    for root, _, files in os.walk(dest, topdown=False):
        for f in files:
            if Path(root, f) not in wanted:
                Path(root, f).unlink()
        if root != str(dest) and not os.listdir(root):
            os.rmdir(root)
    return len(wanted)


def step_cargo_build(repo: Path, services: list[str] | None = None, **_) -> tuple[bool, str]:
    """(6) Run each Dockerfile's own `cargo build` command the way the image build runs it:
    from the build context (the repository root minus .dockerignore, mirrored into
    <target dir>/infra-docker-context), so an over-eager .dockerignore fails here too. The
    target dir ($CARGO_TARGET_DIR, else <repo>/target) is shared, so dependencies are reused."""
    excluded = dockerignore(repo)
    if not excluded("target"):
        return (
            False,
            ".dockerignore does not exclude target/: the image build context would contain the build output",
        )
    target = Path(os.environ.get("CARGO_TARGET_DIR") or repo / "target").resolve()
    ctx = target / "infra-docker-context"
    n = sync_build_context(repo, ctx)
    ok, lines = True, [f"build context: {n} files in {ctx}"]
    env = {**os.environ, "CARGO_TARGET_DIR": str(target)}
    for svc, cmd in cargo_commands(repo, services or SERVICES):
        if cmd is None:
            ok = False
            lines.append(f"FAIL {svc}: no `cargo build` command found in {svc}/Dockerfile")
            continue
        print(f"  [{svc}] $ {cmd}", flush=True)
        p = subprocess.run(
            shlex.split(cmd), cwd=ctx, capture_output=True, text=True, env=env, check=False
        )
        if p.returncode == 0:
            lines.append(f"ok   {svc}: {cmd}")
        else:
            ok = False
            tail = "\n".join((p.stderr or p.stdout).strip().splitlines()[-15:])
            lines.append(f"FAIL {svc}: {cmd} (exit {p.returncode})\n{tail}")
    forget_context_build(ctx, env)
    return ok, "\n".join(lines)


def forget_context_build(ctx: Path, env: dict[str, str]) -> None:
    """Cleans the workspace's own packages out of the shared target dir after a build in `ctx`.
    Cargo identifies a workspace package by its path inside the workspace, so the copy's packages
    and the repository's are the same build units there, and their fingerprints now list the
    copy's sources: a later `cargo build --release` in the repository would find them up to date
    and keep the copy's binaries, however its own sources changed since. Cleaned (dependencies
    stay), they are compiled again from whichever tree builds next."""
    meta = subprocess.run(
        ["cargo", "metadata", "--no-deps", "--format-version", "1", "--offline"],
        cwd=ctx,
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if meta.returncode != 0:
        # No workspace to read (the context lacks part of it): no build of it went through
        # either, so nothing of it is in the target dir.
        return
    packages = [p["name"] for p in json.loads(meta.stdout)["packages"]]
    args = [a for name in packages for a in ("-p", name)]
    subprocess.run(
        ["cargo", "clean", "--release", "--quiet", *args],
        cwd=ctx,
        env=env,
        check=True,
    )


STEPS = {
    "parse": step_parse,
    "types": step_types,
    "checkov": step_checkov,
    "azure-yaml": step_azure_yaml,
    "consistency": step_consistency,
    "cargo-build": step_cargo_build,
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("step", choices=sorted(STEPS))
    ap.add_argument("--repo", default=str(HERE.parents[1]))
    ap.add_argument(
        "--infra-check",
        default=os.environ.get("INFRA_CHECK_DIR", str(HERE.parents[2] / "shared" / "infra-check")),
    )
    ap.add_argument("--service", action="append", dest="services")
    a = ap.parse_args()
    ok, out = STEPS[a.step](
        repo=Path(a.repo).resolve(), infra_check=Path(a.infra_check).resolve(), services=a.services
    )
    print(out)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
