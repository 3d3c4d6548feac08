"""The rerank-plugins command: demo, rank and eval, run in-process on the real shared model and data."""

from __future__ import annotations

import argparse
import io
import json
import re
import shutil
import sys
from pathlib import Path

import pytest

from rerank_plugins.cli import main
from rerank_plugins.cli.demo import demo_corpus, demo_queries
from tests.paths import SCIFACT


def test_bundled_demo_data() -> None:
    corpus = demo_corpus()
    assert len(corpus) == 200 and len({row["id"] for row in corpus}) == 200
    assert len({row["topic"] for row in corpus}) == 10
    assert len(demo_queries()) >= 5


def test_demo_shows_both_orders(trained_model: str, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["demo", "--model", trained_model, "--query", "Statins inhibit HMG-CoA reductase.", "--top-n", "2"])
    out = capsys.readouterr().out
    assert code == 0
    assert "bi-encoder order" in out and "reranked" in out
    assert "Statins lower LDL" in out
    assert "Reranked 10 pairs" in out
    passages = re.findall(r"passage of (\d+) of (\d+) characters, best of (\d+) windows", " ".join(out.split()))
    assert len(passages) == 2 and all(int(part) < int(whole) and int(n) > 1 for part, whole, n in passages)


def test_demo_without_a_loadable_model_says_what_to_do(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    assert main(["demo"]) == 2
    assert "--model ../shared/models/minilm-l6-scifact-ce" in capsys.readouterr().err


def test_rank_reads_lines_and_writes_ranked_jsonl(trained_model, monkeypatch, capsys) -> None:
    documents = ["The Eiffel Tower is in Paris.", "Statins lower LDL cholesterol by inhibiting HMG-CoA reductase."]
    monkeypatch.setattr(sys, "stdin", io.StringIO("\n".join(documents) + "\n"))
    assert main(["rank", "--model", trained_model, "--query", "Statins inhibit HMG-CoA reductase."]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [row["index"] for row in rows] == [1, 0]
    assert rows[0]["text"] == documents[1] and 0.5 < rows[0]["relevance_score"] <= 1.0
    assert set(rows[0]) == {"index", "score", "relevance_score", "text", "span"}
    assert rows[0]["span"] == [0, len(documents[1])]  # it fit whole


def test_rank_shows_the_passage_that_earned_each_score(trained_model, tmp_path: Path, capsys) -> None:
    with open(SCIFACT / "corpus.jsonl", encoding="utf-8") as lines:
        abstracts = [json.loads(next(lines)) for _ in range(6)]
    chained = [" ".join(f"{row['title']}. {row['text']}" for row in abstracts[i : i + 3]) for i in (0, 3)]
    source = tmp_path / "long.txt"
    source.write_text("\n".join(chained) + "\n", encoding="utf-8")
    common = ["rank", "--model", trained_model, "--query", "Aspirin lowers cancer risk", "--input", str(source)]
    common += ["--long-documents", "window", "--window-boundaries", "sentence", "--max-length", "128", "--top-n", "1"]
    assert main(common) == 0
    (row,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    start, end = row["span"]
    assert 0 < end - start < len(row["text"]) // 3
    assert main([*common, "--show"]) == 0
    shown = " ".join(capsys.readouterr().out.split())
    assert f"passage {start}-{end} of {len(row['text'])} characters" in shown
    assert " ".join(row["text"][start:end].split()) in shown


def test_rank_reads_jsonl_files(trained_model, tmp_path: Path, capsys) -> None:
    source = tmp_path / "docs.jsonl"
    source.write_text('{"text": "alpha"}\n"beta"\n', encoding="utf-8")
    assert main(["rank", "--model", trained_model, "--query", "q", "--input", str(source), "--top-n", "1"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 1
    source.write_text('{"body": "no text field"}\n', encoding="utf-8")
    assert main(["rank", "--model", trained_model, "--query", "q", "--input", str(source)]) == 2
    assert "line 1" in capsys.readouterr().err


def test_rank_reads_plain_lines_that_start_with_a_quote(trained_model, tmp_path: Path, capsys) -> None:
    source = tmp_path / "quotes.txt"
    source.write_text('"Statins work," the trial concluded.\nThe Eiffel Tower is in Paris.\n', encoding="utf-8")
    assert main(["rank", "--model", trained_model, "--query", "statins", "--input", str(source)]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert sorted(row["text"] for row in rows) == sorted(source.read_text().splitlines())
    assert main(["rank", "--model", trained_model, "--query", "q", "--input", str(source), "--format", "jsonl"]) == 2
    assert "line 1 is not JSON" in (error := capsys.readouterr().err) and "--format lines" in error


def test_rank_keeps_the_other_fields_of_jsonl_rows(trained_model, tmp_path: Path, capsys) -> None:
    source = tmp_path / "docs.jsonl"
    rows_in = [
        {"id": "a1", "text": "The Eiffel Tower is in Paris.", "meta": {"year": 1889}},
        {"id": "b2", "text": "Statins."},
    ]
    source.write_text("".join(json.dumps(row) + "\n" for row in rows_in), encoding="utf-8")
    assert main(["rank", "--model", trained_model, "--query", "statins", "--input", str(source)]) == 0
    rows = {row["id"]: row for row in map(json.loads, capsys.readouterr().out.splitlines())}
    assert rows["a1"]["meta"] == {"year": 1889} and rows["a1"]["index"] == 0 and rows["b2"]["text"] == "Statins."
    source.write_text('{"text": "x", "score": 3}\n', encoding="utf-8")
    assert main(["rank", "--model", trained_model, "--query", "q", "--input", str(source)]) == 2
    assert "'score'" in capsys.readouterr().err


def test_rank_with_no_documents_says_so(trained_model, monkeypatch, capsys) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("\n  \n"))
    assert main(["rank", "--model", trained_model, "--query", "q"]) == 2
    assert "no documents in stdin" in capsys.readouterr().err


def test_help_shows_every_default_and_describes_every_option() -> None:
    from rerank_plugins.cli import COMMANDS, build_parser
    from rerank_plugins.cli.options import HelpFormatter

    parser = build_parser()
    assert "``" not in parser.format_help()
    commands = next(a for a in parser._actions if a.dest == "command").choices  # type: ignore[union-attr]
    for name in COMMANDS:
        command = commands[name]
        assert command.formatter_class is HelpFormatter
        for action in command._actions:
            if action.dest == "help":
                continue
            assert action.help, f"{name} {action.option_strings} has no help"
            if action.default not in (None, False, argparse.SUPPRESS):
                shown = HelpFormatter(name)._get_help_string(action) or ""
                assert "%(default)" in shown or "(default" in shown, (name, action.option_strings)


def test_offline_error_names_the_command_line_option(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setattr(sys, "stdin", io.StringIO("a document\n"))
    assert main(["rank", "--model", "cross-encoder/not-cached-here", "--query", "q"]) == 2
    error = capsys.readouterr().err
    assert "HF_HUB_OFFLINE is set" in error and "--model PATH" in error


@pytest.fixture(scope="module")
def small_beir(tmp_path_factory, scifact_slice, scifact_test_qrels) -> Path:
    """A BEIR directory: the 355-abstract slice, and the 60 test claims whose abstracts are in it."""
    root = tmp_path_factory.mktemp("beir")
    source = SCIFACT
    with open(source / "corpus.jsonl", encoding="utf-8") as rows, open(root / "corpus.jsonl", "w") as out:
        out.writelines(line for line in rows if json.loads(line)["_id"] in scifact_slice)
    shutil.copy(source / "queries.jsonl", root / "queries.jsonl")
    (root / "qrels").mkdir()
    judged = list(scifact_test_qrels)[:60]
    lines = ["query-id\tcorpus-id\tscore"] + [f"{q}\t{d}\t1" for q in judged for d in sorted(scifact_test_qrels[q])]
    (root / "qrels" / "test.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    shutil.copy(source / "qrels" / "train.tsv", root / "qrels" / "train.tsv")
    return root


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory) -> Path:
    """One FAISS index of ``small_beir`` for the commands here: the first saves it, the others load it."""
    return tmp_path_factory.mktemp("small-beir-index") / "ix"


@pytest.mark.slow
def test_eval_reports_reranking_gain_and_writes_report_and_chart(
    trained_model, small_beir, index_dir, tmp_path, capsys
) -> None:
    output = tmp_path / "report"
    args = ["eval", "--data", str(small_beir), "--model", trained_model, "--top-k", "20", "--max-queries", "40"]
    assert main([*args, "--output", str(output), "--fusion-weight", "0.75", "--index-dir", str(index_dir)]) == 0

    report = json.loads((output / "report.json").read_text())
    assert report["queries"] == 40 and set(report["metrics"]) == {"retrieval", "reranked", "fused"}
    assert report["metrics"]["reranked"]["ndcg@10"] > report["metrics"]["retrieval"]["ndcg@10"]
    assert report["work"]["pairs"] == 800 and report["work"]["tokens_scored"] > 0
    assert (output / "chart.png").read_bytes()[:4] == b"\x89PNG"
    captured = capsys.readouterr()
    assert "ndcg@10" in captured.out
    assert re.search(r"Embedding: 100%.*\b355/355\b.*passage", captured.err)  # a bar with counts, not a spinner
    assert (index_dir / "index.faiss").is_file()  # a second run loads the saved index
    again = [*args[:-1], "5", "--output", str(tmp_path / "again"), "--index-dir", str(index_dir)]
    assert main(again) == 0 and json.loads((tmp_path / "again" / "report.json").read_text())["queries"] == 5


@pytest.mark.slow
def test_eval_tunes_fusion_on_dev_queries(trained_model, small_beir, index_dir, tmp_path) -> None:
    output = tmp_path / "tuned"
    args = ["eval", "--data", str(small_beir), "--model", trained_model, "--top-k", "10", "--max-queries", "10"]
    args += ["--index-dir", str(index_dir)]
    assert main([*args, "--tune-fusion", "--dev-queries", "8", "--output", str(output)]) == 0
    report = json.loads((output / "report.json").read_text())
    grid = {float(weight): ndcg for weight, ndcg in report["settings"]["dev_ndcg@10_by_weight"].items()}
    assert sorted(grid) == [round(step * 0.05, 2) for step in range(21)]
    assert report["fusion_weight"] == max(grid, key=lambda weight: (grid[weight], weight))
    assert "fused" in report["metrics"]


def test_eval_on_a_directory_that_is_not_beir(tmp_path, trained_model, capsys) -> None:
    assert main(["eval", "--data", str(tmp_path), "--model", trained_model]) == 2
    assert "corpus.jsonl is missing" in capsys.readouterr().err


@pytest.mark.slow
def test_bench_smoke_reports_every_mode(trained_model, small_beir, index_dir, tmp_path, capsys) -> None:
    output = tmp_path / "bench"
    args = ["bench", "--data", str(small_beir), "--model", trained_model, "--max-queries", "3", "--candidates", "8"]
    args += ["--index-dir", str(index_dir)]
    assert main([*args, "--modes", "torch-fp32", "openvino-int8", "--output", str(output)]) == 0

    report = json.loads((output / "bench.json").read_text())
    baseline, fp32, int8 = report["modes"]
    assert report["pairs"] == 24 and baseline["name"].startswith("sentence-transformers")
    assert fp32["ndcg_at_10"] == pytest.approx(baseline["ndcg_at_10"], abs=1e-3)  # same model, same fp32 scores
    assert fp32["top10_overlap"] == 1.0 and 0.0 <= int8["top10_overlap"] <= 1.0 and "openvino int8" in int8["name"]
    assert all(mode["pairs_per_second"] > 0 and mode["latency_p50_ms"] > 0 for mode in report["modes"])
    assert 0.0 <= fp32["padding_waste"] < 1.0 and fp32["speedup"] > 0
    assert report["matmul_gflops"]["fp32"] > 0 and report["peak_rss_mb"] > 0
    assert baseline["tokens_per_second"] is None and baseline["padding_waste"] is None  # not measured by predict
    # the roofline: this CPU named with its flags, each mode's FLOPs from its real tokens against the measured rate
    assert report["cpu"]["name"] and isinstance(report["cpu"]["flags"], list) and "amx" in report["cpu"]
    assert report["matmul_gflops"]["bf16"] > 0 and fp32["model_gflop"] >= fp32["useful_gflop"] > 0
    assert 0.0 < fp32["rate_fraction"] < 1.5 and fp32["gflops_per_second"] > 0
    assert int8["rate_fraction"] is None  # no int8 rate is measured: no fraction is made up
    assert all(isinstance(mode["slower_than_baseline"], bool) for mode in report["modes"])
    assert (output / "roofline.png").stat().st_size > 10_000
    table = capsys.readouterr().out
    assert "GFLOP/s" in table and "CPU: " in table
    assert "x base" in table  # the table prints wide enough for every column
    baseline_row = next(line for line in table.splitlines() if "sentence-transformers" in line)
    assert " 0 " not in baseline_row and "0.0%" not in baseline_row and " 0%" not in baseline_row  # blanks, not 0


def test_port_outside_the_tcp_range_is_refused(capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["serve", "--port", "99999"])
    assert exit_.value.code == 2
    assert "99999 is not a TCP port: give 0-65535" in capsys.readouterr().err


def test_version_and_verbose_after_the_command(capsys) -> None:
    from rerank_plugins import __version__
    from rerank_plugins.cli import build_parser

    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0 and capsys.readouterr().out.strip() == f"rerank-plugins {__version__}"
    parser = build_parser()
    assert parser.parse_args(["rank", "--query", "q", "-v"]).verbose is True
    assert parser.parse_args(["-v", "rank", "--query", "q"]).verbose is True
    assert parser.parse_args(["rank", "--query", "q"]).verbose is False


def test_model_directory_without_weights_is_one_line_and_exit_2(trained_model, tmp_path: Path, capsys) -> None:
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json"):
        shutil.copy(Path(trained_model) / name, tmp_path / name)
    assert main(["rank", "--query", "q", "--model", str(tmp_path), "--input", __file__]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "has a config.json but no weights" in error and "Traceback" not in error


def test_mistyped_relative_model_path_says_no_such_folder(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(sys, "stdin", io.StringIO("a document\n"))
    assert main(["rank", "--query", "q", "--model", "modles/my-ce"]) == 2
    error = capsys.readouterr().err
    assert f"No model directory at 'modles/my-ce' (relative to {tmp_path})" in error and error.count("\n") == 1


def test_rank_on_a_terminal_says_it_reads_stdin(trained_model) -> None:
    import os
    import pty
    import subprocess

    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "rerank_plugins.cli", "rank", "--query", "q", "--model", trained_model],
        stdin=terminal,
        stderr=subprocess.PIPE,
        text=True,
    )
    os.close(terminal)
    try:
        assert process.stderr is not None
        assert "reading documents from stdin" in process.stderr.readline()
    finally:
        os.close(controller)  # end of input: the command ends with "no documents"
        process.wait(timeout=60)


BLOCK_AND_RUN = """
import sys
for name in {blocked!r}:
    sys.modules[name] = None
from rerank_plugins.cli import main
sys.exit(main({argv!r}))
"""


@pytest.mark.parametrize(
    ("blocked", "argv", "named"),
    [
        (["faiss"], ["demo"], 'pip install "rerank-plugins[faiss]"'),
        (["faiss"], ["eval", "--data", str(SCIFACT)], 'pip install "rerank-plugins[faiss]"'),
        (["ir_measures"], ["eval", "--data", str(SCIFACT)], 'pip install "rerank-plugins[eval]"'),
        (["fastapi"], ["serve"], 'pip install "rerank-plugins[serve]"'),
        ([], ["demo", "--bi-encoder", "no/such/bi-encoder"], "Pass --bi-encoder PATH"),
    ],
)
def test_missing_extras_and_bi_encoders_are_named_before_any_work(tmp_path, blocked, argv, named) -> None:
    """A model that does not exist is given too: the missing part must be reported before it is looked at."""
    import subprocess

    script = BLOCK_AND_RUN.format(blocked=blocked, argv=[*argv, "--model", str(tmp_path / "never-looked-at")])
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 2 and named in done.stderr and "never-looked-at" not in done.stderr, done.stderr
    assert done.stderr.count("\n") == 1


def test_demo_on_judged_data_measures_the_change(trained_model, small_beir, index_dir, capsys) -> None:
    argv = ["demo", "--model", trained_model, "--data", str(small_beir), "--claims", "6", "-k", "5", "--shown", "1"]
    assert main([*argv, "--index-dir", str(index_dir)]) == 0
    out = capsys.readouterr().out
    assert "6 judged claims, top 5 of 355" in out and re.search(r"bi-encoder +│ +0\.\d{4} │ +0\.\d{4}", out)
    assert re.search(r"Reranking changed NDCG@10 by [+-]0\.\d{4}", out)
    assert "knows scientific claims" in " ".join(out.split())  # what the shipped model is and is not good at
    assert out.count("bi-encoder order (cosine)") == 1  # one claim shown, all six measured
    assert main([*argv, "--query", "q"]) == 2 and "pick one" in capsys.readouterr().err


def test_a_saved_index_is_checked_for_the_bi_encoder_it_was_built_with(tmp_path, capsys) -> None:
    (tmp_path / "ix").mkdir()
    (tmp_path / "ix" / "config.json").write_text('{"model": "no/such/bi-encoder"}', encoding="utf-8")
    argv = ["eval", "--data", str(SCIFACT), "--index-dir", str(tmp_path / "ix"), "--model", str(tmp_path / "unseen")]
    assert main(argv) == 2
    error = capsys.readouterr().err
    assert "no/such/bi-encoder" in error and "Pass --bi-encoder PATH" in error and "unseen" not in error
