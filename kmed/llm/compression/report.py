"""The compression report: one row per stage (quality, size, speed, memory, gate) as Markdown and a plot.

    write_report(out_dir, results, meta)      # report.md + report.png + results.json

matplotlib is imported only here, with the Agg backend, so a headless machine draws the plot.
"""

from __future__ import annotations

import json
from pathlib import Path

MiB = 1024 * 1024


def _fmt(value, spec: str = ".2f", missing: str = "–") -> str:
    if value is None:
        return missing
    return format(value, spec)


def markdown_table(results: list[dict]) -> str:
    head = ("| stage | perplexity | × prev | × base | top-1 vs base | KL vs base | vocab | grounded QA | size MiB | × base size "
            "| decode tok/s | TTFT s | peak RSS MiB | gate |")
    rows = [head, "|" + "---|" * 14]
    base = results[0] if results else {}
    prev = None
    for r in results:
        ratio = r["ppl"] / prev["ppl"] if prev and prev.get("ppl") and r.get("ppl") else None
        size_ratio = r["bytes_on_disk"] / base["bytes_on_disk"] if base.get("bytes_on_disk") else None
        base_ratio = r["ppl"] / base["ppl"] if base.get("ppl") and r.get("ppl") else None
        agree = r.get("agreement") or {}
        gate = r.get("gate") or {}
        gate_txt = "–" if not gate else ("pass" if gate.get("passed") else "**FAIL**: " + "; ".join(gate.get("failed", [])))
        rows.append(
            f"| {r['name']} | {_fmt(r.get('ppl'))} | {_fmt(ratio, '.3f')} | {_fmt(base_ratio, '.3f')} "
            f"| {_fmt(agree.get('top1_agreement'), '.3f')} | {_fmt(agree.get('kl'), '.4f')} | {_fmt(r.get('vocab_size'), ',')} "
            f"| {_fmt(r.get('qa'), '.3f', 'skipped')} "
            f"| {_fmt(r['bytes_on_disk'] / MiB, '.2f')} | {_fmt(size_ratio, '.3f')} | {_fmt(r.get('decode_tok_s'), '.1f')} "
            f"| {_fmt(r.get('ttft_s'), '.3f')} | {_fmt((r.get('peak_rss_bytes') or 0) / MiB or None, '.0f')} | {gate_txt} |"
        )
        prev = r
    return "\n".join(rows)


def plot(results: list[dict], path: Path, title: str = "") -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    names = [r["name"] for r in results]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    sizes = [r["bytes_on_disk"] / MiB for r in results]
    ppls = [r.get("ppl") or float("nan") for r in results]
    ax1.plot(sizes, ppls, "o-", color="tab:blue")
    for name, x, y in zip(names, sizes, ppls, strict=True):
        ax1.annotate(name, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8)
    ax1.set_xlabel("size on disk (MiB)")
    ax1.set_ylabel("held-out perplexity")
    ax1.set_title("quality vs size")
    speeds = [r.get("decode_tok_s") or 0 for r in results]
    colors = ["tab:red" if (r.get("gate") or {}).get("passed") is False else "tab:green" for r in results]
    ax2.bar(range(len(names)), speeds, color=colors)
    ax2.set_xticks(range(len(names)), names, rotation=30, ha="right", fontsize=8)
    ax2.set_ylabel("decode tokens/s (CPU)")
    ax2.set_title("decode speed")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_report(out: Path, results: list[dict], meta: dict) -> None:
    out = Path(out)
    png = plot(results, out / "report.png", meta.get("recipe_name", ""))
    status = meta.get("status", "")
    lines = [
        f"# Compression report: {meta.get('recipe_name', '')}",
        "",
        f"- base: `{meta.get('base')}`",
        f"- status: **{status}**" + (f": {meta['failure']}" if meta.get("failure") else ""),
        f"- machine: {meta.get('machine', '')}",
        f"- held-out text: {meta.get('heldout_sentences')} KB sentences ({meta.get('heldout_tokens')} tokens); "
        f"training/calibration: {meta.get('train_sentences')} sentences",
        "- speed and peak memory: each stage reloaded from disk in its own process "
        f"({meta.get('speed_prompt_tokens')}-token prompt, {meta.get('speed_new_tokens')} new tokens, greedy)",
        "",
        markdown_table(results),
        "",
    ]
    if png:
        lines += ["![quality, size and speed per stage](report.png)", ""]
    qa_notes = sorted({r.get("qa_note") for r in results if r.get("qa") is None and r.get("qa_note")})
    lines += [f"- grounded QA: {note}" for note in qa_notes]
    notes = [r for r in results if r.get("details", {}).get("note")]
    for r in notes:
        lines.append(f"- {r['name']}: {r['details']['note']}")
    (out / "report.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (out / "results.json").write_text(json.dumps({"meta": meta, "stages": results}, ensure_ascii=False, indent=2), encoding="utf-8")
