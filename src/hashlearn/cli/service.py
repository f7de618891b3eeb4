"""CLI commands of ``hashlearn.service``, added to the main app by :func:`register`."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def register(app, bench_app) -> None:
    """Add this package's commands to the hashlearn typer app (and its bench group)."""

    @app.command("serve")
    def serve(
        data_dir: Path = typer.Option(..., "--data-dir", help="Folder of the collections (created if missing)."),
        host: str = typer.Option("127.0.0.1", "--host", help="Address to bind (default: loopback only)."),
        port: int = typer.Option(8000, "--port", min=0, max=65535, help="Port to listen on (0: any free port)."),
        api_keys: Optional[Path] = typer.Option(
            None, "--api-keys", help="File of 'KEY ROLE' lines (role: read or write); also read: $HASHLEARN_API_KEYS."),
        no_auth: bool = typer.Option(False, "--no-auth", help="Serve without API keys (anyone may write)."),
        max_body_mb: float = typer.Option(64.0, "--max-body-mb", min=0.001, help="Largest request body (MiB); larger: 413."),
        max_batch: int = typer.Option(10000, "--max-batch", min=1,
                                      help="Most vectors per upsert or train request (and ids per delete or get)."),
        max_queries: int = typer.Option(1000, "--max-queries", min=1, help="Most query vectors per search request."),
        max_k: int = typer.Option(10000, "--max-k", min=1, help="Most results per query."),
        max_candidates: int = typer.Option(10000, "--max-candidates", min=1,
                                           help="Most Hamming candidates a re-ranked search re-scores per query."),
        max_rerank_work: int = typer.Option(200_000_000, "--max-rerank-work", min=1,
                                            help="Most queries x candidates x dim of one re-ranked search."),
        max_bits: Optional[int] = typer.Option(None, "--max-bits", min=1,
                                               help="Longest code of a collection (default: the library's limit)."),
        body_timeout: float = typer.Option(30.0, "--body-timeout", min=0.1,
                                           help="Seconds to receive a request body; slower: 408, connection closed."),
        keep_alive_timeout: float = typer.Option(5.0, "--keep-alive-timeout", min=0.1,
                                                 help="Seconds an idle keep-alive connection stays open."),
        snapshot_records: int = typer.Option(1000, "--snapshot-records", min=1,
                                             help="Take a snapshot after this many logged writes."),
        snapshot_mb: float = typer.Option(256.0, "--snapshot-mb", min=0.001, help="... or when the log reaches this size (MiB)."),
        log_level: str = typer.Option("warning", "--log-level", help="uvicorn log level."),
    ):
        """Serve collections over HTTP (REST + JSON, web page at /, OpenAPI at /docs)."""
        import os

        from ._common import CLIError, err_console

        try:
            import uvicorn

            from hashlearn.service.app import ENV_KEYS, create_app, load_api_keys
        except ImportError as exc:
            raise CLIError(f"the service needs the [service] extra (pip install 'hashlearn[service]'): {exc}") from None
        if data_dir.exists() and not data_dir.is_dir():
            raise CLIError(f"--data-dir {data_dir}: is not a directory")
        keys = load_api_keys(api_keys, os.environ.get(ENV_KEYS))
        if not keys and not no_auth:
            raise CLIError(f"no API keys: pass --api-keys FILE or set {ENV_KEYS}, or --no-auth to serve without keys")
        if keys and no_auth:
            raise CLIError("--no-auth given together with API keys; choose one")
        if no_auth and host not in ("127.0.0.1", "localhost", "::1"):
            raise CLIError(f"--no-auth is only allowed on a loopback address, not --host {host}")
        application = create_app(
            data_dir, api_keys=keys, auth=not no_auth, max_body_bytes=int(max_body_mb * (1 << 20)),
            max_batch=max_batch, max_queries=max_queries, max_k=max_k, max_candidates=max_candidates,
            max_rerank_work=max_rerank_work, max_bits=max_bits, body_timeout=body_timeout,
            snapshot_records=snapshot_records, snapshot_bytes=int(snapshot_mb * (1 << 20)),
        )
        storage = application.state.storage
        for name, rep in storage.recovery.items():
            problems = rep.get("problems") or []
            snap = rep.get("snapshot")
            if rep.get("unavailable"):
                line = f"collection {name}: NOT OPENED: {' | '.join(problems)}"
            else:
                line = (f"collection {name}: {rep.get('points', '?')} points, "
                        f"snapshot {snap['file'] if snap else 'none'}, {rep.get('replayed_records', 0)} log records replayed"
                        + (f"; {rep['action']}" if rep.get("action") else "")
                        + (f"; PROBLEMS: {' | '.join(problems)}" if problems else ""))
            err_console.print(line, highlight=False, soft_wrap=True)
        err_console.print(f"hashlearn serving {data_dir} on http://{host}:{port}", highlight=False)
        uvicorn.run(application, host=host, port=port, log_level=log_level, workers=1,
                    timeout_keep_alive=keep_alive_timeout)
