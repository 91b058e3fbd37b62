"""The README and docs/ show only tables rendered from data: results files in docs/results/ (the
numbers, the machine, the command) and the target table. `ssdmobile docs --check` in a test."""

from __future__ import annotations

import json
import shutil

from ssdmobile.cli import main
from ssdmobile.commands.docs import TARGETS_BLOCK, rendered
from ssdmobile.commands.targets import targets_table
from ssdmobile.results import BLOCK, DOCS, load_results, rendered_docs, stale_docs
from ssdmobile.table import format_table

from conftest import REPO

README = REPO / "README.md"


def test_every_table_in_the_readme_and_docs_is_its_datas(capsys):
    assert main(["docs", "--check"]) == 0, capsys.readouterr().err
    assert [p for p, text in rendered().items() if p.read_text() != text] == []


def test_the_readme_is_short_and_shows_the_target_table_as_ssdmobile_targets_prints_it():
    text = README.read_text()
    assert len(text.splitlines()) <= 250
    (block,) = TARGETS_BLOCK.finditer(text)
    assert block.group(2).strip() == format_table(*targets_table(), markdown=True)


def test_every_results_file_is_shown_and_every_block_has_its_file():
    pages = [README, *DOCS.glob("*.md")]
    shown = {m["name"] for p in pages for m in BLOCK.finditer(p.read_text())}
    files = {p.name for p in (DOCS / "results").glob("*.json")}
    assert shown == files
    for name in files:
        r = load_results(DOCS / "results" / name)
        assert r.command.startswith(("ssdmobile ", "python ")) and r.machine.cpu and r.machine.cores


def test_a_number_changed_in_a_results_file_makes_its_table_stale(tmp_path):
    docs = tmp_path / "docs"
    shutil.copytree(DOCS, docs)
    shutil.copy(README, tmp_path / "README.md")
    assert stale_docs(docs) == []
    path = docs / "results" / "main_job.json"
    d = json.loads(path.read_text())
    d["tables"][0]["rows"][2][3] = "0.9999"
    path.write_text(json.dumps(d))
    assert {p.name for p in stale_docs(docs)} == {"README.md", "results.md"}
    assert "0.9999" in rendered_docs(docs)[tmp_path / "README.md"]
