"""Every code block of the README, executed: python blocks in a fresh process, command lines through the
real parser (and the quick ones for real), the extras table against ``pyproject.toml``.

Hub ids in the snippets stay as a user writes them: a local Hugging Face cache holds the shared SciFact
model under ``cross-encoder/ms-marco-MiniLM-L6-v2``, so the Quickstart's stated output is that model's.
"""

from __future__ import annotations

import io
import json
import os
import re
import shlex
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

from rerank_plugins.cli import build_parser, main
from tests.hub_cache import add_to_hub_cache
from tests.model_families import qwen3_reranker
from tests.paths import REPO, SHARED, TRAINED_MODEL
from tests.readme import README, command_lines, python_sections, readme_blocks
from tests.readme_runner import QUERY, RELEVANT_WORD

HUB_MODELS = {"cross-encoder/ms-marco-MiniLM-L6-v2": TRAINED_MODEL}
SECTIONS = python_sections()
BLOCKS = [block for blocks in SECTIONS.values() for block in blocks]


@pytest.fixture(scope="module")
def hub_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cache = tmp_path_factory.mktemp("hf-cache")
    for repo_id, source in HUB_MODELS.items():
        add_to_hub_cache(cache, repo_id, source)
    # the Qwen3 reranker the "Choosing a model" block names: its real layout, tiny and random (no weights here)
    qwen3 = qwen3_reranker(tmp_path_factory.mktemp("qwen3"), layers=1)
    add_to_hub_cache(cache, "Qwen/Qwen3-Reranker-0.6B", qwen3)
    return cache


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory, hub_cache: Path, bi_encoder_path: str) -> dict[str, Any]:
    """All python blocks run once, section by section, in one fresh process (the README's reader)."""
    work = tmp_path_factory.mktemp("readme")
    local_model = work / "models" / "ms-marco-MiniLM-L6-v2"
    local_model.parent.mkdir()
    local_model.symlink_to(TRAINED_MODEL, target_is_directory=True)
    context = {"shared": str(SHARED), "local_model": str(local_model), "bi_encoder": bi_encoder_path}
    plan = {
        "context": context,
        "sections": {name: [{"line": b.line, "code": b.code} for b in blocks] for name, blocks in SECTIONS.items()},
    }
    (work / "plan.json").write_text(json.dumps(plan), encoding="utf-8")
    env = {**os.environ, "HF_HUB_CACHE": str(hub_cache), "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-m", "tests.readme_runner", "plan.json", "results.json"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads((work / "results.json").read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def test_the_readme_has_the_blocks_these_tests_run() -> None:
    names = set(SECTIONS)
    assert {"Quickstart", "LangChain", "LlamaIndex", "Score fusion", "Retrieval: a FAISS bi-encoder retriever"} <= names
    assert len(BLOCKS) >= 9 and all(block.code.strip() for block in BLOCKS)


@pytest.mark.slow
@pytest.mark.parametrize("block", BLOCKS, ids=[block.name for block in BLOCKS])
def test_python_block_runs(results: dict[str, Any], block: Any) -> None:
    assert "setup_error" not in results.get(block.section, {}), results[block.section]["setup_error"]
    outcome = results[str(block.line)]
    assert outcome["error"] is None, outcome["error"]
    if block.output is not None:
        assert outcome["stdout"] == block.output  # the stated output is what it prints


def test_quickstart_states_its_output_and_ranks_the_homocysteine_abstracts_first(results) -> None:
    (quickstart,) = SECTIONS["Quickstart"]
    assert quickstart.output is not None
    rows = [line.split(" ", 2) for line in results[str(quickstart.line)]["stdout"].splitlines()]
    assert [int(index) for index, _, _ in rows] == [2, 0]  # both B12 / homocysteine sentences, not the Eiffel Tower
    assert all(0.5 < float(score) <= 1.0 for _, score, _ in rows)


def test_langchain_blocks_rerank_the_vector_store_candidates(results) -> None:
    docs = results["LangChain"]["docs"]
    scores = [score for _, score in docs]
    assert len(docs) == 5 and scores == sorted(scores, reverse=True)  # k=5 per call
    assert RELEVANT_WORD in docs[0][0].lower()
    assert results["LangChain"]["top3"] == docs[:3]  # ContextualCompressionRetriever: the same core, the same top 3


def test_fusion_block_keeps_vector_store_scores_and_fuses_them(results) -> None:
    fused = results["Score fusion"]["fused"]
    assert len(fused) == 3 and all(isinstance(score, float) for score in fused) and fused == sorted(fused, reverse=True)


def test_llama_index_blocks_run_with_an_llm_and_rerank_without_one(results) -> None:
    engine_block, retrieve_block = SECTIONS["LlamaIndex"]
    top = results[str(engine_block.line)]["value"]
    assert len(top) == 3 and [s for _, s in top] == sorted((s for _, s in top), reverse=True)
    best = results["LlamaIndex"]["best"]
    assert len(best) == 3 and RELEVANT_WORD in best[0][0].lower()
    assert "llm=" not in retrieve_block.code and "Settings" not in retrieve_block.code


def test_calibration_blocks_answer_the_answerable_and_say_nothing_for_the_rest(results) -> None:
    core_block, *_ = SECTIONS['Calibrated relevance and "nothing relevant"']
    answered, nothing = results[str(core_block.line)]["stdout"].splitlines()
    assert answered.startswith("Does B12 deficiency raise homocysteine? -> ") and "homocysteine" in answered
    assert nothing.startswith("Is the Great Wall of China visible from space? -> nothing relevant (P(any relevant) ")
    facts = results['Calibrated relevance and "nothing relevant"']
    assert facts["replies"][1] == facts["answers"][1] == "I found nothing about that in the documents."
    assert facts["replies"][0] == "B12 deficiency raises homocysteine."  # the chat model answered from documents
    assert facts["answers"][0] != "I found nothing about that in the documents."
    assert facts["nothing"] is True and 0.0 <= facts["verdict"]["p_any_relevant"] < 0.5


def test_passage_blocks_point_at_the_text_that_earned_each_score(results) -> None:
    core_block, _ = SECTIONS["Evidence passages: the text that earned the score"]
    lines = results[str(core_block.line)]["stdout"].splitlines()
    assert len(lines) == 2
    for line in lines:
        start, end, length = map(int, re.fullmatch(r"document \d+: characters (\d+)-(\d+) of (\d+)", line).groups())
        assert 0 <= start < end < length  # a passage, not the whole chain of three abstracts
    facts = results["Evidence passages: the text that earned the score"]
    assert len(facts["passages"]) == len(facts["passage_nodes"]) == 3
    for whole, passage, (start, end) in facts["passages"]:
        assert passage == whole[start:end] and len(passage) < len(whole)
    assert RELEVANT_WORD in facts["passages"][0][1].lower()  # the first passage is about homocysteine
    assert all(passage in whole and len(passage) < len(whole) for whole, passage in facts["passage_nodes"])


def test_the_passage_figures_are_the_benchmark_s() -> None:
    """The README's passage table and the figures quoted under it say what ``benchmarks/passages.py`` wrote."""
    measured = json.loads((REPO / "benchmarks" / "results" / "passages.json").read_text(encoding="utf-8"))
    text = README.read_text(encoding="utf-8")
    section = text[text.index("### Passages on SciFact") :].split("\n## ")[0]
    rows = {(r["set"], r["window_tokens"], r["mode"], r["boundaries"]): r for r in measured["rows"]}
    for name in ("abstracts", "chained"):
        for window in (None, 128, 64):
            cut, tokens = rows[(name, window, "truncate", "tokens")], rows[(name, window, "window", "tokens")]
            sentence = rows.get((name, window, "window", "sentence"))
            shown = sentence or tokens
            ndcg = f"{tokens['ndcg@10']:.4f}" + ("" if sentence is None else f" / {sentence['ndcg@10']:.4f}")
            assert f"| {cut['ndcg@10']:.4f} | {ndcg} | {shown['top5_passage_tokens']:,} vs " in section
            assert f"({100 * shown['token_reduction']:.1f} % fewer)" in section
    chained = rows[("chained", 128, "window", "sentence")]
    assert chained["ndcg@10"] >= rows[("abstracts", None, "truncate", "tokens")]["ndcg@10"] - 0.01
    assert f"hand the LLM {100 * chained['token_reduction']:.1f} % fewer tokens" in section
    assert (
        f"{100 * chained['overlap_rate']:.0f} % of the relevant results ({100 * chained['inside_rate']:.1f} %"
        in section
    )
    assert chained["token_reduction"] >= 0.5 and chained["overlap_rate"] >= 0.9  # the goals


def test_faiss_block_searches_adds_saves_and_loads(results) -> None:
    facts = results["Retrieval: a FAISS bi-encoder retriever"]
    assert facts["loaded"] == 40  # 30 texts, then 10 more, saved and loaded back
    hits = facts["hits"]
    assert len(hits) == 30 and [h[2] for h in hits] == sorted((h[2] for h in hits), reverse=True)


COMMANDS = command_lines()


def _placeholders(command: str, tmp_path: Path) -> str:
    return (
        command.replace("../shared", str(SHARED))
        .replace("--model MODEL", f"--model {TRAINED_MODEL}")
        .replace("--model DIR", f"--model {TRAINED_MODEL}")
        .replace("$(openssl rand -hex 16)", "k")
        .replace("runs/", f"{tmp_path}/runs/")
    )


@pytest.mark.parametrize("command", [c for _, c in COMMANDS], ids=[f"{b.section}: {c[:60]}" for b, c in COMMANDS])
def test_command_line_parses_with_the_real_parser(command: str, tmp_path: Path) -> None:
    words = shlex.split(_placeholders(command, tmp_path).split("<")[0])
    args = build_parser().parse_args(words[1:])
    assert args.command == words[1]


def test_readme_rank_command_runs_as_written(tmp_path: Path, monkeypatch, capsys) -> None:
    ranks = [c for _, c in COMMANDS if c.startswith("rerank-plugins rank ")]
    shows = [c for c in ranks if "--show" in c]  # the one in "Evidence passages": test_cli runs its options
    assert len(ranks) == 2 and len(shows) == 1
    (command,) = [c for c in ranks if c not in shows]
    assert command == 'rerank-plugins rank --model ../shared/models/minilm-l6-scifact-ce --query "..." < docs.txt'
    documents = [
        "The Eiffel Tower was completed in 1889.",
        "Folate and B12 lowered homocysteine in a randomised trial.",
    ]
    monkeypatch.setattr(sys, "stdin", io.StringIO("\n".join(documents) + "\n"))
    words = shlex.split(_placeholders(command, tmp_path).split("<")[0].replace('"..."', shlex.quote(QUERY)))
    assert main(words[1:]) == 0
    assert [json.loads(line)["index"] for line in capsys.readouterr().out.splitlines()] == [1, 0]


def test_readme_demo_command_runs_as_written(tmp_path: Path, capsys) -> None:
    (command,) = {c for _, c in COMMANDS if c.startswith("rerank-plugins demo ") and "--data" not in c}
    assert main(shlex.split(_placeholders(command, tmp_path))[1:]) == 0
    out = capsys.readouterr().out
    assert "bi-encoder order" in out and "reranked" in out


def test_the_extras_table_matches_the_package_extras() -> None:
    extras: dict[str, list[str]] = {name: [] for name in metadata.metadata("rerank-plugins").get_all("Provides-Extra")}
    for requirement in metadata.requires("rerank-plugins") or []:
        if "extra ==" in requirement:
            extras[requirement.split("extra ==")[1].strip().strip("'\"")].append(requirement.split(";")[0].strip())
    text = README.read_text(encoding="utf-8")
    table = text[text.index("| extra | brings | for |") :].split("\n\n")[0].splitlines()[2:]
    named = {row.split("|")[1].strip().strip("`") for row in table}
    assert named - {"*(none)*"} == set(extras)
    for row in table:
        name, brings = row.split("|")[1].strip().strip("`"), row.split("|")[2]
        for requirement in extras.get(name, []):
            package = requirement.split(">")[0].split("[")[0].split("=")[0].strip()
            if package != "rerank-plugins":
                assert package.replace("llama-index-postprocessor-", "-") in brings or package in brings, (
                    name,
                    package,
                )


def test_readme_blocks_are_all_seen() -> None:
    fences = README.read_text(encoding="utf-8").count("\n```") // 2
    assert len(readme_blocks()) + sum(1 for b in BLOCKS if b.output) == fences


def test_the_scifact_calibration_figures_are_the_benchmark_s() -> None:
    """The README's calibration tables say what ``benchmarks/calibration_scifact.py`` last wrote."""
    measured = json.loads((REPO / "benchmarks" / "results" / "calibration_scifact.json").read_text(encoding="utf-8"))
    text = README.read_text(encoding="utf-8")
    section = " ".join(text[text.index("### Calibration on SciFact") :].split("\n## ")[0].split(" "))
    platt, isotonic = measured["platt"], measured["isotonic"]
    rows = [("sigmoid(raw score), uncalibrated", platt["uncalibrated"]), ("Platt (the default)", platt["calibrated"]),
            ("isotonic", isotonic["calibrated"])]  # fmt: skip
    for label, row in rows:
        ece = f"**{row['ece']:.4f}**" if label != rows[0][0] else f"{row['ece']:.4f}"
        assert (f"| {label} | {ece} | {row['brier']:.4f} | {row['brier_skill']:.3f} | {row['log_loss']:.4f} | "
                f"{row['roc_auc']:.3f} |") in section  # fmt: skip
    for row in platt["thresholds"][:5]:
        expected = (f"| {row['threshold']:.1f} | {100 * row['precision']:.1f} % | {100 * row['recall']:.1f} % | "
                    f"{100 * row['no_document_share']:.1f} % | {row['documents_per_query']:.2f} |")  # fmt: skip
        assert expected in section
    rule = platt["p_any_relevant"]["rule"]
    flat = " ".join(section.split())
    for source in ("swapped", "data", "removed"):
        assert f"| {100 * rule[source]['abstained_on_unanswerable']:.1f} % |" in flat
    errors = platt["p_any_relevant"]["errors"]
    assert f"ECE {errors['ece']:.3f}, Brier skill {errors['brier_skill']:.2f}, ROC AUC {errors['roc_auc']:.2f}" in flat
    assert f"answers {100 * rule['all']['answered_answerable']:.1f} %" in flat
    assert f"≥ {platt['abstention']['answer_from']:.3f}" in flat


def test_the_onnx_speed_figures_are_the_benchmark_s() -> None:
    """The README's ONNX Runtime table says what ``rerank-plugins bench`` wrote, in the run that also
    measured sentence-transformers' own ONNX backend."""
    measured = json.loads((REPO / "benchmarks" / "results" / "bench_onnx.json").read_text(encoding="utf-8"))
    text = README.read_text(encoding="utf-8")
    section = text[text.index('**ONNX Runtime** (`runtime="onnx"`') :].split("\nMemory: ")[0]
    labels = {
        "sentence-transformers predict fp32": "`CrossEncoder.predict` fp32 (baseline)",
        "sentence-transformers predict onnx fp32": '`CrossEncoder(backend="onnx")` fp32',
        "rerank-plugins onnx-fp32 (onnx fp32)": "ONNX Runtime fp32",
        "rerank-plugins onnx-int8 (onnx int8)": "ONNX Runtime int8",
        "rerank-plugins auto (openvino bf16)": "`auto` (OpenVINO bf16 here)",
    }
    rows = {row["name"]: row for row in measured["modes"]}
    assert f"({measured['pairs']:,} pairs)" in section
    for name, label in labels.items():
        row = rows[name]
        ratio = row["backend_speedup"]
        backend = "1.00 " if "backend=" in label else "" if ratio is None else f"{ratio:.2f} "
        assert (
            f"| {label} | {row['pairs_per_second']:.1f} | {row['speedup']:.2f} | {backend}| "
            f"{row['latency_p50_ms']:.0f} ms | {row['top10_overlap']:.3f} | {row['ndcg_at_10']:.4f} |"
        ) in section, label
    ours, baseline = rows["rerank-plugins onnx-fp32 (onnx fp32)"], rows["sentence-transformers predict fp32"]
    assert ours["backend_speedup"] > 1 and ours["ndcg_at_10"] == baseline["ndcg_at_10"]


def test_the_metadata_mode_figures_are_the_benchmark_s() -> None:
    """The README's reason for the default ``metadata_mode`` is what ``benchmarks/metadata_mode.py`` wrote."""
    measured = json.loads((REPO / "benchmarks" / "results" / "metadata_mode.json").read_text(encoding="utf-8"))
    rows = {row["metadata_mode"]: row for row in measured["results"].values() if not row["title_in_text"]}
    none, embed = rows["none"]["ndcg@10"], rows["embed"]["ndcg@10"]
    per_claim = [(rows["none"]["ndcg@10_per_claim"][q], rows["embed"]["ndcg@10_per_claim"][q])
                 for q in rows["none"]["ndcg@10_per_claim"]]  # fmt: skip
    equal = sum(1 for a, b in per_claim if abs(a - b) < 1e-9)
    text = " ".join(README.read_text(encoding="utf-8").split())
    assert (f"NDCG@10 {none:.3f} text alone, {embed:.3f} with the metadata lines; {equal} of {len(per_claim)} "
            "claims equal") in text  # fmt: skip
    assert abs(embed - none) < 0.02  # "rank alike": the reason the text alone is the default


def wikiqa_rows(measured: dict[str, Any]) -> list[str]:
    """The README's WikiQA table rows, from ``benchmarks/results/wikiqa_abstention.json``."""
    order = measured["page_order"]
    rows = [f"| page order (the first stage) | {order['map']:.3f} | {order['mrr']:.3f} | | | | | | | | |"]
    labels = (("unchanged", "SciFact model, unchanged"), ("fine_tuned", "fine-tuned on 500 WikiQA train questions"))
    for key, label in labels:
        row, rule = measured[key], measured[key]["rule"]["all"]
        rows.append(
            f"| {label} | {row['answer_selection']['map']:.3f} | {row['answer_selection']['mrr']:.3f} | "
            f"{100 * rule['answer_precision']:.1f} % | {100 * rule['answer_recall']:.1f} % | "
            f"{100 * rule['answer_f1']:.1f} | {100 * rule['abstained_on_unanswerable']:.1f} % | "
            f"{100 * rule['answered_answerable']:.1f} % | {row['p_any']['ece']:.3f} | "
            f"{row['p_any']['brier_skill']:.3f} | {100 * row['off_topic']['abstained']:.1f} % |"
        )
    return rows


def test_the_wikiqa_figures_are_the_benchmark_s() -> None:
    """The README's WikiQA table says what ``benchmarks/wikiqa_abstention.py`` last wrote, on the CPU it names."""
    measured = json.loads((REPO / "benchmarks" / "results" / "wikiqa_abstention.json").read_text(encoding="utf-8"))
    text = README.read_text(encoding="utf-8")
    section = text[text.index('### "Nothing relevant" on real unanswerable questions') :].split("\n## ")[0]
    for row in wikiqa_rows(measured):
        assert row in section
    assert measured["cpu"] in section
    tuned = measured["fine_tuned"]
    flat = " ".join(section.split())
    assert f"P(any) ECE is {tuned['p_any']['ece']:.3f} (against {tuned['pairs']['calibrated']['ece']:.3f}" in flat
    assert f"ROC AUC {tuned['p_any']['roc_auc']:.2f}, and no level of it reaches 70 % abstention" in flat
    assert not [row for row in tuned["by_level"]
                if row["abstained_on_unanswerable"] >= 0.7 and row["answered_answerable"] >= 0.65]  # fmt: skip
    assert any("barely separates relevant" in warning for warning in measured["unchanged"]["warnings"])


def test_the_roofline_figures_are_the_benchmark_s() -> None:
    """The README's roofline table says what ``rerank-plugins bench`` wrote, on the CPU it names."""
    measured = json.loads((REPO / "benchmarks" / "results" / "bench_roofline.json").read_text(encoding="utf-8"))
    text = README.read_text(encoding="utf-8")
    section = text[text.index("**Roofline.**") :].split("**ONNX Runtime**")[0]
    flat = " ".join(section.split())
    assert measured["cpu"]["name"] in flat and not measured["cpu"]["amx"]
    rates = measured["matmul_gflops"]
    assert f"fp32 matmul {rates['fp32']:.0f} GFLOP/s, bf16 {rates['bf16']:.0f}" in flat
    for mode in measured["modes"][1:]:
        share = "–" if mode["rate_fraction"] is None else f"{100 * mode['rate_fraction']:.0f} %"
        assert f"| {mode['speedup']:.2f} | {mode['gflops_per_second']:.0f} | {share} |" in flat
        assert not mode["slower_than_baseline"]
    assert (REPO / "docs" / "roofline-epyc.png").stat().st_size > 10_000


def test_the_light_floor_figures_are_the_benchmark_s() -> None:
    """The README's light-floor tables say what ``benchmarks/light_floor.py`` wrote, on the CPU it names."""
    measured = json.loads((REPO / "benchmarks" / "results" / "light_floor.json").read_text(encoding="utf-8"))
    text = README.read_text(encoding="utf-8")
    section = text[text.index("### The light floor, measured") :].split("\n## ")[0]
    assert measured["cpu"]["name"] in section
    light, full = measured["installs"]["light"], measured["installs"]["full"]
    assert f"| site-packages | {light['site_packages_mb']:.0f} MB | {full['site_packages_mb']:.0f} MB |" in section
    for key, label in (
        ("import_langchain_s", "`import rerank_plugins.langchain`"),
        ("import_load_int8_rank50_s", "import, load the int8 artefact, rank 50 abstracts"),
        ("help_s", "`rerank-plugins --help`"),
    ):
        assert f"| {label} | {light[key]:.2f} s | {full[key]:.2f} s |" in section
    assert f"| {full['import_load_torch_checkpoint_rank50_s']:.2f} s |" in section
    for name, row in measured["fidelity"].items():
        line = (
            f"| `{name}` | {row['graph_mb']:.0f} MB | {row['max_abs_logit_difference']:.2g} | "
            f"{row['top10_overlap']:.3f} | {row['min_top10_overlap']:.1f} |"
        )
        assert line in section, line


TYPED_PLACEHOLDERS = {
    "LangChain": "from langchain_core.embeddings import Embeddings\n\nembeddings: Embeddings\ntexts: list[str]\n",
    "LlamaIndex": "from llama_index.core import VectorStoreIndex\nfrom llama_index.core.llms import LLM\n\n"
    "index: VectorStoreIndex\nllm: LLM\n",
}
"""What each adapter section leaves to the reader, declared with its type (the tests run them with real ones)."""


@pytest.mark.slow
def test_the_adapter_blocks_type_check_strictly_with_and_without_pydantic_s_mypy_plugin(tmp_path: Path) -> None:
    files = []
    for section, placeholders in TYPED_PLACEHOLDERS.items():
        path = tmp_path / f"readme_{section.lower()}.py"
        path.write_text(placeholders + "\n".join(block.code for block in SECTIONS[section]), encoding="utf-8")
        files.append(str(path))
    plugin = tmp_path / "plugin.ini"
    plugin.write_text("[mypy]\nplugins = pydantic.mypy\n", encoding="utf-8")
    for config in ([], ["--config-file", str(plugin)]):
        command = [sys.executable, "-m", "mypy", "--strict", "--follow-imports=silent", *config, *files]
        command[3:3] = ["--cache-dir", str(tmp_path / "cache")]  # the package's own errors are its mypy run's
        environment = {**os.environ, "MYPYPATH": str(REPO)}  # the source tree (an editable install hides it)
        done = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, env=environment, timeout=600)
        assert done.returncode == 0, done.stdout + done.stderr
