"""Reading the files out of a model's answer: `### <path>` and a fenced block each, inside the project only."""

from codegen.backends.answer import MAX_FILES, MAX_TOTAL_BYTES, files_from_answer
from tests.fakes.backend_script import files_answer


def test_every_path_and_block_pair_is_taken_with_its_exact_content() -> None:
    answer = (
        "Intro.\n\n### app/a.py\n```python\nx = 1\n\n\ny = 2\n```\n\n"
        "Between.\n\n### `README.md`\n```markdown\n# T\n```\n"
    )
    result = files_from_answer(answer)
    assert result.files == {"app/a.py": "x = 1\n\n\ny = 2\n", "README.md": "# T\n"}
    assert result.refused == []


def test_paths_outside_the_project_are_refused_and_said() -> None:
    answer = files_answer({"../evil.py": "x = 1\n", "/etc/cron.py": "x = 1\n", "app/ok.py": "x = 1\n"})
    answer += "### C:\\win.py\n```python\nx = 1\n```\n"
    result = files_from_answer(answer)
    assert list(result.files) == ["app/ok.py"]
    assert len(result.refused) == 3 and any(r.startswith("../evil.py") for r in result.refused)


def test_a_heading_without_a_block_is_not_a_file() -> None:
    assert files_from_answer("### app/a.py\nno block here\n").files == {}


def test_at_most_sixty_files() -> None:
    result = files_from_answer(files_answer({f"app/m{i}.py": "x = 1\n" for i in range(MAX_FILES + 3)}))
    assert len(result.files) == MAX_FILES
    assert len(result.refused) == 3 and "more than 60 files" in result.refused[0]


def test_at_most_200_kb_in_all() -> None:
    big = "x = 1\n" * (MAX_TOTAL_BYTES // 12)  # about half the limit each
    result = files_from_answer(files_answer({"app/a.py": big, "app/b.py": big, "app/c.py": big}))
    assert list(result.files) == ["app/a.py", "app/b.py"]
    assert "exceed 200000 bytes" in result.refused[0]
