"""Command groups shared by several areas: each area adds its own subcommands to these.

    kmed build {kg,index,all}   kmed eval {grounded,retrieval,safety}   kmed bench {retrieval,agent,llm}
"""

from __future__ import annotations

import typer

build_app = typer.Typer(help="지식그래프와 검색 인덱스 만들기", no_args_is_help=True)
eval_app = typer.Typer(help="평가 실행 (JSON/Markdown 결과)", no_args_is_help=True)
bench_app = typer.Typer(help="성능 벤치마크", no_args_is_help=True)
kg_app = typer.Typer(help="지식그래프 도구 (DUR 가져오기 등)", no_args_is_help=True)
