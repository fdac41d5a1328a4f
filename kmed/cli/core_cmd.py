"""``kmed ask``, ``kmed chat`` and ``kmed build {kg,index,all}``: the consultation and its indexes.

    kmed ask --json "역류성식도염이 있는데 가슴이 쓰리고 신물이 올라와요"
    kmed chat [--model PATH --adapter PATH --quantize int8|nf4]
    kmed build all [--if-missing] [--with-processed]      # kg, index and the message classifier
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from kmed.cli.groups import build_app

console = Console()

MODEL_HELP = "LLM 경로·허브 ID 또는 openai:<주소>#<모델> (없으면 가중치 없는 근거 문장 요약기)"


def progress_bar():
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
                    TimeElapsedColumn(), console=console, transient=False)


def load_assistant(model=None, adapter=None, quantize=None, index_dir=None, config=None):
    """Load the assistant, building a missing or stale index with a progress bar."""
    from kmed import Assistant
    from kmed.llm.factory import load_generator

    generator = load_generator(model, adapter=adapter, quantize=quantize)
    with progress_bar() as progress:
        task = progress.add_task("인덱스 확인", total=1.0)

        def step(message: str, fraction: float) -> None:
            progress.update(task, description=f"인덱스 만들기: {message}", completed=fraction)

        assistant = Assistant.load(index_dir=index_dir, config=config, generator=generator, progress=step)
        progress.update(task, description="준비 완료", completed=1.0)
    return assistant


def ask(
    question: str = typer.Argument(..., help="질문 (예: \"어제부터 열이 나고 목이 아파요\")"),
    as_json: bool = typer.Option(False, "--json", help="응답을 JSON 계약 형태로 출력"),
    model: str = typer.Option(None, "--model", help=MODEL_HELP),
    adapter: str = typer.Option(None, "--adapter", help="LoRA 어댑터 폴더"),
    quantize: str = typer.Option(None, "--quantize", help="int8 또는 nf4 (bitsandbytes)"),
    index_dir: Path = typer.Option(None, "--index", help="인덱스 폴더 (기본: indexes/default)"),
) -> None:
    """Answer one question."""
    if as_json:
        from kmed import Assistant
        from kmed.llm.factory import load_generator

        assistant = Assistant.load(index_dir=index_dir, generator=load_generator(model, adapter=adapter, quantize=quantize))
        print(json.dumps(assistant.ask(question).to_dict(), ensure_ascii=False, indent=2))
        return
    assistant = load_assistant(model, adapter, quantize, index_dir)
    reply = assistant.ask(question)
    _print_reply(reply)
    _print_sources(reply)


def _print_reply(reply) -> None:
    for notice in reply.notices:
        console.print(f"[dim]ℹ {notice}[/dim]")
    style = {"emergency": "bold red", "refusal": "yellow"}.get(reply.kind, "")
    console.print(reply.answer, style=style or None, highlight=False, markup=False)


def _print_sources(reply) -> None:
    if not reply.citations:
        return
    console.print("[dim]출처[/dim]")
    for n, c in enumerate(reply.citations, start=1):
        console.print(f"[dim] [{n}] {c.title} — {c.source}[/dim]", highlight=False)


CHAT_HELP = """명령어: /sources 출처 보기 · /reset 새 상담 시작 · /save 파일 대화 저장(개인정보는 가려져요) · /help 도움말 · /quit 끝내기
응급 상황이면 바로 119에 전화하세요. 자살예방상담 109 · 정신건강 위기상담 1577-0199"""


def chat(
    model: str = typer.Option(None, "--model", help=MODEL_HELP),
    adapter: str = typer.Option(None, "--adapter", help="LoRA 어댑터 폴더"),
    quantize: str = typer.Option(None, "--quantize", help="int8 또는 nf4 (bitsandbytes)"),
    index_dir: Path = typer.Option(None, "--index", help="인덱스 폴더 (기본: indexes/default)"),
) -> None:
    """Multi-turn consultation in the terminal."""
    try:
        import readline  # noqa: F401 - line editing and history for input(), Hangul included
    except ImportError:  # pragma: no cover - Windows
        pass
    assistant = load_assistant(model, adapter, quantize, index_dir)
    session = assistant.session()
    console.print(f"[bold]kmed 건강 상담[/bold] ({assistant.generator.name}) — 증상이나 궁금한 점을 적어 주세요.")
    console.print(f"[dim]{CHAT_HELP}[/dim]")
    while True:
        try:
            line = input("\n나> ")
        except EOFError:
            console.print("\n상담을 마칠게요. 건강하세요!")
            return
        except KeyboardInterrupt:
            console.print("\n(입력을 취소했어요. 끝내려면 /quit 또는 Ctrl-D)")
            continue
        command = line.strip()
        if command in ("/quit", "/exit", "/q"):
            console.print("상담을 마칠게요. 건강하세요!")
            return
        if command == "/help":
            console.print(CHAT_HELP)
            continue
        if command == "/reset":
            session.reset()
            console.print("새 상담을 시작해요. 이전 대화 내용은 잊었어요.")
            continue
        if command == "/sources":
            if session.last_reply and session.last_reply.citations:
                for n, c in enumerate(session.last_reply.citations, start=1):
                    console.print(f"[{n}] {c.title} — {c.source}\n    {c.snippet}", highlight=False, markup=False)
            else:
                console.print("직전 답변에는 출처가 없어요.")
            continue
        if command.startswith("/save"):
            _save_transcript(session, command[len("/save"):].strip())
            continue
        if command.startswith("/"):
            console.print(f"알 수 없는 명령이에요. {CHAT_HELP}")
            continue
        _chat_turn(session)(line)


def _chat_turn(session):
    def run(line: str) -> None:
        console.print("kmed> ", end="")
        streamed = False
        try:
            for event, value in session.stream(line):
                if event == "token":
                    console.print(value, end="", highlight=False, markup=False)
                    streamed = True
                elif event == "reply":
                    if streamed:
                        console.print()
                        if value.verification.get("dropped"):
                            console.print("[dim]근거로 확인되지 않은 문장을 뺀 최종 답변:[/dim]")
                            _print_reply(value)
                    else:
                        _print_reply(value)
        except KeyboardInterrupt:
            console.print("\n(답변을 중단했어요)")
    return run


def _save_transcript(session, target: str) -> None:
    path = Path(target or time.strftime("kmed-transcript-%Y%m%d-%H%M%S.txt"))
    lines = [f"{'나' if turn['role'] == 'user' else 'kmed'}> {turn['content']}" for turn in session.state.history]
    try:
        path.write_text("\n\n".join(lines) + "\n", encoding="utf-8")
    except OSError as exc:
        console.print(f"저장하지 못했어요: {exc}")
        return
    console.print(f"대화를 {path}에 저장했어요. (개인정보는 가려진 상태예요)")


def _build(what: str, if_missing: bool, with_processed: bool, index_dir: Path | None) -> None:
    from kmed.data.kb import load_kb_or_fail
    from kmed.kg.graph import build_graph, merge_extra_edges
    from kmed.paths import default_index_dir, default_processed_dir
    from kmed.retrieval.config import RetrievalConfig
    from kmed.retrieval.index import build_index, check_index

    kb = load_kb_or_fail()
    root = default_index_dir()
    if what in ("kg", "all"):
        # The graph a session reads lives in the search index (kg.json); this checks and counts it.
        started = time.perf_counter()
        graph = build_graph(kb)
        extra = merge_extra_edges(graph, default_processed_dir() / "kg_edges") if with_processed else 0
        console.print(f"✓ 지식그래프: 노드 {graph.number_of_nodes()}, 엣지 {graph.number_of_edges()}"
                      + (f" (AI Hub/DUR 엣지 {extra} 포함)" if extra else "")
                      + f", {time.perf_counter() - started:.1f}초. 세션은 검색 인덱스의 kg.json 을 읽어요 (kmed build index).")
    if what in ("index", "all"):
        folder = index_dir or root / "default"
        config = RetrievalConfig.load()
        problem = check_index(folder, kb, config)
        if if_missing and problem is None:
            console.print(f"✓ 검색 인덱스가 최신이에요 ({folder})")
        else:
            with progress_bar() as progress:
                task = progress.add_task("검색 인덱스", total=1.0)
                manifest = build_index(kb, folder, config, with_processed=with_processed,
                                       progress=lambda m, f: progress.update(task, description=f"검색 인덱스: {m}", completed=f))
            counts = manifest["counts"]
            dense = manifest.get("dense") or {}
            console.print(f"✓ 검색 인덱스: 문단 {counts['passages']}개, {manifest['build_seconds']}초, "
                          f"임베딩 {dense.get('embedded', 0)}개 새로 계산·{dense.get('reused', 0)}개 재사용 → {folder}")
    if what in ("classifier", "all"):
        _build_classifier(if_missing)


def _build_classifier(if_missing: bool) -> None:
    from kmed.agent import classifier

    folder = classifier.default_folder()
    if if_missing and classifier.problem(folder) is None:
        console.print(f"✓ 메시지 분류기가 최신이에요 ({folder})")
        return
    started = time.perf_counter()
    with console.status("메시지 분류기 학습 중 (data/triage, 1–2분)…"):
        manifest = classifier.build(folder)
    console.print(f"✓ 메시지 분류기: 발화 {manifest['counts']['triage']}개(응급도)·{manifest['counts']['intent']}개(의도), "
                  f"{time.perf_counter() - started:.0f}초 → {folder}")


def _build_command(what: str):
    def command(
        if_missing: bool = typer.Option(False, "--if-missing", help="없거나 오래된 경우에만 만들기"),
        with_processed: bool = typer.Option(False, "--with-processed", help="data/processed의 AI Hub 문단·엣지 포함"),
        index_dir: Path = typer.Option(None, "--index", help="인덱스 폴더 (기본: indexes/default)"),
    ) -> None:
        _build(what, if_missing, with_processed, index_dir)

    command.__doc__ = {"kg": "Compile the KB into the knowledge graph (indexes/kg).",
                       "index": "Build the search index (indexes/default).",
                       "classifier": "Train the message classifier from data/triage (indexes/triage).",
                       "all": "Build the knowledge graph, the search index and the message classifier."}[what]
    return command


def register(app: typer.Typer) -> None:
    app.command("ask")(ask)
    app.command("chat")(chat)
    for what in ("kg", "index", "classifier", "all"):
        build_app.command(what)(_build_command(what))
