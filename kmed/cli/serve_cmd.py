"""``kmed serve`` (the HTTP service and web page) and ``kmed bench serve`` (its load test).

    kmed serve --host 127.0.0.1 --port 8000 [--model PATH] [--api-key KEY] [--db kmed-sessions.sqlite3]
    kmed bench serve --json [--sessions 50 --turns 10]
"""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console

from kmed.cli.core_cmd import MODEL_HELP, load_assistant
from kmed.cli.groups import bench_app
from kmed.cli.record import current, recorded

console = Console(stderr=True)


def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="듣는 주소 (외부에 열려면 0.0.0.0, 그때는 --api-key 권장)"),
    port: int = typer.Option(8000, "--port", help="포트"),
    model: str = typer.Option(None, "--model", help=MODEL_HELP),
    adapter: str = typer.Option(None, "--adapter", help="LoRA 어댑터 폴더"),
    quantize: str = typer.Option(None, "--quantize", help="int8 또는 nf4 (bitsandbytes)"),
    api_key: str = typer.Option(None, "--api-key", help="Bearer API 키 (없으면 KMED_API_KEY, 둘 다 없으면 키 없이 열림)"),
    db: Path = typer.Option(Path("kmed-sessions.sqlite3"), "--db", help="상담 세션 SQLite 파일 (재시작해도 이어져요)"),
    session_ttl: float = typer.Option(86400.0, "--session-ttl", help="세션 만료 시간(초, 마지막 대화 기준)"),
    max_sessions: int = typer.Option(10000, "--max-sessions", help="보관할 최대 세션 수 (넘으면 오래된 것부터 지움)"),
    rate_limit: float = typer.Option(60.0, "--rate-limit", help="클라이언트별 분당 요청 수 (0이면 끔)"),
    rate_burst: int = typer.Option(20, "--rate-burst", help="한꺼번에 허용하는 요청 수"),
    workers: int = typer.Option(2, "--workers", help="답변 생성 스레드 수"),
    queue_size: int = typer.Option(64, "--queue-size", help="대기열 크기 (넘으면 503 + Retry-After)"),
    max_message_chars: int = typer.Option(2000, "--max-message-chars", help="메시지 최대 글자 수"),
    index_dir: Path = typer.Option(None, "--index", help="인덱스 폴더 (기본: indexes/default)"),
) -> None:
    """Serve the consultation over HTTP: API, SSE, OpenAI-compatible endpoint and a web page at /."""
    from kmed.serve.runner import check_port, run
    from kmed.serve.settings import ServeSettings

    settings = ServeSettings.from_env(host=host, port=port, api_key=api_key, db_path=db, session_ttl_s=session_ttl,
                                      max_sessions=max_sessions, rate_limit_per_min=rate_limit, rate_burst=rate_burst,
                                      workers=workers, queue_size=queue_size, max_message_chars=max_message_chars)
    check_port(host, port)
    assistant = load_assistant(model, adapter, quantize, index_dir)
    shown = "localhost" if host in ("127.0.0.1", "0.0.0.0") else host
    console.print(f"[bold]kmed 상담 서버[/bold] http://{shown}:{port}/  (API: /v1, 명세: /openapi.json, 지표: /metrics)"
                  + ("  [API 키 필요]" if settings.api_key else ""))
    run(settings, assistant)


@bench_app.command("serve")
@recorded("bench serve", label=("sessions", "turns"), folder="out")
def bench_serve_cmd(
    sessions: int = typer.Option(50, "--sessions", help="동시 세션 수"),
    turns: int = typer.Option(10, "--turns", help="세션당 턴 수"),
    kill: bool = typer.Option(True, "--kill/--no-kill", help="중간에 서버를 SIGKILL로 죽이고 다시 띄워 세션 보존 확인"),
    timeout_s: float = typer.Option(600.0, "--timeout", help="전체 제한 시간(초)"),
    workers: int = typer.Option(2, "--workers", help="서버의 답변 생성 스레드 수"),
    think_ms: float = typer.Option(0.0, "--think-ms", help="턴 사이 평균 대기(ms); 0이면 쉬지 않고 보냄"),
    as_json: bool = typer.Option(False, "--json"),
    out: Path = typer.Option(None, "--out", help="report.json 을 여기에 저장"),
) -> None:
    """Load test on 127.0.0.1: concurrent sessions × turns, p50/p95, errors, storage, kill and restart."""
    from kmed.serve.bench import bench_serve

    report = bench_serve(sessions=sessions, turns=turns, kill=kill, timeout_s=timeout_s, workers=workers, think_ms=think_ms)
    if out:
        out.mkdir(parents=True, exist_ok=True)
        (out / "report.json").write_text(json.dumps(report, ensure_ascii=False, indent=2), encoding="utf-8")
    if as_json:
        print(json.dumps(report, ensure_ascii=False, indent=2))
    else:
        for key, value in report.items():
            console.print(f"{key}: {json.dumps(value, ensure_ascii=False)}", highlight=False, markup=False)
    if not report.get("ok"):
        current().metrics(report)
        raise typer.Exit(1)
    return report


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
